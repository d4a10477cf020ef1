"""Localized Weighted fusion (LW): per-pixel softmax gates over a scale's maps (method.md 6.3)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from satdifuser.errors import ConfigError
from satdifuser.features.spec import FeatureInfo
from satdifuser.fusion.base import FUSIONS, BaseFusion
from satdifuser.fusion.projection import BottleneckBlock, project_timesteps


@FUSIONS.register("local_weighted")
class LocalWeightedFusion(BaseFusion):
    """Per-pixel gated sum of the projected maps of each scale.

    Same projections as GW (one :class:`BottleneckBlock` per tap, shared across timesteps). At
    scale s the ``K_s = T·L_s`` projected maps ``P_k`` (timestep-major, then taps) are averaged; a
    1x1 convolution ``projection_dim -> K_s`` (with bias) on that mean gives per-pixel logits:

    ``G = softmax_k(Conv1x1(mean_k P_k) / τ)``, ``X_s(u, v) = Σ_k G_k(u, v) · P_k(u, v)``

    For the SD 2.1 default this is 10,850,688 + 24,255 = 10,874,943 parameters.

    Args:
        feature_info: The extractor's feature_info.
        projection_dim: Output channels of every scale.
        bottleneck_dim: Inner width of the projection blocks.
        num_groups: GroupNorm groups (largest divisor of the width if it does not divide).
        temperature: Fixed softmax temperature τ of the gates (the reference uses 1).
    """

    def __init__(
        self,
        feature_info: Sequence[FeatureInfo],
        *,
        projection_dim: int = 384,
        bottleneck_dim: int = 96,
        num_groups: int = 32,
        temperature: float = 1.0,
    ) -> None:
        super().__init__(feature_info)
        if not temperature > 0:
            raise ConfigError(f"LocalWeightedFusion temperature={temperature} must be > 0")
        self.temperature = float(temperature)
        self.projections = nn.ModuleList(
            BottleneckBlock(c, projection_dim, bottleneck_dim, num_groups)
            for c in self.tap_channels
        )
        self.gates = nn.ModuleList(
            nn.Conv2d(projection_dim, self.num_timesteps * len(taps), 1) for taps in self.scale_taps
        )
        self.out_channels = [projection_dim] * len(self.out_reductions)
        self.register_buffer(
            "last_gate_mean", torch.zeros(self.num_timesteps, len(self.taps)), persistent=False
        )

    def forward(self, features: list[Tensor]) -> list[Tensor]:
        """Fuse ``feature_info``-ordered maps into one map per scale, finest first.

        Also records the gates' mean over batch and pixels in ``last_gate_mean`` (T, n_taps).
        """
        grid = self._grid(features)
        projected: list[list[Tensor]] = [[] for _ in grid]  # [t][tap]
        for li, proj in enumerate(self.projections):
            for ti, p in enumerate(project_timesteps(proj, [row[li] for row in grid])):
                projected[ti].append(p)
        outs: list[Tensor] = []
        record = torch.zeros_like(self.last_gate_mean)
        for s, taps in enumerate(self.scale_taps):
            maps = [projected[ti][li] for ti in range(self.num_timesteps) for li in taps]
            mean = torch.stack(maps, dim=0).mean(dim=0)
            gate = (self.gates[s](mean) / self.temperature).softmax(dim=1)  # (B, K_s, H, W)
            fused = sum(gate[:, k : k + 1] * m for k, m in enumerate(maps))
            outs.append(fused)  # type: ignore[arg-type]
            with torch.no_grad():
                g = gate.mean(dim=(0, 2, 3)).view(self.num_timesteps, len(taps))
                record[:, taps] = g.to(record.dtype)
        self.last_gate_mean.copy_(record)
        return outs

    def interpretable_weights(self) -> dict[str, Tensor]:
        """``mean_gate``: mean gate per (timestep, tap) over the last forward's batch and pixels.

        Gates are a softmax within each scale, so each scale's block of columns sums to 1 (the
        whole matrix sums to the number of scales). All zeros before the first forward.
        """
        return {"mean_gate": self.last_gate_mean.detach().cpu().clone()}


__all__ = ["LocalWeightedFusion"]
