"""Heatmaps of a fuser's interpretable weights (timestep x tap, or expert usage per scale)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from torch import Tensor

from satdifuser._typing import PathLike
from satdifuser.errors import InputError
from satdifuser.viz.atomic import save_figure


def fusion_weights_figure(
    weights: Mapping[str, Tensor],
    axes: Mapping[str, tuple[Sequence[str], Sequence[str]]] | None = None,
    title: str = "fusion weights",
) -> Figure:
    """One panel per entry: 2-D entries as annotated heatmaps (rows x columns), 1-D as bars.

    Args:
        weights: Name -> tensor, e.g. ``{"weights": (T, taps)}`` from
            ``fuser.interpretable_weights()``. Entries with more than 2 dims are averaged over the
            leading dims.
        axes: Name -> (row labels, column labels), e.g. ``fuser.weight_axes()``; missing labels
            become indices.
        title: Figure title.

    Raises:
        InputError: ``weights`` is empty.
    """
    if not weights:
        raise InputError("fusion_weights_figure got no weights; the fuser exposes none to plot")
    axes = axes or {}
    names = list(weights)
    mats = [_as_2d(weights[n]) for n in names]
    widths = [max(4.0, 0.45 * m.shape[1] + 2.5) for m in mats]
    heights = [max(2.2, 0.45 * m.shape[0] + 1.6) for m in mats]
    fig = Figure(figsize=(max(widths), sum(heights)), layout="constrained")
    fig.suptitle(title)
    grid = fig.subplots(len(names), 1, squeeze=False)[:, 0]
    for ax, name, mat in zip(grid, names, mats, strict=True):
        rows, cols = axes.get(name, ((), ()))
        rows = list(rows) if len(rows) == mat.shape[0] else [str(i) for i in range(mat.shape[0])]
        cols = list(cols) if len(cols) == mat.shape[1] else [str(i) for i in range(mat.shape[1])]
        im = ax.imshow(mat, cmap="viridis", aspect="auto")
        ax.set_xticks(range(mat.shape[1]), cols, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(mat.shape[0]), rows, fontsize=8)
        ax.set_title(name, fontsize=9)
        if mat.size <= 400:
            finite = mat[np.isfinite(mat)]
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            for (i, j), v in np.ndenumerate(mat):
                bright = (v - lo) / (hi - lo) > 0.6 if hi > lo else False
                ax.text(j, i, f"{v:.3f}", ha="center", va="center", fontsize=6,
                        color="black" if bright else "white")  # fmt: skip
        fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def plot_fusion_weights(
    weights: Mapping[str, Tensor],
    path: PathLike,
    axes: Mapping[str, tuple[Sequence[str], Sequence[str]]] | None = None,
    title: str = "fusion weights",
) -> None:
    """Write :func:`fusion_weights_figure` to ``path`` (PNG, atomic)."""
    save_figure(fusion_weights_figure(weights, axes, title), path)


def _as_2d(t: Tensor) -> np.ndarray:
    a = t.detach().float().cpu().numpy()
    if a.ndim == 0:
        a = a.reshape(1, 1)
    elif a.ndim == 1:
        a = a.reshape(1, -1)
    elif a.ndim > 2:
        a = a.reshape(-1, *a.shape[-2:]).mean(axis=0)
    return a


__all__ = ["fusion_weights_figure", "plot_fusion_weights"]
