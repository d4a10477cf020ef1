"""Conv -> norm -> ReLU blocks for the segmentation heads, safe for a batch of one."""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from satdifuser.errors import ConfigError


class SafeBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm that falls back to its running statistics when a training batch has one value
    per channel (batch 1 on a 1x1 pooled map), where plain BatchNorm raises.

    That call neither updates the running statistics nor fails; all other calls are plain
    BatchNorm (the reference's SyncBatchNorm without DDP).
    """

    def forward(self, x: Tensor) -> Tensor:
        """Normalise ``(B, C, H, W)``."""
        if self.training and x.shape[0] * x.shape[2] * x.shape[3] == 1:
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        return super().forward(x)


def make_norm(kind: Literal["batch", "group"], channels: int, num_groups: int) -> nn.Module:
    """``batch``: :class:`SafeBatchNorm2d`; ``group``: GroupNorm with the largest divisor of
    ``channels`` that is at most ``num_groups`` and leaves at least 2 channels per group (one
    channel per group on a 1x1 pooled map would normalise a single value)."""
    if kind == "batch":
        return SafeBatchNorm2d(channels)
    if kind == "group":
        limit = max(1, min(num_groups, channels // 2))
        groups = max(g for g in range(1, limit + 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    raise ConfigError(f"norm={kind!r} is unknown; expected 'batch' or 'group'")


class ConvNormAct(nn.Sequential):
    """``Conv2d`` (with bias, as in the reference's UPerNet) -> norm -> ReLU.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Square kernel, padded to keep the size.
        norm: ``batch`` or ``group``.
        num_groups: Groups for ``group`` norm.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        norm: Literal["batch", "group"] = "batch",
        num_groups: int = 32,
    ) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
            make_norm(norm, out_channels, num_groups),
            nn.ReLU(inplace=True),
        )


__all__ = ["ConvNormAct", "SafeBatchNorm2d", "make_norm"]
