"""Bridges to other tools, without depending on them.

:class:`SatDiFuserEncoder` is extractor + fuser as one backbone module with ``out_channels`` and
``forward(x) -> list[Tensor]``, the contract TerraTorch and PANGAEA use for encoders; with an
:class:`InputSpec` it takes z-scored multispectral tensors and uint8/uint16 rasters as TorchGeo and
TerraTorch give them. :mod:`satdifuser.interop.terratorch` holds the keyword-only factory
``satdifuser_encoder`` (import it explicitly: it registers with TerraTorch when that imports).
"""

from __future__ import annotations

from satdifuser.interop.encoder import SatDiFuserEncoder
from satdifuser.model.inputs import InputAdapter, InputSpec

__all__ = ["InputAdapter", "InputSpec", "SatDiFuserEncoder"]
