"""Extractor + fuser as one backbone module (the TerraTorch / PANGAEA encoder contract).

Those frameworks take a backbone ``nn.Module`` with ``out_channels: list[int]`` whose
``forward(x)`` returns a list of feature maps; they attach their own necks and decoders.
:class:`SatDiFuserEncoder` offers exactly that without satdifuser depending on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from satdifuser.errors import ConfigError
from satdifuser.features.spec import FeatureInfo
from satdifuser.fusion.base import BaseFusion, create_fusion


class SatDiFuserEncoder(nn.Module):
    """Frozen feature extractor followed by a trainable fuser.

    Args:
        extractor: Any object with ``feature_info: list[FeatureInfo]`` and
            ``__call__(images, metadata=None) -> list[Tensor]``, e.g.
            :class:`satdifuser.features.extractor.FeatureExtractor`. If it is an ``nn.Module`` it is
            registered as ``extractor``, its parameters are frozen and it stays in eval mode.
        fusion: A fuser built from the same ``feature_info``, or a registry name
            (``global_weighted``, ``local_weighted``, ``moe``, ``concat``).
        fusion_kwargs: Keyword arguments for the fuser when ``fusion`` is a name.

    Attributes:
        out_channels: Channels of each output map, finest first.
        out_reductions: Input pixels per output pixel of each map.

    Raises:
        ConfigError: the extractor lacks ``feature_info`` or is not callable, or the fuser was
            built for another ``feature_info``.

    Example::

        encoder = SatDiFuserEncoder(FeatureExtractor("tiny-sd"), "global_weighted")
        maps = encoder(images)  # list of (B, 384, H / r, W / r)
    """

    def __init__(
        self,
        extractor: Any,
        fusion: BaseFusion | str = "global_weighted",
        fusion_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        info = getattr(extractor, "feature_info", None)
        if not callable(extractor) or not isinstance(info, list | tuple) or not all(
            isinstance(f, FeatureInfo) for f in info
        ):
            raise ConfigError(
                f"extractor {type(extractor).__name__} needs a feature_info list of FeatureInfo "
                "and __call__(images, metadata=None); pass a satdifuser FeatureExtractor"
            )
        if isinstance(fusion, str):
            fusion = create_fusion(fusion, info, **dict(fusion_kwargs or {}))
        elif not isinstance(fusion, BaseFusion):
            raise ConfigError(
                f"fusion must be a registry name or a BaseFusion, got {type(fusion).__name__}"
            )
        elif fusion_kwargs:
            raise ConfigError(
                "fusion_kwargs only apply when fusion is a name; configure the fuser instance "
                "instead"
            )
        elif list(fusion.feature_info) != list(info):
            raise ConfigError(
                f"{type(fusion).__name__} was built for another feature_info "
                f"({len(fusion.feature_info)} maps) than the extractor's ({len(info)} maps); build "
                "it from extractor.feature_info"
            )
        if isinstance(extractor, nn.Module):
            extractor.requires_grad_(False)
            extractor.eval()
            self.extractor = extractor
        else:
            self._plain_extractor = (extractor,)  # a callable object, not a module
        self.fusion = fusion
        self.out_channels: list[int] = list(fusion.out_channels)
        self.out_reductions: list[int] = list(fusion.out_reductions)

    @property
    def feature_info(self) -> list[FeatureInfo]:
        """The extractor's feature_info."""
        return list(self.fusion.feature_info)

    def _extract(self, x: Tensor, metadata: Tensor | None) -> list[Tensor]:
        extractor = self.extractor if "extractor" in self._modules else self._plain_extractor[0]
        with torch.no_grad():
            return list(extractor(x) if metadata is None else extractor(x, metadata))

    def train(self, mode: bool = True) -> SatDiFuserEncoder:
        """Set the fuser's mode; the extractor always stays in eval mode."""
        super().train(mode)
        if "extractor" in self._modules:
            self.extractor.eval()
        return self

    def forward(self, x: Tensor, metadata: Tensor | None = None) -> list[Tensor]:
        """Images ``(B, C, H, W)`` -> one fused map per scale, finest first.

        Gradients flow into the fuser only; the extractor runs under ``torch.no_grad``.
        """
        return self.fusion(self._extract(x, metadata))

    def aux_loss(self) -> Tensor:
        """The fuser's auxiliary loss (MoE load balancing); add it to the training loss."""
        return self.fusion.aux_loss()


__all__ = ["SatDiFuserEncoder"]
