"""Evaluation outputs of a finished ``validate``/``test`` run: JSON, markdown table, PNG plots.

Files (all written atomically into ``out_dir``):

- ``metrics.json``: scalar metrics, per-class values, confusion matrix, conventions, extra info.
- ``metrics.md``: the same as markdown tables (one row per metric, one per class).
- ``fusion_weights.png``: the fuser's interpretable weights (timestep x tap heatmap for GW/LW,
  expert usage per scale for MoE), averaged over the evaluated batches.
- ``confusion_matrix.png``: classification and segmentation (pixels).
- ``segmentation_examples.png``: image / ground truth / prediction panels (segmentation, test).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from satdifuser._typing import PathLike
from satdifuser.errors import InputError
from satdifuser.tasks.metrics import METRIC_CONVENTIONS
from satdifuser.viz import (
    atomic_write_json,
    atomic_write_text,
    plot_confusion_matrix,
    plot_fusion_weights,
    plot_segmentation_panels,
)

if TYPE_CHECKING:
    from satdifuser.tasks.base import BaseTask


def split_metrics(
    flat: dict[str, float | None], stage: str
) -> tuple[dict[str, float | None], dict[str, dict[str, float | None]]]:
    """``{"test/f1/Forest": v, "test/miou": m}`` -> scalars ``{"miou": m}``, per class
    ``{"f1": {"Forest": v}}``."""
    scalars: dict[str, float | None] = {}
    per_class: dict[str, dict[str, float | None]] = {}
    for key, value in flat.items():
        name = key[len(stage) + 1 :] if key.startswith(f"{stage}/") else key
        if "/" in name:
            base, cls = name.split("/", 1)
            per_class.setdefault(base, {})[cls] = value
        else:
            scalars[name] = value
    return scalars, per_class


def _fmt(v: float | None, pct: bool) -> str:
    if v is None:
        return "n/a"
    return f"{100 * v:.2f}" if pct else f"{v:.4f}"


def markdown_report(
    scalars: dict[str, float | None],
    per_class: dict[str, dict[str, float | None]],
    title: str,
    support: dict[str, int] | None = None,
) -> str:
    """Markdown tables: metrics (percent, except the loss) and per-class values."""
    lines = [f"# {title}", "", "| metric | value (%) | convention |", "|---|---|---|"]
    for name, value in scalars.items():
        pct = name != "loss"
        conv = METRIC_CONVENTIONS.get(name, "")
        shown = _fmt(value, pct) + ("" if pct else " (raw)")
        lines.append(f"| `{name}` | {shown} | {conv} |")
    if per_class:
        bases = list(per_class)
        classes = list(dict.fromkeys(c for b in bases for c in per_class[b]))
        head = " | ".join(f"{b} (%)" for b in bases)
        extra = " | support" if support else ""
        lines += ["", "## Per class", "", f"| class | {head}{extra} |",
                  "|---|" + "---|" * (len(bases) + (1 if support else 0))]  # fmt: skip
        for c in classes:
            cells = " | ".join(_fmt(per_class[b].get(c), True) for b in bases)
            sup = f" | {support.get(c, 0)}" if support else ""
            lines.append(f"| {c} | {cells}{sup} |")
        lines += ["", "n/a: the class occurs neither in the targets nor in the predictions."]
    return "\n".join(lines) + "\n"


def write_evaluation_report(
    task: BaseTask, out_dir: PathLike, stage: str = "test", extra: dict[str, Any] | None = None
) -> dict[str, Path]:
    """Write metrics and plots of the last ``stage`` epoch of ``task``; returns name -> path.

    Raises:
        InputError: the task has not been evaluated on ``stage`` yet.
    """
    flat = task.results.get(stage)
    if flat is None:
        raise InputError(
            f"no {stage} results on {type(task).__name__}; run trainer.{stage}(task, datamodule) "
            "first"
        )
    out = Path(out_dir)
    scalars, per_class = split_metrics(flat, stage)
    cm = task.confusion.get(stage)
    names = list(task.class_names)
    support = None
    if cm is not None:
        support = {names[i]: int(cm[i].sum()) for i in range(len(names))}
    payload: dict[str, Any] = {
        "stage": stage,
        "task": f"{type(task).__module__}.{type(task).__qualname__}",
        "monitor": task.monitor.split("/", 1)[-1],
        "metrics": scalars,
        "per_class": per_class,
        "class_names": names,
        "ignore_index": task.ignore_index,
        "confusion_matrix": cm.tolist() if cm is not None else None,
        "conventions": {k: METRIC_CONVENTIONS[k] for k in scalars if k in METRIC_CONVENTIONS},
        **(extra or {}),
    }
    paths = {"metrics.json": atomic_write_json(out / "metrics.json", payload)}
    title = f"{stage} metrics: {type(task).__name__}"
    paths["metrics.md"] = atomic_write_text(
        out / "metrics.md", markdown_report(scalars, per_class, title, support)
    )
    weights = task.fusion_weights.get(stage)
    if weights:
        axes = task.fusion.weight_axes() if hasattr(task.fusion, "weight_axes") else None
        path = out / "fusion_weights.png"
        plot_fusion_weights(weights, path, axes, title=f"{type(task.fusion).__name__} weights")
        paths["fusion_weights.png"] = path
    if cm is not None:
        path = out / "confusion_matrix.png"
        plot_confusion_matrix(cm, path, names, title=f"{stage} confusion matrix")
        paths["confusion_matrix.png"] = path
    examples = getattr(task, "examples", None)
    if examples and stage == "test":
        path = out / "segmentation_examples.png"
        imgs, gts, preds, ids = zip(*examples, strict=True)
        plot_segmentation_panels(imgs, gts, preds, path, names, task.ignore_index, titles=ids)
        paths["segmentation_examples.png"] = path
    return paths


__all__ = ["markdown_report", "split_metrics", "write_evaluation_report"]
