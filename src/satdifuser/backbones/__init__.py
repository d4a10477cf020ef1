"""Frozen diffusion backbones: DiffusionSat, Stable Diffusion 2.1, tiny test models, shipped model.

Example:
    >>> from satdifuser.backbones import create_backbone
    >>> backbone = create_backbone("tiny-sd")          # or a folder, or a hub id "owner/name"
    >>> backbone.total_downsample
    8
"""

from __future__ import annotations

from satdifuser.backbones.base import DiffusionBackbone, PredictionType
from satdifuser.backbones.metadata import (
    METADATA_FIELDS,
    NUM_METADATA,
    MetadataEmbedding,
    normalize_metadata,
)
from satdifuser.backbones.presets import BACKBONES, build_random, create_backbone

__all__ = [
    "BACKBONES",
    "METADATA_FIELDS",
    "NUM_METADATA",
    "DiffusionBackbone",
    "MetadataEmbedding",
    "PredictionType",
    "build_random",
    "create_backbone",
    "normalize_metadata",
]
