"""Test scores of a baseline, with the metric definitions of ``satdifuser.tasks.metrics``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from satdifuser.tasks.metrics import classification_metrics, flatten_metrics, present_classes


@dataclass
class BaselineResult:
    """Test metrics of one trained baseline and what is needed to report it.

    Attributes:
        metrics: ``overall_accuracy``, ``f1_macro``, ``f1/<class>`` ... (``tasks.metrics``).
        confusion: (K, K) counts, rows = truth.
        seconds: Training + testing wall seconds.
        best_epoch: 1-based epoch chosen on validation (-1: none).
        val_accuracy: Validation accuracy of the chosen model.
        extra: Recipe facts for the result row (``l2``, ``epochs``, ``params`` ...).
    """

    metrics: dict[str, float | None]
    confusion: Tensor
    seconds: float
    best_epoch: int = -1
    val_accuracy: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def overall_accuracy(self) -> float:
        """Test overall accuracy in [0, 1]."""
        return float(self.metrics["overall_accuracy"] or 0.0)

    @property
    def f1_macro(self) -> float:
        """Test macro F1 in [0, 1]."""
        return float(self.metrics["f1_macro"] or 0.0)


def scores(
    preds: Tensor, targets: Tensor, class_names: Sequence[str]
) -> tuple[dict[str, float | None], Tensor]:
    """Metrics of ``tasks.metrics.classification_metrics`` and the (K, K) confusion matrix.

    Args:
        preds: (N,) predicted class ids.
        targets: (N,) true class ids.
        class_names: K names (per-class keys ``f1/<name>``, ``accuracy/<name>``).
    """
    k = len(class_names)
    metrics = classification_metrics(k)
    metrics.update(preds.long(), targets.long())
    confusion = torch.bincount(targets.long() * k + preds.long(), minlength=k * k).view(k, k)
    flat = flatten_metrics(metrics.compute(), class_names, present=present_classes(confusion))
    return flat, confusion


__all__ = ["BaselineResult", "scores"]
