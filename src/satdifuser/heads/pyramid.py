"""Pieces shared by the pyramid segmentation heads (:class:`FPNHead`, :class:`UPerNetHead`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def upsample_to(x: Tensor, size: torch.Size | tuple[int, ...]) -> Tensor:
    """Bilinear (``align_corners=False``) resize of ``(B, C, h, w)`` to ``size``; ``x`` itself
    when it already has that size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def top_down_add(levels: list[Tensor]) -> list[Tensor]:
    """FPN top-down pathway: from the coarsest level, add each level upsampled to the next finer
    one. ``levels`` (finest first) is updated in place and returned."""
    for i in range(len(levels) - 1, 0, -1):
        levels[i - 1] = levels[i - 1] + upsample_to(levels[i], levels[i - 1].shape[-2:])
    return levels


def dropout_and_classifier(
    channels: int, num_classes: int, dropout: float
) -> tuple[nn.Module, nn.Conv2d]:
    """The end of a segmentation head: Dropout2d (Identity at 0) and the 1x1 ``conv_seg``
    ``channels -> num_classes`` with N(0, 0.01) weights and zero bias (mmsegmentation's init)."""
    drop: nn.Module = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
    conv_seg = nn.Conv2d(channels, num_classes, 1)
    nn.init.normal_(conv_seg.weight, std=0.01)
    nn.init.zeros_(conv_seg.bias)
    return drop, conv_seg


__all__ = ["dropout_and_classifier", "top_down_add", "upsample_to"]
