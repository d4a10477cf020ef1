"""Image / ground truth / prediction panels for segmentation."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from torch import Tensor

from satdifuser._typing import PathLike
from satdifuser.errors import InputShapeError
from satdifuser.viz.atomic import save_figure

_TAB20 = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#c7c7c7",
    "#dbdb8d",
    "#9edae5",
]


def segmentation_panels_figure(
    images: Sequence[Tensor],
    targets: Sequence[Tensor],
    preds: Sequence[Tensor],
    class_names: Sequence[str],
    ignore_index: int | None = None,
    colors: Sequence[str] | None = None,
    titles: Sequence[str] | None = None,
) -> Figure:
    """One row per sample: RGB image, ground truth, prediction (ignored pixels in black).

    Args:
        images: (3, H, W) tensors in [0, 1].
        targets: (H, W) integer masks.
        preds: (H, W) integer predictions.
        class_names: K class names (legend).
        ignore_index: Label value drawn black in the ground truth.
        colors: K matplotlib colours; a 20-colour palette by default.
        titles: Optional per-row titles (e.g. sample ids).

    Raises:
        InputShapeError: lengths or sizes disagree.
    """
    n = len(images)
    if n == 0 or len(targets) != n or len(preds) != n:
        raise InputShapeError(
            f"segmentation panels need as many images, targets and predictions (got {n}, "
            f"{len(targets)}, {len(preds)}), at least one"
        )
    k = len(class_names)
    palette = list(colors) if colors is not None else [_TAB20[i % 20] for i in range(k)]
    cmap = ListedColormap([*palette[:k], "#000000"])
    h, w = targets[0].shape[-2:]
    row = min(6.0, max(1.5, 3.0 * h / max(w, 1)))  # panels 3 in wide, keep the aspect
    fig = Figure(figsize=(9.0, row * n + 0.8), layout="constrained")
    grid = fig.subplots(n, 3, squeeze=False)
    for r in range(n):
        img = images[r].detach().float().cpu().clamp(0, 1)
        if img.ndim != 3 or img.shape[0] not in (1, 3):
            raise InputShapeError(f"panel {r}: image shape {tuple(img.shape)}, expected (3, H, W)")
        gt, pr = targets[r].detach().cpu().long(), preds[r].detach().cpu().long()
        if gt.shape != pr.shape:
            raise InputShapeError(
                f"panel {r}: target {tuple(gt.shape)} and prediction {tuple(pr.shape)} differ"
            )
        arr = img.permute(1, 2, 0).numpy()
        grid[r, 0].imshow(arr if arr.shape[2] == 3 else arr[..., 0], cmap="gray")
        for col, mask in ((1, gt), (2, pr)):
            m = mask.numpy().copy()
            bad = (m < 0) | (m >= k)
            if ignore_index is not None:
                bad |= m == ignore_index
            m[bad] = k
            grid[r, col].imshow(m, cmap=cmap, vmin=-0.5, vmax=k + 0.5, interpolation="nearest")
        label = titles[r] if titles is not None and r < len(titles) else f"sample {r}"
        grid[r, 0].set_title(f"{label}: image", fontsize=8)
        grid[r, 1].set_title("ground truth", fontsize=8)
        valid = (gt >= 0) & (gt < k)
        if ignore_index is not None:
            valid &= gt != ignore_index
        acc = float((pr[valid] == gt[valid]).float().mean()) if valid.any() else float("nan")
        grid[r, 2].set_title(f"prediction (pixel acc {acc:.2f})", fontsize=8)
        for ax in grid[r]:
            ax.set_axis_off()
    handles = [Patch(color=palette[i], label=class_names[i]) for i in range(k)]
    handles.append(Patch(color="#000000", label="ignored"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4), fontsize=7)
    return fig


def plot_segmentation_panels(
    images: Sequence[Tensor],
    targets: Sequence[Tensor],
    preds: Sequence[Tensor],
    path: PathLike,
    class_names: Sequence[str],
    ignore_index: int | None = None,
    colors: Sequence[str] | None = None,
    titles: Sequence[str] | None = None,
) -> None:
    """Write :func:`segmentation_panels_figure` to ``path`` (PNG, atomic)."""
    fig = segmentation_panels_figure(
        images, targets, preds, class_names, ignore_index, colors, titles
    )
    save_figure(fig, path)


__all__ = ["plot_segmentation_panels", "segmentation_panels_figure"]
