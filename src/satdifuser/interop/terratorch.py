"""A TerraTorch-style backbone factory: :func:`satdifuser_encoder` builds the encoder from keywords.

TerraTorch's ``EncoderDecoderFactory`` builds a backbone with ``BACKBONE_REGISTRY.build(name,
**backbone_kwargs)`` (the ``backbone_*`` keys of ``model_args`` with the prefix stripped) and
needs ``out_channels`` plus ``forward(x) -> list[Tensor]``. :func:`satdifuser_encoder` is that
constructor as a plain function: importing this module never needs terratorch. When terratorch
is importable, importing this module also registers the function in
``TERRATORCH_BACKBONE_REGISTRY`` as ``satdifuser_encoder`` (point ``custom_modules_path`` at a
folder whose ``__init__.py`` imports this module). See ``docs/terratorch.md``.
"""

from __future__ import annotations

import difflib
import importlib.util
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor

from satdifuser.errors import ConfigError
from satdifuser.features.extractor import FeatureExtractor
from satdifuser.interop.encoder import SatDiFuserEncoder
from satdifuser.model.inputs import InputSpec

TERRATORCH_NAME = "satdifuser_encoder"
"""The name the factory is registered under in TerraTorch's backbone registry."""

_TERRATORCH_KEYS = ("patch_size", "padding", "pretrained")
"""``backbone_*`` keys TerraTorch itself reads (padding of the input); accepted and ignored."""

_EXTRACTOR_KEYS = ("taps", "image_size", "noise", "ensemble", "seed", "posterior", "dtype",
                   "prompt", "use_metadata", "inversion_steps", "pool")  # fmt: skip


def satdifuser_encoder(
    backbone: str = "satdifuser-eurosat-tiny",
    timesteps: Sequence[int] | None = (10,),
    fusion: str = "global_weighted",
    fusion_kwargs: Mapping[str, Any] | None = None,
    bands: Sequence[str] | str | None = None,
    kind: str | None = None,
    mean: Sequence[float] | Tensor | None = None,
    std: Sequence[float] | Tensor | None = None,
    scale: float | None = None,
    offset: float = 0.0,
    rgb: Sequence[str | int] | None = None,
    adapter: str = "select",
    **kwargs: Any,
) -> SatDiFuserEncoder:
    """Build a :class:`SatDiFuserEncoder` from keyword arguments only (TerraTorch backbone).

    Args:
        backbone: Diffusion backbone name, folder or hub id (``satdifuser list backbones``).
        timesteps: UNet timesteps of the extractor (None: the reference's 21, 61, 161).
        fusion: Fuser registry name (``global_weighted``, ``local_weighted``, ``moe``, ``concat``).
        fusion_kwargs: Keyword arguments of the fuser.
        bands: Input band names in channel order, or a band table (``eurosat_ms``,
            ``sentinel2_l1c`` ...). None with no ``kind``/``mean``/``std``: RGB in ``[0, 1]``.
        kind: ``unit``, ``raw`` or ``zscore``; default ``zscore`` when mean/std are given, else
            ``unit``.
        mean: Per-band means of z-scored input (raw units), e.g. the data module's ``means``.
        std: Per-band standard deviations of z-scored input.
        scale: Raw value that maps to 1.0 (10000: Sentinel-2 reflectance; 2750: EuroSAT RGB
            brightness, what ``satdifuser-eurosat-tiny`` saw; 255: 8-bit).
        offset: Added to raw values before ``scale`` (-1000 for S2 L2A baseline >= 04.00).
        rgb: The R, G, B bands (default B04/B03/B02 or red/green/blue).
        adapter: ``select`` (pick the RGB bands) or ``learned`` (trainable 1x1 mix of all bands,
            initialised to the pick).
        **kwargs: ``FeatureExtractor`` options (``taps``, ``image_size``, ``pool``, ``dtype``,
            ``noise``, ``ensemble``, ``seed``, ``posterior``, ``prompt``, ``use_metadata``,
            ``inversion_steps``); ``patch_size``, ``padding`` and ``pretrained`` are TerraTorch's
            own keys and are ignored.

    Raises:
        ConfigError: an unknown keyword (a close name is suggested) or an invalid input spec.
        UnknownNameError: an unknown backbone.
    """
    unknown = [k for k in kwargs if k not in _EXTRACTOR_KEYS + _TERRATORCH_KEYS]
    if unknown:
        known = ["backbone", "timesteps", "fusion", "fusion_kwargs", "bands", "kind", "mean",
                 "std", "scale", "offset", "rgb", "adapter", *_EXTRACTOR_KEYS]  # fmt: skip
        close = difflib.get_close_matches(unknown[0], known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(
            f"satdifuser_encoder got unknown argument {unknown[0]!r}; {hint}known: "
            f"{', '.join(known)} (TerraTorch YAML: backbone_<name>)"
        )
    extractor_kwargs = {k: v for k, v in kwargs.items() if k in _EXTRACTOR_KEYS}
    spec = None
    if bands is not None or kind is not None or mean is not None or std is not None:
        if kind is None:
            kind = "zscore" if mean is not None or std is not None else "unit"
        spec = InputSpec(
            bands=("red", "green", "blue") if bands is None else bands,  # type: ignore[arg-type]
            kind=kind,  # type: ignore[arg-type]
            scale=scale,
            offset=offset,
            mean=mean,  # type: ignore[arg-type]
            std=std,  # type: ignore[arg-type]
            rgb=None if rgb is None else tuple(rgb),
            adapter=adapter,  # type: ignore[arg-type]
        )
    elif scale is not None or offset or rgb is not None or adapter != "select":
        raise ConfigError(
            "satdifuser_encoder got scale/offset/rgb/adapter without bands; pass bands (and "
            "kind, mean, std) to describe the input"
        )
    extractor = FeatureExtractor(
        backbone, timesteps=None if timesteps is None else list(timesteps), **extractor_kwargs
    )
    return SatDiFuserEncoder(extractor, fusion, fusion_kwargs, input_spec=spec)


def register_with_terratorch() -> bool:
    """Register :func:`satdifuser_encoder` in TerraTorch's backbone registry, if it imports.

    Returns True when registered (or already present); False when terratorch is not installed
    or fails to import (a one-line warning says why; torchvision mismatches are common).
    """
    if "terratorch" not in sys.modules and importlib.util.find_spec("terratorch") is None:
        return False
    try:
        from terratorch.registry import (  # type: ignore[import-not-found]
            TERRATORCH_BACKBONE_REGISTRY,
        )
    except Exception as exc:  # an installed but broken terratorch must not break satdifuser
        warnings.warn(
            f"terratorch is installed but does not import ({type(exc).__name__}: {exc}); "
            f"{TERRATORCH_NAME} is not registered, pass the encoder as a module instead",
            stacklevel=2,
        )
        return False
    if TERRATORCH_NAME not in TERRATORCH_BACKBONE_REGISTRY:
        TERRATORCH_BACKBONE_REGISTRY.register(satdifuser_encoder)
    return True


REGISTERED = register_with_terratorch()
"""Whether importing this module registered the factory with TerraTorch."""

__all__ = ["REGISTERED", "TERRATORCH_NAME", "register_with_terratorch", "satdifuser_encoder"]
