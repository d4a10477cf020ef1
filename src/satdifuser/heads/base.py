"""The head contract: a list of feature maps (finest first) in, logits out.

Heads know only the channel count of each input map (the fuser's ``out_channels``), never the
backbone. Classification heads return ``(B, K)``; segmentation heads return ``(B, K, H, W)`` at
``output_size`` (the label size) or, when it is None, at the finest input map's size.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from satdifuser.errors import ConfigError, InputShapeError
from satdifuser.registry import Registry, recorded_init

HEADS: Registry = Registry("head")
"""Heads by registry name: ``linear``, ``multilabel_linear``, ``upernet``, ``fpn``."""


class BaseHead(nn.Module):
    """Base class of all heads: validates channels and inputs.

    Args:
        in_channels: Channels of each input map, finest first.
        num_classes: Number of output logits K per sample (classification) or pixel.

    Raises:
        ConfigError: empty ``in_channels`` or a size below 1.
    """

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        recorded_init(cls, skip=("in_channels", "num_classes"))

    def __init__(self, in_channels: Sequence[int], num_classes: int) -> None:
        super().__init__()
        name = type(self).__name__
        channels = [int(c) for c in in_channels]
        if not channels or min(channels) < 1:
            raise ConfigError(
                f"{name} in_channels={list(in_channels)!r} must be a non-empty list of positive "
                "channel counts; pass the fuser's out_channels"
            )
        if num_classes < 1:
            raise ConfigError(f"{name} num_classes={num_classes} must be >= 1")
        self.in_channels = channels
        self.num_classes = int(num_classes)

    def _check(self, features: Sequence[Tensor]) -> list[Tensor]:
        """Validate the input list against ``in_channels``.

        Raises:
            InputShapeError: not a list, wrong count, rank, channels or batch size.
        """
        name = type(self).__name__
        if isinstance(features, Tensor) or not isinstance(features, Sequence):
            raise InputShapeError(
                f"{name}.forward expects a list of (B, C, H, W) tensors, got "
                f"{type(features).__name__}; pass the fuser's output list"
            )
        if len(features) != len(self.in_channels):
            raise InputShapeError(
                f"{name}.forward got {len(features)} maps but was built for "
                f"{len(self.in_channels)} (in_channels={self.in_channels}); build the head from "
                "the fuser's out_channels"
            )
        batch = features[0].shape[0] if features[0].ndim == 4 else None
        for i, (x, c) in enumerate(zip(features, self.in_channels, strict=True)):
            if x.ndim != 4 or x.shape[1] != c or x.shape[0] != batch:
                raise InputShapeError(
                    f"{name}: map {i} has shape {tuple(x.shape)}, expected ({batch}, {c}, H, W); "
                    "check that the head matches the fuser"
                )
        return list(features)

    def forward(  # pragma: no cover - abstract
        self, features: list[Tensor], output_size: tuple[int, int] | None = None
    ) -> Tensor:
        """Logits from ``features`` (finest first)."""
        raise NotImplementedError


def resize_logits(logits: Tensor, output_size: tuple[int, int] | None) -> Tensor:
    """Bilinear (``align_corners=False``) resize of ``(B, K, h, w)`` logits to ``output_size``.

    Raises:
        InputShapeError: ``output_size`` is not two positive integers.
    """
    if output_size is None:
        return logits
    size = tuple(int(s) for s in output_size)
    if len(size) != 2 or min(size) < 1:
        raise InputShapeError(
            f"output_size={output_size!r} must be (height, width) with positive values; pass the "
            "label's spatial size"
        )
    if tuple(logits.shape[-2:]) == size:
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def create_head(
    name: str, in_channels: Sequence[int], num_classes: int, **kwargs: object
) -> BaseHead:
    """Build a registered head by name.

    Raises:
        UnknownNameError: unknown ``name`` (with close-name suggestions).
        ConfigError: a keyword the head does not take.
    """
    cls = HEADS.get(name)
    fixed = ("in_channels", "num_classes")
    accepted = [p for p in inspect.signature(cls).parameters if p not in fixed]
    for key in kwargs:
        if key not in accepted:
            raise ConfigError(
                f"head {name!r} takes no argument {key!r}; accepted: {', '.join(accepted)}"
            )
    return cls(in_channels, num_classes, **kwargs)


__all__ = ["HEADS", "BaseHead", "create_head", "resize_logits"]
