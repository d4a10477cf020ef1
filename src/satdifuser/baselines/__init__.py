"""Non-diffusion baselines of the benchmarks.

- Extractors with the extractor contract (``feature_info`` + ``forward``):
  :class:`EfficientNetLiteExtractor` (its stages train through the satdifuser tasks like any
  extractor).
- Baselines that are not satdifuser models, with their training functions:
  :func:`linear_probe` (logistic regression on pooled cached features, see
  :func:`pooled_vectors`) and :class:`SmallCNN` trained from scratch by
  :func:`train_small_cnn`.
- The reference's own pipeline: :class:`ReferenceStyleExtractor` (features recomputed in every
  batch, 10 UNet passes per image, full maps) and its training loop :func:`reference_probe`
  (what ``bench probe_speed`` times against the cache).

The training functions load lazily (they need ``satdifuser.tasks.metrics``).
"""

from __future__ import annotations

from typing import Any

from satdifuser.baselines.efficientnet_lite import EfficientNetLiteExtractor
from satdifuser.baselines.small_cnn import SmallCNN

_LAZY = {
    "BaselineResult": "satdifuser.baselines.results",
    "CNNConfig": "satdifuser.baselines.cnn_training",
    "ReferenceProbeResult": "satdifuser.baselines.reference_extractor",
    "ReferenceStyleExtractor": "satdifuser.baselines.reference_extractor",
    "linear_probe": "satdifuser.baselines.logistic_probe",
    "load_images": "satdifuser.baselines.cnn_training",
    "pooled_vectors": "satdifuser.baselines.logistic_probe",
    "reference_probe": "satdifuser.baselines.reference_extractor",
    "train_small_cnn": "satdifuser.baselines.cnn_training",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'satdifuser.baselines' has no attribute {name!r}")


__all__ = [
    "BaselineResult",
    "CNNConfig",
    "EfficientNetLiteExtractor",
    "ReferenceProbeResult",
    "ReferenceStyleExtractor",
    "SmallCNN",
    "linear_probe",
    "load_images",
    "pooled_vectors",
    "reference_probe",
    "train_small_cnn",
]
