"""Map coordinates -> longitude/latitude for DiffusionSat metadata.

Geographic WGS84 (EPSG:4326) is taken as is. WGS84 / UTM (EPSG:326zz north, 327zz south, the
CRS of Sentinel-2 products and EuroSAT-MS) is inverted with the transverse Mercator series of
Snyder ("Map Projections: A Working Manual", USGS PP 1395, 1987, pp. 63-64; well under a metre
inside a zone), so no extra package is needed. Any other EPSG code goes through ``pyproj`` when
it is installed; otherwise it gives NaN.
"""

from __future__ import annotations

import math

_A = 6378137.0  # WGS84 semi-major axis (m)
_F = 1 / 298.257223563
_E2 = _F * (2 - _F)
_EP2 = _E2 / (1 - _E2)
_K0 = 0.9996


def utm_to_lonlat(easting: float, northing: float, zone: int, north: bool) -> tuple[float, float]:
    """WGS84 UTM coordinates (metres) -> (lon, lat) in degrees."""
    x = easting - 500000.0
    y = northing if north else northing - 10000000.0
    m = y / _K0
    mu = m / (_A * (1 - _E2 / 4 - 3 * _E2**2 / 64 - 5 * _E2**3 / 256))
    e1 = (1 - math.sqrt(1 - _E2)) / (1 + math.sqrt(1 - _E2))
    phi1 = (
        mu
        + (3 * e1 / 2 - 27 * e1**3 / 32) * math.sin(2 * mu)
        + (21 * e1**2 / 16 - 55 * e1**4 / 32) * math.sin(4 * mu)
        + (151 * e1**3 / 96) * math.sin(6 * mu)
        + (1097 * e1**4 / 512) * math.sin(8 * mu)
    )
    sin1, cos1, tan1 = math.sin(phi1), math.cos(phi1), math.tan(phi1)
    c1 = _EP2 * cos1**2
    t1 = tan1**2
    n1 = _A / math.sqrt(1 - _E2 * sin1**2)
    r1 = _A * (1 - _E2) / (1 - _E2 * sin1**2) ** 1.5
    d = x / (n1 * _K0)
    lat = phi1 - (n1 * tan1 / r1) * (
        d**2 / 2
        - (5 + 3 * t1 + 10 * c1 - 4 * c1**2 - 9 * _EP2) * d**4 / 24
        + (61 + 90 * t1 + 298 * c1 + 45 * t1**2 - 252 * _EP2 - 3 * c1**2) * d**6 / 720
    )
    lon = (
        d
        - (1 + 2 * t1 + c1) * d**3 / 6
        + (5 - 2 * c1 + 28 * t1 - 3 * c1**2 + 8 * _EP2 + 24 * t1**2) * d**5 / 120
    ) / cos1
    lon0 = (zone - 1) * 6 - 180 + 3
    return lon0 + math.degrees(lon), math.degrees(lat)


def utm_zone_of_epsg(epsg: int) -> tuple[int, bool] | None:
    """``(zone, north)`` for WGS84 / UTM EPSG codes 32601-32660 and 32701-32760, else None."""
    if 32601 <= epsg <= 32660:
        return epsg - 32600, True
    if 32701 <= epsg <= 32760:
        return epsg - 32700, False
    return None


def to_lonlat(x: float, y: float, epsg: int) -> tuple[float, float] | None:
    """Coordinates in ``EPSG:epsg`` -> (lon, lat); None when the CRS cannot be converted here."""
    if epsg == 4326:
        return x, y
    utm = utm_zone_of_epsg(epsg)
    if utm is not None:
        return utm_to_lonlat(x, y, *utm)
    try:
        from pyproj import Transformer
    except ImportError:
        return None
    try:
        lon, lat = Transformer.from_crs(epsg, 4326, always_xy=True).transform(x, y)
    except Exception:  # pyproj raises its own CRSError for unknown codes
        return None
    return float(lon), float(lat)


__all__ = ["to_lonlat", "utm_to_lonlat", "utm_zone_of_epsg"]
