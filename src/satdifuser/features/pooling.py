"""Spatially pooled features: any extractor, every map average-pooled to at most N x N.

Spatial fusion at full resolution (a 64 px EuroSAT tile gives maps up to 64 x 64) is far too slow
to train many times on a 2-core CPU. :class:`PooledExtractor` wraps an extractor and
adaptive-average-pools each map to at most ``max_size`` x ``max_size``, so feature caches and
fusion modules work on small maps. It keeps the extractor contract (``feature_info`` known before
running, with the reductions of the pooled maps; ``forward(images, metadata)``; ``identity()``
and ``spec`` that include the pooling, so caches of pooled and raw features never mix).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from satdifuser.errors import ConfigError
from satdifuser.features.spec import FeatureInfo, FeatureSpec, taps_of, timesteps_of

POOLING = "adaptive_avg"
"""Name of the pooling recorded in ``spec.extra["pool"]`` and the identity."""


def pooled_side(side: int, max_size: int) -> int:
    """Side of a pooled map: ``side`` when it already fits, else ``max_size``."""
    return min(int(side), int(max_size))


def pool_map(fmap: Tensor, max_size: int) -> Tensor:
    """Adaptive-average-pool a ``(B, C, H, W)`` map so that each side is at most ``max_size``.

    Sides that already fit are kept (no upsampling); a map that fits entirely is returned as is.
    """
    h, w = int(fmap.shape[-2]), int(fmap.shape[-1])
    size = (pooled_side(h, max_size), pooled_side(w, max_size))
    if size == (h, w):
        return fmap
    return F.adaptive_avg_pool2d(fmap, size)


class PooledExtractor(nn.Module):
    """An extractor whose maps are adaptive-average-pooled to at most ``max_size`` per side.

    Args:
        extractor: A :class:`~satdifuser.features.FeatureExtractor` or any module with
            ``feature_info``, ``identity()`` and ``forward(images, metadata=None)`` (e.g.
            :class:`~satdifuser.baselines.EfficientNetLiteExtractor`).
        max_size: Largest side of a returned map (>= 1); 1 is global average pooling.
        image_size: Square working size of the wrapped extractor in pixels; None takes
            ``extractor.spec.image_size`` or ``extractor.image_size``. Needed to state the
            reductions of the pooled maps.

    Attributes:
        feature_info: The wrapped extractor's entries with the reduction of the pooled maps
            (``image_size // pooled side``): every map pooled to the same side shares one
            reduction, i.e. one fusion scale.
        spec: The wrapped extractor's :class:`FeatureSpec` with ``extra["pool"]`` set (one is
            built from ``feature_info`` for extractors without a spec).

    Raises:
        ConfigError: ``max_size`` < 1, or the working size is unknown.

    .. versionadded:: 0.1
    """

    def __init__(self, extractor: nn.Module, max_size: int, image_size: int | None = None) -> None:
        super().__init__()
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
            raise ConfigError(
                f"PooledExtractor max_size={max_size!r} must be an integer >= 1 (e.g. 4 for "
                "4 x 4 maps, 1 for global pooling)"
            )
        inner_info = getattr(extractor, "feature_info", None)
        if not inner_info or not callable(getattr(extractor, "identity", None)):
            raise ConfigError(
                f"PooledExtractor needs an extractor with feature_info and identity(), got "
                f"{type(extractor).__name__}; wrap a satdifuser FeatureExtractor"
            )
        inner_spec = getattr(extractor, "spec", None)
        size = image_size
        if size is None:
            size = getattr(inner_spec, "image_size", None) or getattr(extractor, "image_size", None)
        if not size or int(size) < 1:
            raise ConfigError(
                f"PooledExtractor cannot tell the working image size of {type(extractor).__name__} "
                "(its spec.image_size is unset or 0); pass image_size=<pixels>"
            )
        self.extractor = extractor
        self.max_size = int(max_size)
        self.image_size = int(size)
        self.feature_info: list[FeatureInfo] = [self._pooled_info(f) for f in inner_info]
        pool = f"{POOLING}:{self.max_size}"
        if isinstance(inner_spec, FeatureSpec):
            self.spec = dataclasses.replace(inner_spec, extra={**inner_spec.extra, "pool": pool})
        else:
            self.spec = FeatureSpec(
                timesteps=tuple(timesteps_of(inner_info)),
                taps=tuple(taps_of(inner_info)),
                image_size=self.image_size,
                extra={"extractor": type(extractor).__qualname__, "pool": pool},
            )

    def _pooled_info(self, f: FeatureInfo) -> FeatureInfo:
        side = -(-self.image_size // f.reduction)  # the UNet's ceil
        out = pooled_side(side, self.max_size)
        if out == side:
            return f
        return FeatureInfo(f.tap, f.timestep, f.channels, max(1, self.image_size // out))

    # ----------------------------------------------------------------- contract
    def identity(self) -> str:
        """Digest of the wrapped extractor's identity plus the pooling (keys feature caches)."""
        key = f"{self.extractor.identity()}|{POOLING}:{self.max_size}|{self.image_size}"
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    @property
    def backbone(self) -> Any:
        """The wrapped extractor's backbone (None when it has none)."""
        return getattr(self.extractor, "backbone", None)

    @property
    def device(self) -> torch.device:
        """Device of the wrapped extractor."""
        device = getattr(self.extractor, "device", None)
        if isinstance(device, torch.device):
            return device
        for p in self.extractor.parameters():
            return p.device
        return torch.device("cpu")

    def train(self, mode: bool = True) -> PooledExtractor:
        """Frozen: the wrapped extractor decides its own mode (extractors stay in eval)."""
        super().train(False)
        self.extractor.train(False)
        return self

    def forward(self, images: Tensor, metadata: Tensor | None = None) -> list[Tensor]:
        """Pooled maps ``(B, C, h, w)`` with ``h, w <= max_size``, in ``feature_info`` order."""
        maps: Sequence[Tensor] = self.extractor(images, metadata)
        return [pool_map(m, self.max_size) for m in maps]

    def extra_repr(self) -> str:
        return f"max_size={self.max_size}, image_size={self.image_size}"


__all__ = ["POOLING", "PooledExtractor", "pool_map", "pooled_side"]
