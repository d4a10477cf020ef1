"""Scene classification tasks: single-label (softmax) and multi-label (sigmoid)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection

from satdifuser.errors import ConfigError, InputError
from satdifuser.tasks.base import BaseTask, FusionFactory, HeadFactory
from satdifuser.tasks.checks import batch_tensor, class_id_target
from satdifuser.tasks.losses import MulticlassLossFn, MultilabelLossFn
from satdifuser.tasks.metrics import classification_metrics, multilabel_metrics


class ClassificationTask(BaseTask):
    """Single-label scene classification on frozen diffusion features.

    Monitors ``val/overall_accuracy`` (the reference selects by accuracy). Metrics:
    ``overall_accuracy``, ``mean_accuracy``, ``f1_macro``, ``f1_satdifuser``, macro P/R,
    per-class F1 and accuracy (``docs/metrics.md``).

    Args:
        extractor: Frozen feature extractor (``satdifuser.features.FeatureExtractor`` or any
            ``nn.Module`` with ``feature_info`` and ``forward(images, metadata)``).
        num_classes: Number of classes; must match the data.
        fusion: Fusion class configured without ``feature_info`` (YAML ``class_path``/
            ``init_args``), or a registry name (``global_weighted``, ``moe`` ...).
        head: Head class configured without ``in_channels``/``num_classes``, or a registry name.
        loss: ``ce`` (the paper's) or ``focal``.
        label_smoothing: Cross-entropy label smoothing.
        class_weights: Per-class loss weights.
        **kwargs: Shared options of :class:`~satdifuser.tasks.base.BaseTask`: ``fusion_args``,
            ``head_args``, ``ignore_index``, ``class_names``, ``optimizer``, ``lr``,
            ``weight_decay``, ``warmup_epochs``, ``warmup_start_lr``, ``min_lr``,
            ``schedule_epochs``, ``early_stopping_patience``.
    """

    task_type: ClassVar[str] = "classification"
    monitor: ClassVar[str] = "val/overall_accuracy"
    mode: ClassVar[Literal["min", "max"]] = "max"

    def __init__(
        self,
        extractor: nn.Module,
        num_classes: int,
        fusion: FusionFactory | str = "global_weighted",
        head: HeadFactory | str = "linear",
        loss: Literal["ce", "focal"] = "ce",
        label_smoothing: float = 0.0,
        class_weights: list[float] | None = None,
        **kwargs: Any,
    ) -> None:
        self._loss_args = (loss, class_weights, label_smoothing)
        super().__init__(extractor, num_classes, fusion, head, **kwargs)

    def build_loss(self) -> nn.Module:
        """Cross-entropy (or focal) with ``ignore_index``."""
        name, weights, smoothing = self._loss_args
        return MulticlassLossFn(name, self.num_classes, self.ignore_index, weights, smoothing)

    def build_metrics(self) -> MetricCollection:
        """See :func:`satdifuser.tasks.metrics.classification_metrics`."""
        return classification_metrics(self.num_classes, self.ignore_index)

    def target_of(self, batch: dict[str, Any]) -> Tensor:
        """``batch["label"]`` as (B,) int64, range-checked."""
        return class_id_target(
            batch, "label", "(B,)", kind="classification", task_name="ClassificationTask",
            num_classes=self.num_classes, ignore_index=self.ignore_index,
            hint=" (multi-hot labels: MultiLabelClassificationTask)",
        )  # fmt: skip


class MultiLabelClassificationTask(BaseTask):
    """Multi-label classification (e.g. m-bigearthnet, 43 labels) with sigmoid outputs.

    Monitors ``val/f1_micro`` at ``threshold`` (the reference's selection metric). Metrics:
    ``f1_micro``, ``f1_macro``, micro P/R, ``subset_accuracy``, per-label F1.

    Args:
        extractor: Frozen feature extractor.
        num_classes: Number of labels; must match the data's multi-hot width.
        fusion: Fusion class (``class_path``) or registry name.
        head: Head class or registry name (``multilabel_linear`` by default).
        loss: ``bce`` (the paper's) or ``focal``.
        threshold: Sigmoid threshold for the metrics and predictions.
        class_weights: Per-label positive weights.
        **kwargs: Shared options of :class:`~satdifuser.tasks.base.BaseTask`.
    """

    task_type: ClassVar[str] = "multilabel"
    monitor: ClassVar[str] = "val/f1_micro"
    mode: ClassVar[Literal["min", "max"]] = "max"

    def __init__(
        self,
        extractor: nn.Module,
        num_classes: int,
        fusion: FusionFactory | str = "global_weighted",
        head: HeadFactory | str = "multilabel_linear",
        loss: Literal["bce", "focal"] = "bce",
        threshold: float = 0.5,
        class_weights: list[float] | None = None,
        **kwargs: Any,
    ) -> None:
        if not 0.0 < threshold < 1.0:
            raise ConfigError(f"threshold={threshold} must lie in (0, 1); the paper uses 0.5")
        if kwargs.get("ignore_index") is not None:
            raise ConfigError("ignore_index is not used by MultiLabelClassificationTask; remove it")
        self._loss_args = (loss, class_weights)
        self.threshold = threshold
        super().__init__(extractor, num_classes, fusion, head, **kwargs)

    def build_loss(self) -> nn.Module:
        """BCE-with-logits (or sigmoid focal)."""
        name, weights = self._loss_args
        return MultilabelLossFn(name, self.num_classes, weights)

    def build_metrics(self) -> MetricCollection:
        """See :func:`satdifuser.tasks.metrics.multilabel_metrics`."""
        return multilabel_metrics(self.num_classes, self.threshold)

    def predictions(self, logits: Tensor) -> Tensor:
        """Multi-hot predictions: ``sigmoid(logits) > threshold``."""
        return (torch.sigmoid(logits.float()) > self.threshold).long()

    def target_of(self, batch: dict[str, Any]) -> Tensor:
        """``batch["label"]`` as (B, K) 0/1 int64; the width must equal ``num_classes``."""
        needs = "a multi-label data module must yield label (B, K) multi-hot vectors"
        y = batch_tensor(batch, "label", needs)
        if y.ndim != 2:
            raise InputError(
                f"batch label has shape {tuple(y.shape)}; MultiLabelClassificationTask needs "
                "(B, K) multi-hot labels (class ids: use ClassificationTask)"
            )
        if y.shape[1] != self.num_classes:
            raise ConfigError(
                f"batch labels have {y.shape[1]} entries but model.init_args.num_classes="
                f"{self.num_classes}; set num_classes: {y.shape[1]}"
            )
        if bool(((y != 0) & (y != 1)).any()):
            bad = y[(y != 0) & (y != 1)][0].item()
            raise InputError(f"multi-hot label holds value {bad}; entries must be 0 or 1")
        return y.long()


__all__ = ["ClassificationTask", "MultiLabelClassificationTask"]
