"""Map coordinates -> longitude/latitude (WGS84), through PROJ as bundled with rasterio.

Every CRS GDAL/PROJ knows is converted the same way (``rasterio.warp.transform``): geographic
WGS84 passes through, WGS84 / UTM (the CRS of Sentinel-2 products and EuroSAT-MS), national
grids (Lambert-93, ...) and Web Mercator are inverted exactly. rasterio is the ``geo`` extra
(``pip install "satdifuser[geo]"``); without it :class:`~satdifuser.errors.DependencyNotFoundError`
names that line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from satdifuser.errors import ConfigError, DependencyNotFoundError

PIP_GEO = 'pip install "satdifuser[geo]"'
WGS84 = "EPSG:4326"


def import_rasterio() -> ModuleType:
    """Import rasterio (the ``geo`` extra), or raise an error that gives the pip line.

    Raises:
        DependencyNotFoundError: rasterio is not installed.
    """
    try:
        import rasterio
        import rasterio.crs
        import rasterio.errors
        import rasterio.warp
        import rasterio.windows
    except ImportError:
        raise DependencyNotFoundError(
            "reading GeoTIFFs and their CRS needs rasterio (the geo extra), which is not "
            f"installed; run: {PIP_GEO}"
        ) from None
    return rasterio


def _crs(crs: Any) -> Any:
    """An EPSG code (int) or anything ``rasterio.crs.CRS.from_user_input`` takes -> a CRS."""
    rasterio = import_rasterio()
    if isinstance(crs, int):
        return rasterio.crs.CRS.from_epsg(crs)
    return rasterio.crs.CRS.from_user_input(crs)


def points_to_lonlat(
    xs: Sequence[float], ys: Sequence[float], crs: Any
) -> tuple[list[float], list[float]]:
    """Points in ``crs`` (EPSG code, ``"EPSG:..."``, WKT or a rasterio CRS) -> (lons, lats).

    Points PROJ cannot convert (outside the CRS's domain) come back as NaN.

    Raises:
        DependencyNotFoundError: rasterio (the ``geo`` extra) is not installed.
        rasterio.errors.CRSError: ``crs`` is not a CRS PROJ knows.
    """
    rasterio = import_rasterio()
    lons, lats = rasterio.warp.transform(_crs(crs), WGS84, list(xs), list(ys))
    clean = [(lo, la) if math.isfinite(lo) and math.isfinite(la) else (math.nan, math.nan)
             for lo, la in zip(lons, lats, strict=True)]  # fmt: skip
    return [float(lo) for lo, _ in clean], [float(la) for _, la in clean]


def to_lonlat(x: float, y: float, crs: Any) -> tuple[float, float] | None:
    """One point in ``crs`` -> (lon, lat) in degrees; None when PROJ cannot convert it.

    Raises:
        DependencyNotFoundError: rasterio (the ``geo`` extra) is not installed.
    """
    rasterio = import_rasterio()
    try:
        (lon,), (lat,) = points_to_lonlat([x], [y], crs)
    except rasterio.errors.CRSError:
        return None
    return None if math.isnan(lon) or math.isnan(lat) else (lon, lat)


def utm_to_lonlat(easting: float, northing: float, zone: int, north: bool) -> tuple[float, float]:
    """WGS84 / UTM coordinates (metres) of ``zone`` -> (lon, lat) in degrees.

    Raises:
        ConfigError: ``zone`` is not 1..60.
    """
    if not 1 <= zone <= 60:
        raise ConfigError(f"UTM zone={zone} is not 1..60")
    lonlat = to_lonlat(easting, northing, (32600 if north else 32700) + zone)
    return lonlat if lonlat is not None else (math.nan, math.nan)


__all__ = ["PIP_GEO", "WGS84", "import_rasterio", "points_to_lonlat", "to_lonlat", "utm_to_lonlat"]
