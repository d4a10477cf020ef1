"""The pixel resampling of a model's input contract: native pixels x ``resample`` -> model pixels.

A model trained on imagery resized by a factor (``ScaledTiles(scale=0.25)``: 4x coarser pixels)
only sees the world at that scale. Its ``input.resample`` records the factor, and prediction
resizes native pixels by it before the model (and, for segmentation, resizes the class
probabilities back to the native grid). The resize is the training one (``ScaledTiles``):
bilinear, antialiased, ``align_corners=False``, so downsampling averages like an area filter.

.. versionadded:: 0.2
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from satdifuser.errors import ConfigError

MAX_RESAMPLE = 4.0
"""Largest factor accepted (4x upsampling); the smallest is anything above 0."""


def check_resample(value: Any, name: str = "resample") -> float:
    """``value`` as a float in (0, :data:`MAX_RESAMPLE`].

    Raises:
        ConfigError: Not a number, not finite, <= 0 or above the maximum.
    """
    try:
        factor = float(value)
    except (TypeError, ValueError):
        factor = math.nan
    if not (math.isfinite(factor) and 0 < factor <= MAX_RESAMPLE):
        raise ConfigError(
            f"{name}={value!r} must be a number in (0, {MAX_RESAMPLE:g}]: the factor applied to "
            "native pixels before the model (0.25 = 4x coarser, 1 = as they are)"
        )
    return factor


def resampled_size(height: int, width: int, factor: float) -> tuple[int, int]:
    """``(round(height * factor), round(width * factor))``, at least 1 each (``ScaledTiles``)."""
    return max(1, round(height * factor)), max(1, round(width * factor))


def resize_images(images: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, C, H, W) -> (B, C, *size), antialiased bilinear; the dtype is kept.

    Integer pixels (raw rasters for an input spec) are resized in float32, rounded and clipped
    to the dtype's range, so the model sees the dtype it was trained on.
    """
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    x = images if images.is_floating_point() else images.float()
    out = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    if images.is_floating_point():
        return out.to(images.dtype)
    info = torch.iinfo(images.dtype)
    return out.round_().clamp_(info.min, info.max).to(images.dtype)


def resize_probabilities(probs: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, K, h, w) class probabilities -> (B, K, *size), bilinear (a convex mix: sums stay 1)."""
    if tuple(probs.shape[-2:]) == tuple(size):
        return probs
    return F.interpolate(probs.float(), size=size, mode="bilinear", antialias=True,
                         align_corners=False)  # fmt: skip


__all__ = ["MAX_RESAMPLE", "check_resample", "resampled_size", "resize_images",
           "resize_probabilities"]  # fmt: skip
