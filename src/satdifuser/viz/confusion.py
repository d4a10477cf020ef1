"""Confusion-matrix figure (rows: true class, columns: predicted class)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from torch import Tensor

from satdifuser._typing import PathLike
from satdifuser.errors import InputShapeError
from satdifuser.viz.atomic import save_figure


def confusion_matrix_figure(
    matrix: Tensor | np.ndarray,
    class_names: Sequence[str] | None = None,
    normalize: bool = True,
    title: str = "confusion matrix",
) -> Figure:
    """Heatmap of a (K, K) confusion matrix with counts (and row-normalised shares).

    Args:
        matrix: Counts, ``matrix[i, j]`` = samples of true class i predicted as j.
        class_names: K names; indices when None.
        normalize: Colour by the share of each true class (row) instead of raw counts.
        title: Figure title.

    Raises:
        InputShapeError: ``matrix`` is not square or the names do not match its size.
    """
    m = matrix.detach().cpu().numpy() if isinstance(matrix, Tensor) else np.asarray(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise InputShapeError(f"confusion matrix has shape {m.shape}; expected (K, K)")
    k = m.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise InputShapeError(f"{len(names)} class names for a {k}x{k} confusion matrix")
    rows = m.sum(axis=1, keepdims=True)
    share = np.divide(m, rows, out=np.zeros_like(m, dtype=float), where=rows > 0)
    shown = share if normalize else m
    side = max(4.0, 0.55 * k + 2.0)
    fig = Figure(figsize=(side + 1.0, side), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ax.set_xticks(range(k), names, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(k), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    acc = float(np.trace(m) / m.sum()) if m.sum() > 0 else float("nan")
    ax.set_title(f"{title} (n={int(m.sum())}, overall accuracy {acc:.3f})", fontsize=9)
    if k <= 25:
        hi = float(shown.max()) if shown.size else 0.0
        for (i, j), v in np.ndenumerate(m):
            label = f"{int(v)}" if not normalize else f"{int(v)}\n{share[i, j]:.2f}"
            ax.text(
                j,
                i,
                label,
                ha="center",
                va="center",
                fontsize=6,
                color="white" if shown[i, j] > 0.5 * hi else "black",
            )
    fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def plot_confusion_matrix(
    matrix: Tensor | np.ndarray,
    path: PathLike,
    class_names: Sequence[str] | None = None,
    normalize: bool = True,
    title: str = "confusion matrix",
) -> None:
    """Write :func:`confusion_matrix_figure` to ``path`` (PNG, atomic)."""
    save_figure(confusion_matrix_figure(matrix, class_names, normalize, title), path)


__all__ = ["confusion_matrix_figure", "plot_confusion_matrix"]
