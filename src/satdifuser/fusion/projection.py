"""The projection block Φ shared by the fusers: a detectron2-style bottleneck residual block.

``1x1 C->b`` -> GN -> ReLU -> ``3x3 b->b`` -> GN -> ReLU -> ``1x1 b->D`` -> GN, plus a shortcut
``1x1 C->D`` (no bias) -> GN; add, ReLU (method.md section 6.1). Convolutions carry no bias (the
GroupNorm that follows has one), so the block has ``(b + D)·C + 9·b² + b·D + 4·b + 4·D`` parameters:
``480·C + 121,728`` for the default ``b = 96``, ``D = 384``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from satdifuser.errors import ConfigError


def group_count(channels: int, num_groups: int) -> int:
    """Largest divisor of ``channels`` that is at most ``num_groups``.

    GroupNorm needs ``channels % groups == 0``. The defaults (96 and 384 channels, 32 groups) divide
    evenly; small test models (e.g. a 24-channel bottleneck) fall back to the largest divisor that
    fits (24 -> 24, 20 -> 20, 40 -> 20), so narrow configurations still build.

    Raises:
        ConfigError: ``channels`` or ``num_groups`` is below 1.
    """
    if channels < 1 or num_groups < 1:
        raise ConfigError(
            f"GroupNorm needs channels >= 1 and num_groups >= 1, got channels={channels}, "
            f"num_groups={num_groups}; pass positive sizes"
        )
    for g in range(min(num_groups, channels), 0, -1):
        if channels % g == 0:
            return g
    return 1  # pragma: no cover - g = 1 always divides


def group_norm(channels: int, num_groups: int) -> nn.GroupNorm:
    """``nn.GroupNorm`` with :func:`group_count` groups, weight 1 and bias 0."""
    return nn.GroupNorm(group_count(channels, num_groups), channels)


class BottleneckBlock(nn.Module):
    """Bottleneck residual projection ``(B, C, H, W) -> (B, D, H, W)``, stride 1.

    Args:
        in_channels: Input channels C.
        out_channels: Output channels D (``projection_dim``).
        bottleneck_channels: Width b of the inner 3x3 convolution.
        num_groups: GroupNorm groups (reduced to the largest divisor of each width if needed, see
            :func:`group_count`).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 384,
        bottleneck_channels: int = 96,
        num_groups: int = 32,
    ) -> None:
        super().__init__()
        for name, value in [
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("bottleneck_channels", bottleneck_channels),
        ]:
            if value < 1:
                raise ConfigError(
                    f"BottleneckBlock {name}={value} must be >= 1; pass a positive size"
                )
        b, d = bottleneck_channels, out_channels
        self.conv1 = nn.Conv2d(in_channels, b, 1, bias=False)
        self.norm1 = group_norm(b, num_groups)
        self.conv2 = nn.Conv2d(b, b, 3, padding=1, bias=False)
        self.norm2 = group_norm(b, num_groups)
        self.conv3 = nn.Conv2d(b, d, 1, bias=False)
        self.norm3 = group_norm(d, num_groups)
        self.shortcut = nn.Conv2d(in_channels, d, 1, bias=False)
        self.shortcut_norm = group_norm(d, num_groups)
        self.act = nn.ReLU(inplace=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-normal (fan_out) convolutions like detectron2's ``c2_msra_fill``; GN 1 / 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.GroupNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Project ``(B, C, H, W)`` to ``(B, D, H, W)``."""
        out = self.act(self.norm1(self.conv1(x)))
        out = self.act(self.norm2(self.conv2(out)))
        out = self.norm3(self.conv3(out))
        return self.act(out + self.shortcut_norm(self.shortcut(x)))


def project_timesteps(module: nn.Module, maps: list[Tensor]) -> list[Tensor]:
    """Apply one (per-sample) module to the same tap at every timestep in a single call.

    The maps are stacked along the batch axis, so T timesteps cost one launch; GroupNorm works per
    sample, so the result equals calling ``module`` on each map.
    """
    if len(maps) == 1:
        return [module(maps[0])]
    return list(module(torch.cat(maps, dim=0)).split(maps[0].shape[0], dim=0))


__all__ = ["BottleneckBlock", "group_count", "group_norm", "project_timesteps"]
