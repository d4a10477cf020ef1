"""Feature extraction from frozen diffusion backbones.

Example:
    >>> import torch
    >>> from satdifuser.features import FeatureExtractor
    >>> fx = FeatureExtractor("tiny-sd", timesteps=[21, 61], taps=["up_blocks.*.conv2"])
    >>> maps = fx(torch.rand(2, 3, 32, 32))
    >>> [p.shape[1] for p in fx.pyramid(maps)] == fx.pyramid_channels()
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from satdifuser.features.spec import (
    DEFAULT_TAPS,
    DEFAULT_TIMESTEPS,
    FeatureInfo,
    FeatureSpec,
    scales,
    taps_of,
    timesteps_of,
)

if TYPE_CHECKING:
    from satdifuser.features.extractor import PREPROCESSING, FeatureExtractor
    from satdifuser.features.pooling import PooledExtractor

# Heavy members (they import diffusers) load on first use, so that fusion and heads, which only
# need FeatureInfo, never pull in a backbone (PEP 562).
_LAZY = {
    "FeatureExtractor": "satdifuser.features.extractor",
    "PREPROCESSING": "satdifuser.features.extractor",
    "PooledExtractor": "satdifuser.features.pooling",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'satdifuser.features' has no attribute {name!r}")


__all__ = [
    "DEFAULT_TAPS",
    "DEFAULT_TIMESTEPS",
    "PREPROCESSING",
    "FeatureExtractor",
    "FeatureInfo",
    "FeatureSpec",
    "PooledExtractor",
    "scales",
    "taps_of",
    "timesteps_of",
]
