"""Evaluation metrics with explicit names (torchmetrics), one collection per task type.

Every name says its averaging; ``docs/metrics.md`` states which convention of GEO-Bench, PANGAEA,
TorchGeo and TerraTorch each one matches. Keys ending in ``_per_class`` hold one value per class and
are flattened to ``<name>/<class>`` by :func:`flatten_metrics`.

Averaging rules shared by all macro metrics (torchmetrics >= 1.3): pixels/samples whose target is
``ignore_index`` are dropped before counting; a class that never occurs in the targets *and* is
never predicted over the whole split is left out of the macro mean (its per-class value is
reported as ``None``); ``ignore_index`` itself, when it is a class id, is never averaged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassJaccardIndex,
    MulticlassPrecision,
    MulticlassRecall,
    MulticlassStatScores,
    MultilabelExactMatch,
    MultilabelF1Score,
    MultilabelPrecision,
    MultilabelRecall,
)

METRIC_CONVENTIONS: dict[str, str] = {
    "overall_accuracy": "micro: correct / all (samples or pixels); GEO-Bench Accuracy, TorchGeo "
    "OverallAccuracy, TerraTorch Accuracy_Micro / Pixel_Accuracy, PANGAEA OA / 'mAcc'",
    "mean_accuracy": "macro mean of per-class recall; TerraTorch Accuracy, TorchGeo "
    "AverageAccuracy",
    "f1_macro": "macro mean of per-class F1; PANGAEA F1 (classification) and mF1 (segmentation), "
    "TerraTorch F1",
    "f1_satdifuser": "2·P̄·R̄/(P̄+R̄) from macro precision and recall: the SatDiFuser reference 'F1'",
    "precision_macro": "macro mean of per-class precision",
    "recall_macro": "macro mean of per-class recall",
    "f1_micro": "multi-label micro F1 over all (sample, label) pairs at sigmoid > 0.5; GEO-Bench "
    "F1Score(multilabel), PANGAEA, SatDiFuser model selection",
    "precision_micro": "multi-label micro precision at sigmoid > 0.5",
    "recall_micro": "multi-label micro recall at sigmoid > 0.5",
    "subset_accuracy": "multi-label exact match (all labels right); PANGAEA subset accuracy",
    "miou": "macro mean IoU over classes, ignore_index pixels dropped; PANGAEA mIoU; equals "
    "GEO-Bench / SatDiFuser mIoU when ignore_index is None",
    "iou": "per-class IoU = TP / (TP + FP + FN) over the whole split",
    "f1": "per-class F1 = 2·TP / (2·TP + FP + FN) over the whole split",
    "accuracy": "per-class recall (accuracy of the samples of that class)",
    "loss": "mean task loss over the split (without the fusion auxiliary loss)",
}
"""Metric base name -> averaging convention (used in ``metrics.md`` tables and the docs)."""


class ReferenceF1(MulticlassStatScores):
    """The SatDiFuser reference "F1": harmonic mean of macro precision and macro recall.

    ``2·P̄·R̄ / (P̄ + R̄)`` with ``P̄``, ``R̄`` the means over classes present in targets or
    predictions (sklearn's label set), a class without predictions counting precision 0. This is
    not the mean of per-class F1 (method.md section 8).

    Args:
        num_classes: Number of classes K.
        ignore_index: Target value to drop.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None) -> None:
        super().__init__(
            num_classes=num_classes, average="none", ignore_index=ignore_index, validate_args=False
        )

    def compute(self) -> Tensor:
        """The metric over everything seen since the last reset."""
        tp, fp, _, fn = (t.double() for t in self._final_state())
        present = (tp + fp + fn) > 0
        if not bool(present.any()):
            return torch.zeros((), dtype=torch.float32, device=tp.device)
        precision = torch.where(tp + fp > 0, tp / (tp + fp).clamp(min=1), torch.zeros_like(tp))
        recall = torch.where(tp + fn > 0, tp / (tp + fn).clamp(min=1), torch.zeros_like(tp))
        p, r = precision[present].mean(), recall[present].mean()
        f1 = 2 * p * r / (p + r) if float(p + r) > 0 else torch.zeros_like(p)
        return f1.float()


