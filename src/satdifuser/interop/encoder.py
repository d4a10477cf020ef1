"""Extractor + fuser as one backbone module (the TerraTorch / PANGAEA encoder contract).

Those frameworks take a backbone ``nn.Module`` with ``out_channels: list[int]`` whose
``forward(x)`` returns a list of feature maps; they attach their own necks and decoders.
:class:`SatDiFuserEncoder` offers exactly that without satdifuser depending on them. With an
``input_spec`` it also takes their inputs as they come (z-scored multispectral tensors, uint8 or
uint16 rasters; see :mod:`satdifuser.model.inputs`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from satdifuser.errors import ConfigError, InputShapeError
from satdifuser.features.spec import FeatureInfo
from satdifuser.fusion.base import BaseFusion, create_fusion
from satdifuser.model.inputs import InputAdapter, InputSpec
from satdifuser.model.inputs import input_spec as to_input_spec


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
        input_spec: What ``forward`` receives (an :class:`~satdifuser.model.inputs.InputSpec`
            or its config dict): band names in order, ``unit``/``raw``/``zscore`` values and
            their scaling. None means RGB in ``[0, 1]``. A ``learned`` band adapter is trained
            through the frozen extractor (its activations are kept for the backward pass, so
            it costs memory like fine-tuning would).

    Attributes:
        out_channels: Channels of each output map, finest first.
        out_reductions: Input pixels per output pixel of each map.
        in_channels: Bands ``forward`` takes.
        input_adapter: The :class:`~satdifuser.model.inputs.InputAdapter`, or None.

    Raises:
        ConfigError: the extractor lacks ``feature_info`` or is not callable, the fuser was
            built for another ``feature_info``, or the input spec is invalid.

    Example::

        encoder = SatDiFuserEncoder(FeatureExtractor("tiny-sd"), "global_weighted")
        maps = encoder(images)  # list of (B, 384, H / r, W / r)
        spec = InputSpec("eurosat_ms", "zscore", scale=2750, mean=MEAN, std=STD)
        encoder = SatDiFuserEncoder(FeatureExtractor("tiny-sd"), input_spec=spec)
        maps = encoder(batch["image"])  # TorchGeo EuroSAT-MS batch, (B, 13, 64, 64)
    """

    def __init__(
        self,
        extractor: Any,
        fusion: BaseFusion | str = "global_weighted",
        fusion_kwargs: Mapping[str, Any] | None = None,
        input_spec: InputSpec | Mapping[str, Any] | None = None,
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
        spec = to_input_spec(input_spec)
        self.input_adapter = None if spec is None else InputAdapter(spec)
        bb = getattr(extractor, "backbone", None)
        self._rgb_channels = int(getattr(bb, "in_channels", 3))
        self.in_channels: int = self._rgb_channels if spec is None else spec.channels
        self.out_channels: list[int] = list(fusion.out_channels)
        self.out_reductions: list[int] = list(fusion.out_reductions)

    @property
    def feature_info(self) -> list[FeatureInfo]:
        """The extractor's feature_info."""
        return list(self.fusion.feature_info)

    def _extract(self, x: Tensor, metadata: Tensor | None) -> list[Tensor]:
        extractor = self.extractor if "extractor" in self._modules else self._plain_extractor[0]
        adapter = self.input_adapter
        if adapter is None:
            if isinstance(x, Tensor) and x.ndim == 4 and x.shape[1] != self._rgb_channels:
                raise InputShapeError(
                    f"images have {x.shape[1]} bands but this encoder has no input_spec and "
                    f"takes {self._rgb_channels} (RGB in [0, 1]); pass input_spec with the band "
                    "names (and mean/std/scale for z-scored input)"
                )
            with torch.no_grad():
                return list(extractor(x) if metadata is None else extractor(x, metadata))
        if torch.is_grad_enabled() and any(p.requires_grad for p in adapter.parameters()):
            return _extract_with_grad(extractor, adapter(x), metadata)
        with torch.no_grad():
            x = adapter(x)
            return list(extractor(x) if metadata is None else extractor(x, metadata))

    def train(self, mode: bool = True) -> SatDiFuserEncoder:
        """Set the fuser's mode; the extractor always stays in eval mode."""
        super().train(mode)
        if "extractor" in self._modules:
            self.extractor.eval()
        return self

    def forward(self, x: Tensor, metadata: Tensor | None = None) -> list[Tensor]:
        """Images ``(B, C, H, W)`` -> one fused map per scale, finest first.

        ``x`` is RGB in ``[0, 1]``, or what ``input_spec`` declares. Gradients flow into the
        fuser (and a ``learned`` band adapter); the extractor's weights never train.

        Raises:
            InputShapeError: another band count than ``in_channels`` (the message names the fix).
            InputError: a dtype or value range the input spec does not allow.
        """
        return self.fusion(self._extract(x, metadata))

    def aux_loss(self) -> Tensor:
        """The fuser's auxiliary loss (MoE load balancing); add it to the training loss."""
        return self.fusion.aux_loss()


def _extract_with_grad(extractor: Any, images: Tensor, metadata: Tensor | None) -> list[Tensor]:
    """Features with a gradient path back to ``images`` (the extractor's weights stay frozen).

    satdifuser's ``FeatureExtractor.forward`` runs under ``torch.inference_mode`` (no graph), so
    its checks and extraction are called directly here; any other extractor is called as is.
    """
    check, extract = getattr(extractor, "_check", None), getattr(extractor, "_extract", None)
    with torch.enable_grad():
        if not (callable(check) and callable(extract)):
            return list(extractor(images) if metadata is None else extractor(images, metadata))
        _, metadata = check(images.detach(), metadata)  # validation only; images are clamped
        device = getattr(extractor, "device", images.device)
        feats = extract(images.to(device), metadata)
        pool = getattr(getattr(extractor, "spec", None), "pool", None)
        if pool is not None:
            from satdifuser.features.pooling import pool_map

            feats = [pool_map(f, pool) for f in feats]
        return [f.float() for f in feats]


__all__ = ["SatDiFuserEncoder"]
