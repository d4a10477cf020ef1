"""Figures of samples: one sample (``plot``) and a grid (``satdifuser data inspect``).

matplotlib is imported inside the functions, so importing datasets stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from torch import Tensor

from satdifuser._atomic_io import atomic_path
from satdifuser._typing import PathLike, Sample

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_DEFAULT_COLORS = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd",
]  # fmt: skip


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    """``"#3C1098"`` -> ``(60, 16, 152)``."""
    c = color.lstrip("#")
    if len(c) != 6 or any(ch not in "0123456789abcdefABCDEF" for ch in c):
        raise ValueError(f"colour {color!r} is not of the form #RRGGBB")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def class_colors(num_classes: int, colors: Sequence[str] | None = None) -> np.ndarray:
    """(num_classes, 3) float colours in [0, 1]: the given ones, else a fixed palette."""
    src = list(colors) if colors else _DEFAULT_COLORS
    return np.array([hex_to_rgb(src[i % len(src)]) for i in range(num_classes)]) / 255.0


def image_to_rgb(image: Tensor) -> np.ndarray:
    """(C, H, W) tensor in [0, 1] -> (H, W, 3) array for display (first 3 bands, grey if C < 3)."""
    arr = image.detach().float().cpu().numpy()
    arr = np.repeat(arr[:1], 3, axis=0) if arr.shape[0] < 3 else arr[:3]
    return np.clip(arr.transpose(1, 2, 0), 0.0, 1.0)


def overlay_mask(
    rgb: np.ndarray, mask: Tensor, colors: np.ndarray, ignore_index: int, alpha: float = 0.45
) -> np.ndarray:
    """Blend class colours over ``rgb`` (H, W, 3); ignored pixels stay as they are."""
    m = mask.detach().cpu().numpy().astype(np.int64)
    valid = (m != ignore_index) & (m >= 0) & (m < len(colors))
    out = rgb.copy()
    out[valid] = (1 - alpha) * rgb[valid] + alpha * colors[m[valid]]
    return out


def plot_sample(
    sample: Sample,
    classes: Sequence[str],
    colors: Sequence[str] | None = None,
    ignore_index: int = 255,
    show_titles: bool = True,
    suptitle: str | None = None,
) -> Figure:
    """Figure of one sample: the image, plus mask and ``prediction`` panels when present."""
    import matplotlib.pyplot as plt

    rgb = image_to_rgb(sample["image"])
    cols = class_colors(len(classes), colors)
    panels: list[tuple[str, np.ndarray]] = [("image", rgb)]
    title = "image"
    if "label" in sample:
        lab = int(sample["label"])
        title = f"label: {classes[lab] if 0 <= lab < len(classes) else lab}"
        if "prediction" in sample:
            p = int(sample["prediction"])
            title += f"\nprediction: {classes[p] if 0 <= p < len(classes) else p}"
    panels[0] = (title, rgb)
    for key in ("mask", "prediction"):
        if key in sample and sample[key].ndim == 2:
            panels.append((key, overlay_mask(rgb, sample[key], cols, ignore_index, alpha=0.6)))
    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3), squeeze=False)
    for ax, (name, arr) in zip(axes[0], panels, strict=True):
        ax.imshow(arr)
        ax.axis("off")
        if show_titles:
            ax.set_title(name, fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def sample_grid(
    samples: Sequence[Sample],
    classes: Sequence[str],
    colors: Sequence[str] | None = None,
    ignore_index: int = 255,
    title: str | None = None,
) -> Figure:
    """A grid of samples (masks overlaid, class name as title for classification)."""
    import matplotlib.pyplot as plt

    n = max(1, len(samples))
    ncols = min(n, 8)
    nrows = (n + ncols - 1) // ncols
    cols = class_colors(max(1, len(classes)), colors)
    seg = any("mask" in s for s in samples) and len(classes) > 0
    width = max(2.0 * ncols, 4.0)
    leg_cols = max(1, int(width // 2.0))
    leg_rows = -(-min(len(classes), 20) // leg_cols) if seg else 0
    leg_h = 0.22 * leg_rows + (0.1 if seg else 0.0)
    height = 2.2 * nrows + 0.4 + leg_h
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, s in zip(axes.flat, samples, strict=False):
        rgb = image_to_rgb(s["image"])
        name = short_id(str(s.get("id", "")))
        if "mask" in s:
            rgb = overlay_mask(rgb, s["mask"], cols, ignore_index)
        elif "label" in s and s["label"].ndim == 0:
            lab = int(s["label"])
            name = classes[lab] if 0 <= lab < len(classes) else str(lab)
        ax.imshow(rgb)
        ax.set_title(name, fontsize=7)
    if seg:
        from matplotlib.patches import Patch

        handles = [Patch(color=cols[k], label=c[:22]) for k, c in enumerate(classes[:20])]
        fig.legend(handles=handles, loc="lower center", ncol=leg_cols, fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, leg_h / height, 1, 1))
    return fig


def short_id(sample_id: str, width: int = 28) -> str:
    """A sample id short enough for a title: first folder + file name, cut from the left."""
    parts = sample_id.split("/")
    text = f"{parts[0]}/{parts[-1]}" if len(parts) > 2 else sample_id
    return text if len(text) <= width else "..." + text[-(width - 3) :]


def save_figure(fig: Figure, path: PathLike, dpi: int = 100) -> Path:
    """Save ``fig`` as PNG atomically (temporary name in the same folder, then rename)."""
    import matplotlib.pyplot as plt

    out = Path(path)
    try:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return out


__all__ = [
    "class_colors",
    "hex_to_rgb",
    "image_to_rgb",
    "overlay_mask",
    "plot_sample",
    "sample_grid",
    "save_figure",
    "short_id",
]
