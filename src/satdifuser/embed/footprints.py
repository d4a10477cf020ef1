"""Footprints of GeoTIFF images and windows: polygon in the raster's CRS plus lon/lat bounds.

A footprint is read from the file's header only (rasterio, through
:func:`satdifuser.data.geotiff_io.read_geotiff`): the four corners of the pixels (or of a window)
mapped through the affine transform, in the raster's own CRS, and the WGS84 bounds that
``read_geotiff`` computes with densified edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from satdifuser.data.geotiff_io import TIFF_SUFFIXES, band_count, read_geotiff

Window = tuple[int, int, int, int]
"""``(row_off, col_off, height, width)`` in pixels."""


@dataclass(frozen=True)
class Footprint:
    """Where one image (or window) lies.

    Attributes:
        crs: The raster's CRS as text (``"EPSG:32631"``, or WKT).
        corners: The four corners (x, y) in ``crs``: top-left, top-right, bottom-right,
            bottom-left (pixel corners, so the polygon covers every pixel).
        bounds_lonlat: (west, south, east, north) in degrees, or None when PROJ cannot say.
    """

    crs: str
    corners: tuple[tuple[float, float], ...]
    bounds_lonlat: tuple[float, float, float, float] | None

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) in ``crs``."""
        xs = [x for x, _ in self.corners]
        ys = [y for _, y in self.corners]
        return min(xs), min(ys), max(xs), max(ys)


def footprint(path: str | Path, window: Window | None = None) -> Footprint | None:
    """The footprint of a GeoTIFF (or of a window of it); None when it is not georeferenced.

    Args:
        path: A raster file; files that are not TIFFs give None without being opened.
        window: ``(row_off, col_off, height, width)``; None: the whole raster.

    Raises:
        DependencyNotFoundError: rasterio (the ``geo`` extra) is not installed.
        DataFormatError: the file is not a readable raster.
    """
    path = Path(path)
    if path.suffix.lower() not in TIFF_SUFFIXES:
        return None
    if window is None:
        _, h, w, _ = band_count(path)
        window = (0, 0, h, w)
    row, col, h, w = window
    _, info = read_geotiff(path, with_pixels=False, window=((row, row + h), (col, col + w)))
    if info.transform is None or info.crs is None:
        return None
    a, b, c, d, e, f = info.transform
    corners = tuple(
        (a * px + b * py + c, d * px + e * py + f) for px, py in ((0, 0), (w, 0), (w, h), (0, h))
    )
    return Footprint(info.crs, corners, info.bounds_lonlat)


__all__ = ["Footprint", "Window", "footprint"]
