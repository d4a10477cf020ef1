"""DiffusionSat metadata of a sample: seven raw physical values, NaN where unknown.

Order (DiffusionSat's ``fmow_numerical_metadata``): longitude (degrees east), latitude (degrees
north), ground sample distance of the image as stored (metres per pixel, before any resizing),
cloud cover (fraction 0-1), year, month (1-12), day (1-31). Backbones apply DiffusionSat's
offsets and normalisation themselves and turn NaN into the "dropped field" value 0.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

META_FIELDS: tuple[str, ...] = ("lon", "lat", "gsd", "cloud_cover", "year", "month", "day")
"""Names of the seven entries of ``sample["meta"]``, in order."""

NAN = math.nan


def make_meta(
    lon: float = NAN,
    lat: float = NAN,
    gsd: float = NAN,
    cloud_cover: float = NAN,
    year: float = NAN,
    month: float = NAN,
    day: float = NAN,
) -> Tensor:
    """Build the ``meta`` tensor (7,) float32; every field defaults to NaN (unknown)."""
    return torch.tensor([lon, lat, gsd, cloud_cover, year, month, day], dtype=torch.float32)


def meta_to_dict(meta: Tensor) -> dict[str, float]:
    """Name the seven values of a ``meta`` tensor (7,) (for summaries and logs)."""
    return {k: float(v) for k, v in zip(META_FIELDS, meta.tolist(), strict=True)}


__all__ = ["META_FIELDS", "make_meta", "meta_to_dict"]
