"""Bridges to other tools, without depending on them.

:class:`SatDiFuserEncoder` is extractor + fuser as one backbone module with ``out_channels`` and
``forward(x) -> list[Tensor]``, the contract TerraTorch and PANGAEA use for encoders.
"""

from __future__ import annotations

from satdifuser.interop.encoder import SatDiFuserEncoder

__all__ = ["SatDiFuserEncoder"]
