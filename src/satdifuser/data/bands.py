"""Band names, the RGB view of multispectral rasters, and scaling to [0, 1]."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

import numpy as np

from satdifuser.errors import ConfigError

SENTINEL2_BANDS: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B08A", "B09", "B10", "B11", "B12",
)  # fmt: skip
"""The 13 Sentinel-2 L1C bands in file order (EuroSAT-MS GeoTIFFs: B8A after B08)."""

_ALIASES = {"RED": "B04", "GREEN": "B03", "BLUE": "B02", "NIR": "B08"}


def canonical_band(name: str) -> str:
    """Normalise a band name for matching: ``b4``/``B4``/``B04`` -> ``B04``, ``B8A`` -> ``B08A``."""
    n = name.strip().upper()
    m = re.fullmatch(r"B0*(\d+)(A?)", n)
    return f"B{int(m.group(1)):02d}{m.group(2)}" if m else n


def default_band_names(count: int) -> tuple[list[str], str]:
    """Names assumed for ``count`` bands without descriptions, and where they come from."""
    if count == len(SENTINEL2_BANDS):
        return list(SENTINEL2_BANDS), "assumed Sentinel-2 L1C order (13 bands, B8A after B08)"
    if count in (3, 4):
        names = ["red", "green", "blue", "nir"][:count]
        return names, f"assumed {'RGB' if count == 3 else 'RGB + NIR'} order ({count} bands)"
    return [f"band_{i + 1}" for i in range(count)], "numbered (no band descriptions in the file)"


def band_indices(queries: Sequence[str | int], names: Sequence[str], where: str) -> list[int]:
    """Indices of bands given by name (case- and zero-padding-insensitive; red/green/blue/nir
    alias B04/B03/B02/B08) or by 0-based index.

    Raises:
        ConfigError: an unknown name or an index out of range; the message lists the bands.
    """
    canon = [canonical_band(n) for n in names]
    out: list[int] = []
    for q in queries:
        if isinstance(q, int) or (isinstance(q, str) and q.isdigit()):
            i = int(q)
            if not 0 <= i < len(names):
                raise ConfigError(
                    f"band index {i} is out of range for {len(names)} bands of {where}"
                )
            out.append(i)
            continue
        c = canonical_band(q)
        hits = [i for i, n in enumerate(canon) if n == c or n == _ALIASES.get(c)]
        if not hits and c in _ALIASES.values():
            hits = [i for i, n in enumerate(canon) if _ALIASES.get(n) == c]
        if not hits:
            close = difflib.get_close_matches(q, list(names), n=2)
            hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
            raise ConfigError(f"unknown band {q!r} in {where}; {hint}available: {', '.join(names)}")
        out.append(hits[0])
    return out


def default_rgb(names: Sequence[str], where: str) -> list[int]:
    """RGB band indices: B04/B03/B02 (or red/green/blue) when named, else the first three."""
    try:
        return band_indices(["B04", "B03", "B02"], names, where)
    except ConfigError:
        pass
    if len(names) >= 3:
        return [0, 1, 2]
    raise ConfigError(f"{where} has {len(names)} band(s); an RGB view needs 3, pass rgb=[i, j, k]")


def scale_bands(
    array: np.ndarray,
    mode: str,
    value_range: tuple[float, float] | None,
    percentiles: tuple[float, float] = (2.0, 98.0),
) -> np.ndarray:
    """(C, H, W) raw values -> float32 in [0, 1].

    Args:
        array: Raw band values.
        mode: ``fixed`` maps ``value_range`` (default by dtype: uint8 0-255, uint16/int16
            0-4095 like S2 DN / 4095, floats 0-1) linearly; ``percentile`` stretches each band
            of each image between its ``percentiles``.
        value_range: (low, high) for ``fixed``.
        percentiles: (low, high) percentiles for ``percentile``.
    """
    a = array.astype(np.float32)
    if mode == "percentile":
        lo = np.nanpercentile(a, percentiles[0], axis=(1, 2), keepdims=True)
        hi = np.nanpercentile(a, percentiles[1], axis=(1, 2), keepdims=True)
    elif mode == "fixed":
        if value_range is None:
            value_range = default_range(array.dtype)
        lo, hi = np.float32(value_range[0]), np.float32(value_range[1])
    else:
        raise ConfigError(f"scale={mode!r} is not one of 'fixed', 'percentile'")
    out = (a - lo) / np.maximum(hi - lo, np.float32(1e-6))
    return np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0)


def default_range(dtype: np.dtype) -> tuple[float, float]:
    """Default ``fixed`` range for a dtype (see :func:`scale_bands`)."""
    if dtype == np.uint8:
        return 0.0, 255.0
    if np.issubdtype(dtype, np.integer):
        return 0.0, 4095.0
    return 0.0, 1.0


__all__ = [
    "SENTINEL2_BANDS",
    "band_indices",
    "canonical_band",
    "default_band_names",
    "default_range",
    "default_rgb",
    "scale_bands",
]
