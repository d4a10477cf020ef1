"""Band names per source, the RGB view of multispectral rasters, and scaling to [0, 1]."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

import numpy as np

from satdifuser.errors import ConfigError, InputError

SENTINEL2_BANDS: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B08A", "B09", "B10", "B11", "B12",
)  # fmt: skip
"""The 13 Sentinel-2 L1C bands in wavelength order (B8A after B08), as ESA lists them and as
Google Earth Engine and most L1C exports stack them. NOT the EuroSAT-MS file order."""

EUROSAT_MS_BANDS: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B08A",
)  # fmt: skip
"""The 13 bands of the EuroSAT-MS release (``EuroSATallBands.zip``) in file order: B8A is
**last**. TorchGeo's ``EuroSAT.all_band_names`` uses the same order. GEO-Bench's m-eurosat
inherited it under wavelength-order names (see :mod:`satdifuser.data.geobench_bands`)."""

BAND_TABLES: dict[str, tuple[str, ...]] = {
    "eurosat_ms": EUROSAT_MS_BANDS,
    "sentinel2_l1c": SENTINEL2_BANDS,
    "sentinel2_l2a": tuple(b for b in SENTINEL2_BANDS if b != "B10"),
    "rgb": ("red", "green", "blue"),
    "rgbn": ("red", "green", "blue", "nir"),
}
"""Band names per source, in the order the source stores them (pass the key as
``band_names="eurosat_ms"``). ``sentinel2_l2a`` is the 12-band L2A stack (no cirrus B10)."""

_ALIASES = {"RED": "B04", "GREEN": "B03", "BLUE": "B02", "NIR": "B08"}


def canonical_band(name: str) -> str:
    """Normalise a band name for matching: ``b4``/``B4``/``B04`` -> ``B04``, ``B8A`` -> ``B08A``."""
    n = name.strip().upper()
    m = re.fullmatch(r"B0*(\d+)(A?)", n)
    return f"B{int(m.group(1)):02d}{m.group(2)}" if m else n


def band_table(source: str) -> tuple[str, ...]:
    """The band names of ``source`` (a key of :data:`BAND_TABLES`) in its stored order.

    Raises:
        ConfigError: unknown source; the message lists the known ones.
    """
    key = source.strip().lower().replace("-", "_")
    if key not in BAND_TABLES:
        close = difflib.get_close_matches(key, list(BAND_TABLES), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(
            f"unknown band table {source!r}; {hint}known tables: {', '.join(BAND_TABLES)} "
            "(or pass the band names as a list)"
        )
    return BAND_TABLES[key]


def default_band_names(count: int) -> tuple[list[str], str]:
    """Names assumed for ``count`` bands without descriptions, and where they come from.

    13 bands are assumed to be a EuroSAT-MS file (B8A last), the one widespread 13-band release
    without band descriptions; Sentinel-2 stacks in wavelength order need
    ``band_names="sentinel2_l1c"``.
    """
    if count == len(EUROSAT_MS_BANDS):
        return list(EUROSAT_MS_BANDS), (
            "assumed EuroSAT-MS order (13 bands, B8A last); pass band_names='sentinel2_l1c' "
            "if B8A follows B08"
        )
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

    NaN marks nodata (see :mod:`satdifuser.data.nodata`): it is left out of the percentiles and
    becomes 0. Infinite values are refused, never clipped to 0 or 1.

    Args:
        array: Raw band values.
        mode: ``fixed`` maps ``value_range`` (default by dtype: uint8 0-255, uint16/int16
            0-4095 like S2 DN / 4095, floats 0-1) linearly; ``percentile`` stretches each band
            of each image between its ``percentiles``.
        value_range: (low, high) for ``fixed``.
        percentiles: (low, high) percentiles for ``percentile``.

    Raises:
        InputError: ``array`` holds +/-Inf.
        ConfigError: unknown ``mode``.
    """
    if np.issubdtype(array.dtype, np.floating) and np.isinf(array).any():
        raise InputError(
            f"scale_bands got {int(np.isinf(array).sum())} infinite values; read pixels with the "
            "satdifuser readers (they refuse them with the file name) or replace them first"
        )
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
    return np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0)  # NaN = nodata -> 0


def default_range(dtype: np.dtype) -> tuple[float, float]:
    """Default ``fixed`` range for a dtype (see :func:`scale_bands`)."""
    if dtype == np.uint8:
        return 0.0, 255.0
    if np.issubdtype(dtype, np.integer):
        return 0.0, 4095.0
    return 0.0, 1.0


__all__ = [
    "BAND_TABLES",
    "EUROSAT_MS_BANDS",
    "SENTINEL2_BANDS",
    "band_indices",
    "band_table",
    "canonical_band",
    "default_band_names",
    "default_range",
    "default_rgb",
    "scale_bands",
]
