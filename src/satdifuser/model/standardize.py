"""Per-channel standardisation of feature maps, a fixed affine map in front of the fuser.

Raw diffusion maps differ in scale by orders of magnitude between taps; fusers train poorly in
few epochs on them (measured on EuroSAT: concat 31 % -> 59 %, GW 60 % -> 66 % with
standardisation). The statistics come from the training features once, are stored as buffers
(so they travel in ``state_dict`` and in a saved model) and never train.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

from satdifuser.errors import ConfigError, InputError


class ChannelStandardizer(nn.Module):
    """``(x - mean) / std`` per map and channel; the identity when disabled.

    Args:
        channels: Channels of every input map, in ``feature_info`` order.
        enabled: False makes this a no-op (statistics are still stored, as ones and zeros).
    """

    def __init__(self, channels: Sequence[int], enabled: bool = True) -> None:
        super().__init__()
        self.channels = [int(c) for c in channels]
        self.enabled = bool(enabled)
        for i, c in enumerate(self.channels):
            self.register_buffer(f"mean{i}", torch.zeros(1, c, 1, 1))
            self.register_buffer(f"std{i}", torch.ones(1, c, 1, 1))
        self.register_buffer("fitted", torch.tensor(False))

    @property
    def is_fitted(self) -> bool:
        """True once :meth:`fit` (or a loaded state) has set the statistics."""
        return bool(self.fitted)

    @torch.no_grad()
    def fit(self, batches: Iterable[Sequence[Tensor]]) -> int:
        """Set mean and std (unbiased, clamped at 1e-6) over every row and pixel of ``batches``.

        Args:
            batches: Iterable of feature lists (one ``(B, C, h, w)`` tensor per map).

        Returns:
            The number of rows seen.

        Raises:
            InputError: no rows, a map count or channel count that differs, or non-finite values.
        """
        n_maps = len(self.channels)
        sums = [torch.zeros(c, dtype=torch.float64) for c in self.channels]
        squares = [torch.zeros(c, dtype=torch.float64) for c in self.channels]
        count = [0] * n_maps
        rows = 0
        for maps in batches:
            if len(maps) != n_maps:
                raise InputError(
                    f"standardiser expects {n_maps} feature maps per batch, got {len(maps)}; "
                    "the features do not come from this model's extractor"
                )
            for i, m in enumerate(maps):
                x = m.detach().to("cpu", torch.float64)
                if x.shape[1] != self.channels[i]:
                    raise InputError(
                        f"feature map {i} has {x.shape[1]} channels, expected {self.channels[i]}"
                    )
                sums[i] += x.sum(dim=(0, 2, 3))
                squares[i] += x.pow(2).sum(dim=(0, 2, 3))
                count[i] += x.shape[0] * x.shape[2] * x.shape[3]
            rows += int(maps[0].shape[0])
        if rows == 0:
            raise InputError("standardiser got no training rows; check the training split")
        for i in range(n_maps):
            n = count[i]
            mean = sums[i] / n
            var = (squares[i] - n * mean.pow(2)).clamp_min(0) / max(1, n - 1)
            if not (torch.isfinite(mean).all() and torch.isfinite(var).all()):
                raise InputError(
                    f"feature map {i} holds non-finite values; rebuild the feature cache"
                )
            getattr(self, f"mean{i}").copy_(mean.float().view(1, -1, 1, 1))
            getattr(self, f"std{i}").copy_(var.sqrt().clamp_min(1e-6).float().view(1, -1, 1, 1))
        self.fitted.fill_(True)
        return rows

    def forward(self, maps: Sequence[Tensor]) -> list[Tensor]:
        """Standardised maps (the inputs unchanged when disabled)."""
        if not self.enabled:
            return list(maps)
        if not self.is_fitted:
            raise ConfigError(
                "standardize is on but the statistics were never fitted; train with fit (it fits "
                "them on the training features) or load a saved model"
            )
        return [(m - getattr(self, f"mean{i}")) / getattr(self, f"std{i}")
                for i, m in enumerate(maps)]  # fmt: skip

    def extra_repr(self) -> str:
        return f"maps={len(self.channels)}, enabled={self.enabled}"


__all__ = ["ChannelStandardizer"]