def classification_metrics(num_classes: int, ignore_index: int | None = None) -> MetricCollection:
    """Single-label classification: OA (micro), mean accuracy, macro F1/P/R, reference F1.

    Args:
        num_classes: Number of classes K.
        ignore_index: Label value to drop, if any.
    """
    kw = {"num_classes": num_classes, "ignore_index": ignore_index, "validate_args": False}
    return MetricCollection(
        {
            "overall_accuracy": MulticlassAccuracy(average="micro", **kw),
            "mean_accuracy": MulticlassAccuracy(average="macro", **kw),
            "f1_macro": MulticlassF1Score(average="macro", **kw),
            "precision_macro": MulticlassPrecision(average="macro", **kw),
            "recall_macro": MulticlassRecall(average="macro", **kw),
            "f1_satdifuser": ReferenceF1(num_classes, ignore_index),
            "f1_per_class": MulticlassF1Score(average="none", **kw),
            "accuracy_per_class": MulticlassRecall(average="none", **kw),
        },
        compute_groups=False,
    )


def multilabel_metrics(num_labels: int, threshold: float = 0.5) -> MetricCollection:
    """Multi-label classification: micro F1/P/R at ``threshold``, macro F1, exact match.

    Args:
        num_labels: Number of labels K.
        threshold: Probability threshold on ``sigmoid(logits)``.
    """
    kw = {"num_labels": num_labels, "threshold": threshold, "validate_args": False}
    return MetricCollection(
        {
            "f1_micro": MultilabelF1Score(average="micro", **kw),
            "f1_macro": MultilabelF1Score(average="macro", **kw),
            "precision_micro": MultilabelPrecision(average="micro", **kw),
            "recall_micro": MultilabelRecall(average="micro", **kw),
            "subset_accuracy": MultilabelExactMatch(**kw),
            "f1_per_class": MultilabelF1Score(average="none", **kw),
        },
        compute_groups=False,
    )


def segmentation_metrics(num_classes: int, ignore_index: int | None = None) -> MetricCollection:
    """Semantic segmentation: mIoU (macro), pixel OA, mean accuracy, macro F1, per-class IoU/F1.

    Args:
        num_classes: Number of classes K.
        ignore_index: Mask value whose pixels are dropped (may be a class id, e.g. a no-data
            class, or a value outside ``[0, K)`` such as 255 or -1).
    """
    kw = {"num_classes": num_classes, "ignore_index": ignore_index, "validate_args": False}
    return MetricCollection(
        {
            "miou": MulticlassJaccardIndex(average="macro", **kw),
            "overall_accuracy": MulticlassAccuracy(average="micro", **kw),
            "mean_accuracy": MulticlassAccuracy(average="macro", **kw),
            "f1_macro": MulticlassF1Score(average="macro", **kw),
            "iou_per_class": MulticlassJaccardIndex(average="none", **kw),
            "f1_per_class": MulticlassF1Score(average="none", **kw),
        },
        compute_groups=False,
    )


def present_classes(confusion: Tensor, ignore_index: int | None = None) -> Tensor:
    """Bool (K,): classes that occur as target or prediction in a (K, K) confusion matrix.

    A class equal to ``ignore_index`` is never present.
    """
    present = (confusion.sum(0) + confusion.sum(1)) > 0
    if ignore_index is not None and 0 <= ignore_index < confusion.shape[0]:
        present[ignore_index] = False
    return present


def flatten_metrics(
    values: Mapping[str, Tensor],
    class_names: Sequence[str],
    prefix: str = "",
    present: Tensor | None = None,
) -> dict[str, float | None]:
    """Turn computed metrics into ``{prefix + name: float}``, one entry per class for vectors.

    ``f1_per_class`` becomes ``f1/<class name>``; classes marked absent in ``present`` get ``None``
    (no target and no prediction: the value is undefined, not 0).

    Args:
        values: Output of a collection's ``compute()``.
        class_names: K names used for per-class entries.
        prefix: Prepended to every key (e.g. ``"test/"``).
        present: Optional bool (K,) mask from :func:`present_classes`.
    """
    out: dict[str, float | None] = {}
    for key, val in values.items():
        if key.endswith("_per_class"):
            base = key[: -len("_per_class")]
            vec = val.detach().float().cpu().reshape(-1)
            for i, v in enumerate(vec.tolist()):
                name = class_names[i] if i < len(class_names) else str(i)
                ok = present is None or bool(present[i])
                out[f"{prefix}{base}/{name}"] = float(v) if ok else None
        else:
            out[f"{prefix}{key}"] = float(val.detach().float().cpu())
    return out


__all__ = [
    "METRIC_CONVENTIONS",
    "ReferenceF1",
    "classification_metrics",
    "flatten_metrics",
    "multilabel_metrics",
    "present_classes",
    "segmentation_metrics",
]
