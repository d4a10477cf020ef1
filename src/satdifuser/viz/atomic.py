"""Atomic writes of figures (and the shared atomic file writes, re-exported).

:func:`save_figure` renders a figure to PNG and writes it with
:func:`satdifuser._atomic_io.atomic_write_bytes`: a crash or a raised error never leaves a
half-written output; readers see either the old file or the complete new one.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

from matplotlib.figure import Figure

from satdifuser._atomic_io import atomic_write_bytes, atomic_write_json, atomic_write_text
from satdifuser._typing import PathLike


def save_figure(fig: Figure, path: PathLike, dpi: int = 120) -> Path:
    """Render a matplotlib figure to PNG and write it atomically."""
    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return atomic_write_bytes(path, buf.getvalue())


__all__ = ["atomic_write_bytes", "atomic_write_json", "atomic_write_text", "save_figure"]
