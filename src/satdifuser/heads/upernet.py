"""UPerNet segmentation head: pyramid pooling on the coarsest map plus an FPN (method.md 7)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from satdifuser.errors import ConfigError
from satdifuser.heads.base import HEADS, BaseHead, resize_logits
from satdifuser.heads.conv_norm import ConvNormAct
from satdifuser.heads.pyramid import dropout_and_classifier, top_down_add, upsample_to


@HEADS.register("upernet")
class UPerNetHead(BaseHead):
    """mmsegmentation-style UPerHead as used by the reference.

    - PPM on the **coarsest** (last) map: per pool scale, adaptive average pool -> 1x1 ConvNormAct
      ``C_last -> channels`` -> upsample; concatenated with the input -> 3x3 ConvNormAct.
    - FPN: 1x1 lateral ConvNormAct on every other map, top-down bilinear adds, 3x3 ConvNormAct
      per level; all levels upsampled to the finest map and concatenated -> 3x3 ConvNormAct ->
      Dropout2d -> 1x1 ``conv_seg`` (``channels -> K``).
    - Logits are bilinearly resized to ``output_size`` (the label size) when given.

    Convolutions carry a bias before their norm, matching the reference's count of 29,116,416
    parameters without ``conv_seg`` for four 384-channel maps. ``norm="batch"`` (reference) uses
    :class:`~satdifuser.heads.conv_norm.SafeBatchNorm2d`, so a training batch of one works even on
    the 1x1 pooled branch; ``norm="group"`` avoids batch statistics altogether.

    Args:
        in_channels: Channels of each input map, finest first.
        num_classes: Number of classes K.
        channels: Width of the PPM/FPN.
        pool_scales: Output sizes of the PPM branches.
        dropout: Dropout2d probability before ``conv_seg``.
        norm: ``batch`` or ``group``.
        num_groups: Groups for ``group`` norm.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int,
        channels: int = 512,
        pool_scales: Sequence[int] = (1, 2, 3, 6),
        dropout: float = 0.1,
        norm: Literal["batch", "group"] = "batch",
        num_groups: int = 32,
    ) -> None:
        super().__init__(in_channels, num_classes)
        if channels < 1 or not pool_scales or min(pool_scales) < 1:
            raise ConfigError(
                f"UPerNetHead channels={channels}, pool_scales={list(pool_scales)} must be "
                "positive (e.g. channels=512, pool_scales=(1, 2, 3, 6))"
            )
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"UPerNetHead dropout={dropout} must be in [0, 1)")
        self.pool_scales = tuple(int(s) for s in pool_scales)
        last = self.in_channels[-1]

        def cna(cin: int, cout: int, k: int) -> ConvNormAct:
            return ConvNormAct(cin, cout, k, norm=norm, num_groups=num_groups)

        self.ppm = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(s), cna(last, channels, 1)) for s in self.pool_scales
        )
        self.ppm_bottleneck = cna(last + len(self.pool_scales) * channels, channels, 3)
        self.lateral_convs = nn.ModuleList(cna(c, channels, 1) for c in self.in_channels[:-1])
        self.fpn_convs = nn.ModuleList(cna(channels, channels, 3) for _ in self.in_channels[:-1])
        self.fpn_bottleneck = cna(len(self.in_channels) * channels, channels, 3)
        self.dropout, self.conv_seg = dropout_and_classifier(channels, self.num_classes, dropout)

    def forward(
        self, features: list[Tensor], output_size: tuple[int, int] | None = None
    ) -> Tensor:
        """Logits ``(B, K, *output_size)``, or at the finest map's size when it is None."""
        feats = self._check(features)
        coarse = feats[-1]
        pooled = [upsample_to(branch(coarse), coarse.shape[-2:]) for branch in self.ppm]
        levels = [lat(f) for lat, f in zip(self.lateral_convs, feats[:-1], strict=True)]
        levels.append(self.ppm_bottleneck(torch.cat([coarse, *pooled], dim=1)))
        top_down_add(levels)
        outs = [conv(x) for conv, x in zip(self.fpn_convs, levels[:-1], strict=True)]
        outs.append(levels[-1])
        size = outs[0].shape[-2:]
        fused = self.fpn_bottleneck(torch.cat([upsample_to(o, size) for o in outs], dim=1))
        return resize_logits(self.conv_seg(self.dropout(fused)), output_size)


__all__ = ["UPerNetHead"]
