"""Concatenation baseline: stack every tap and timestep of a scale, project linearly."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from satdifuser.features.spec import FeatureInfo
from satdifuser.fusion.base import FUSIONS, BaseFusion
from satdifuser.fusion.projection import group_norm


@FUSIONS.register("concat")
class ConcatFusion(BaseFusion):
    """The "simple concatenation" baseline of the paper's fusion ablation.

    Per scale s, all raw maps of that scale (every timestep and tap, timestep-major) are
    concatenated along channels, ``T·C_s`` in total, and projected by one 1x1 convolution (no bias)
    to ``projection_dim``, followed by GroupNorm (``norm=True``, default: raw diffusion features
    differ in magnitude by orders between taps) or a plain bias. No nonlinearity, no learnt
    weighting: this is the linear baseline that the weighted fusers are compared against. The
    paper does not specify its baseline exactly; this is our definition. Parameters for the SD 2.1
    default (T = 3): ``Σ_s (3·C_s·384 + 768)`` = 19,909,632.

    Args:
        feature_info: The extractor's feature_info.
        projection_dim: Output channels of every scale.
        num_groups: GroupNorm groups (largest divisor of ``projection_dim`` if it does not divide).
        norm: GroupNorm after the projection (else the convolution has a bias).
    """

    def __init__(
        self,
        feature_info: Sequence[FeatureInfo],
        *,
        projection_dim: int = 384,
        num_groups: int = 32,
        norm: bool = True,
    ) -> None:
        super().__init__(feature_info)
        layers: list[nn.Sequential] = []
        for taps in self.scale_taps:
            in_ch = self.num_timesteps * sum(self.tap_channels[li] for li in taps)
            conv = nn.Conv2d(in_ch, projection_dim, 1, bias=not norm)
            mods: list[nn.Module] = [conv]
            if norm:
                mods.append(group_norm(projection_dim, num_groups))
            layers.append(nn.Sequential(*mods))
        self.projections = nn.ModuleList(layers)
        self.out_channels = [projection_dim] * len(self.out_reductions)

    def forward(self, features: list[Tensor]) -> list[Tensor]:
        """Fuse ``feature_info``-ordered maps into one map per scale, finest first."""
        grid = self._grid(features)
        outs = []
        for s, taps in enumerate(self.scale_taps):
            stacked = torch.cat([row[li] for row in grid for li in taps], dim=1)
            outs.append(self.projections[s](stacked))
        return outs


__all__ = ["ConcatFusion"]
