"""Figures from tensors: fusion weights, confusion matrices, segmentation panels.

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot global state) and
written atomically as PNG.
"""

from __future__ import annotations

from satdifuser.viz.atomic import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    save_figure,
)
from satdifuser.viz.confusion import confusion_matrix_figure, plot_confusion_matrix
from satdifuser.viz.fusion_weights import fusion_weights_figure, plot_fusion_weights
from satdifuser.viz.segmentation import plot_segmentation_panels, segmentation_panels_figure

__all__ = [
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "confusion_matrix_figure",
    "fusion_weights_figure",
    "plot_confusion_matrix",
    "plot_fusion_weights",
    "plot_segmentation_panels",
    "save_figure",
    "segmentation_panels_figure",
]
