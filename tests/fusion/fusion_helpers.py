"""Tiny FeatureInfo layouts and random feature maps for the fusion tests (no backbone)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from satdifuser.features.spec import FeatureInfo

# (tap, channels, reduction): 3 scales, taps unsorted on purpose (coarse tap listed first).
TINY_TAPS: list[tuple[str, int, int]] = [
    ("up_blocks.0.resnets.0.conv2", 64, 32),
    ("up_blocks.1.attentions.0.transformer_blocks.0.attn1", 64, 16),
    ("up_blocks.1.resnets.0.conv2", 64, 16),
    ("up_blocks.2.attentions.0.transformer_blocks.0.attn1", 32, 8),
    ("up_blocks.2.resnets.0.conv2", 32, 8),
]

SMALL = {"projection_dim": 32, "bottleneck_dim": 8}
"""Small fuser sizes for fast tests."""


def build_info(
    timesteps: Sequence[int] = (21, 61, 161),
    taps: Sequence[tuple[str, int, int]] = tuple(TINY_TAPS),
) -> list[FeatureInfo]:
    """Timestep-major, then taps: the extractor contract."""
    return [FeatureInfo(tap, t, c, r) for t in timesteps for tap, c, r in taps]


def build_features(
    info: Sequence[FeatureInfo], batch: int = 2, image_size: int = 64
) -> list[Tensor]:
    """Random maps with shape (B, C, image_size / reduction, image_size / reduction)."""
    return [
        torch.randn(batch, f.channels, image_size // f.reduction, image_size // f.reduction)
        for f in info
    ]
