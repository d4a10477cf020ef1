"""GeoTIFF support through rasterio (the ``geo`` extra), imported only when a GeoTIFF is used.

rasterio (GDAL) gives windowed reads and writes of tiled, compressed GeoTIFFs, CRS handling and
dataset masks (nodata values, alpha bands, internal masks) in one place; pyproj-free footprints
come from ``rasterio.warp.transform``.
"""

from __future__ import annotations

import math
from typing import Any

from satdifuser.data.crs import PIP_GEO, import_rasterio

GEOTIFF_SUFFIXES: tuple[str, ...] = (".tif", ".tiff")


def is_georeferenced(dataset: Any) -> bool:
    """True when ``dataset`` (a rasterio dataset) has a CRS and a non-identity transform."""
    from rasterio.transform import Affine

    return dataset.crs is not None and dataset.transform != Affine.identity()


def footprint_lonlat(dataset: Any, points_per_edge: int = 8) -> list[list[float]]:
    """The raster outline as a closed ring of ``[lon, lat]`` (EPSG:4326, GeoJSON order).

    Each edge is densified with ``points_per_edge`` points so a reprojected outline stays close
    to the true (curved) footprint.
    """
    from rasterio.warp import transform

    h, w = dataset.height, dataset.width
    n = max(1, points_per_edge)
    steps = [i / n for i in range(n)]
    corners = (
        [(t * w, 0.0) for t in steps]  # top edge, left to right
        + [(float(w), t * h) for t in steps]  # right edge, downwards
        + [(w - t * w, float(h)) for t in steps]  # bottom edge, right to left
        + [(0.0, h - t * h) for t in steps]  # left edge, upwards
    )
    xs, ys = zip(*(dataset.transform @ cr for cr in corners), strict=True)
    lons, lats = transform(dataset.crs, "EPSG:4326", list(xs), list(ys))
    ring = [[round(float(lo), 9), round(float(la), 9)] for lo, la in zip(lons, lats, strict=True)]
    if any(math.isinf(v) or math.isnan(v) for pt in ring for v in pt):
        return []
    ring.reverse()  # counter-clockwise exterior ring (RFC 7946 section 3.1.6)
    ring.append(ring[0])
    return ring


__all__ = [
    "GEOTIFF_SUFFIXES",
    "PIP_GEO",
    "footprint_lonlat",
    "import_rasterio",
    "is_georeferenced",
]
