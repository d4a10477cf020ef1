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

from satdifuser.features.extractor import PREPROCESSING, FeatureExtractor
from satdifuser.features.spec import (
    DEFAULT_TAPS,
    DEFAULT_TIMESTEPS,
    FeatureInfo,
    FeatureSpec,
    scales,
    taps_of,
    timesteps_of,
)

__all__ = [
    "DEFAULT_TAPS",
    "DEFAULT_TIMESTEPS",
    "PREPROCESSING",
    "FeatureExtractor",
    "FeatureInfo",
    "FeatureSpec",
    "scales",
    "taps_of",
    "timesteps_of",
]
