"""Global Weighted fusion (GW): one softmax over every (timestep, tap) pair (method.md 6.2)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from satdifuser.features.spec import FeatureInfo
from satdifuser.fusion.base import FUSIONS, BaseFusion
from satdifuser.fusion.projection import BottleneckBlock, project_timesteps


@FUSIONS.register("global_weighted")
class GlobalWeightedFusion(BaseFusion):
    """Weighted sum of projected taps with one learnable scalar per (timestep, tap).

    Each tap l gets a :class:`BottleneckBlock` ``Φ_l: C_l -> projection_dim``, shared across
    timesteps. The mixing logits ``m`` (shape ``(T, n_taps)``, initialised to ones, so all weights
    start equal) go through **one** softmax over all ``T·n_taps`` entries, not one per scale:

    ``X_s = Σ_t Σ_{l in s} softmax(m)[t, l] · Φ_l(F_{t,l})``

    For the SD 2.1 default (21 taps, T = 3) this is 21 blocks + 63 logits = 10,850,751 parameters.

    Args:
        feature_info: The extractor's feature_info.
        projection_dim: Output channels of every scale.
        bottleneck_dim: Inner width of the projection blocks.
        num_groups: GroupNorm groups (largest divisor of the width if it does not divide).
    """

    def __init__(
        self,
        feature_info: Sequence[FeatureInfo],
        *,
        projection_dim: int = 384,
        bottleneck_dim: int = 96,
        num_groups: int = 32,
    ) -> None:
        super().__init__(feature_info)
        self.projections = nn.ModuleList(
            BottleneckBlock(c, projection_dim, bottleneck_dim, num_groups)
            for c in self.tap_channels
        )
        self.mixing_logits = nn.Parameter(torch.ones(self.num_timesteps, len(self.taps)))
        self.out_channels = [projection_dim] * len(self.out_reductions)

    def mixing_weights(self) -> Tensor:
        """Softmax over all (timestep, tap) logits, shape ``(T, n_taps)``; sums to 1."""
        return self.mixing_logits.flatten().softmax(0).view_as(self.mixing_logits)

    def forward(self, features: list[Tensor]) -> list[Tensor]:
        """Fuse ``feature_info``-ordered maps into one map per scale, finest first."""
        grid = self._grid(features)
        w = self.mixing_weights()
        out: list[Tensor | None] = [None] * len(self.out_reductions)
        for li, proj in enumerate(self.projections):
            projected = project_timesteps(proj, [row[li] for row in grid])
            s = self.tap_scale[li]
            for ti, p in enumerate(projected):
                term = w[ti, li] * p
                out[s] = term if out[s] is None else out[s] + term
        return [o for o in out if o is not None]

    def interpretable_weights(self) -> dict[str, Tensor]:
        """``weights``: the mixing weights ``(T, n_taps)`` (they sum to 1 over all entries)."""
        return {"weights": self.mixing_weights().detach().cpu()}


__all__ = ["GlobalWeightedFusion"]
