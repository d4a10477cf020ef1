"""Lightning tasks: frozen extractor -> trainable fusion -> trainable head, with metrics.

Example:
    >>> from satdifuser.features import FeatureExtractor
    >>> from satdifuser.tasks import ClassificationTask
    >>> task = ClassificationTask(FeatureExtractor("tiny-pixel"), num_classes=10)
    >>> sorted({type(m).__name__ for m in (task.fusion, task.head)})
    ['GlobalWeightedFusion', 'LinearHead']
"""

from __future__ import annotations

from satdifuser.tasks.base import BaseTask, FusionFactory, HeadFactory
from satdifuser.tasks.checkpoint import (
    BEST_NAME,
    BestTrainableCheckpoint,
    load_trainable,
    read_checkpoint,
    resolve_checkpoint,
    save_trainable,
)
from satdifuser.tasks.classification import ClassificationTask, MultiLabelClassificationTask
from satdifuser.tasks.metrics import (
    METRIC_CONVENTIONS,
    classification_metrics,
    multilabel_metrics,
    segmentation_metrics,
)
from satdifuser.tasks.report import write_evaluation_report
from satdifuser.tasks.runner import RunResult, fit_and_test
from satdifuser.tasks.schedule import warmup_cosine_lr, warmup_cosine_scheduler
from satdifuser.tasks.segmentation import SegmentationTask

__all__ = [
    "BEST_NAME",
    "METRIC_CONVENTIONS",
    "BaseTask",
    "BestTrainableCheckpoint",
    "ClassificationTask",
    "FusionFactory",
    "HeadFactory",
    "MultiLabelClassificationTask",
    "RunResult",
    "SegmentationTask",
    "classification_metrics",
    "fit_and_test",
    "load_trainable",
    "multilabel_metrics",
    "read_checkpoint",
    "resolve_checkpoint",
    "save_trainable",
    "segmentation_metrics",
    "warmup_cosine_lr",
    "warmup_cosine_scheduler",
    "write_evaluation_report",
]
