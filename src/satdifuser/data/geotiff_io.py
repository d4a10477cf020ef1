"""Reading GeoTIFFs with rasterio: pixels as (C, H, W) and DiffusionSat metadata from the file.

rasterio (GDAL, the ``geo`` extra: ``pip install "satdifuser[geo]"``; its wheels bundle GDAL and
PROJ) reads every GeoTIFF flavour (tiled, compressed, BigTIFF, cloud-optimised), the CRS and
affine transform, band descriptions, nodata and metadata items, and reads a part of a raster
(``window=``, ``bands=``) without loading the rest. GeoTIFF folders need it; without it the
first read raises :class:`~satdifuser.errors.DependencyNotFoundError` with the pip line (no
second, partial reader: a file reads the same everywhere or not at all).

Metadata rules (documented assumptions):

- lon/lat: the centre of the pixels read (the whole image, or the window), mapped through the
  affine transform (rotated rasters included) and converted to WGS84 by PROJ
  (:mod:`satdifuser.data.crs`), whatever the CRS.
- GSD: the pixel size in metres for projected CRSs (the mean of x and y, times the CRS's unit
  factor: feet become metres); for geographic CRSs the north-south pixel size times
  111,320 m per degree.
- Date: the TIFF DateTime tag (``YYYY:MM:DD HH:MM:SS``), else a GDAL metadata item
  ``ACQUISITION_DATE``/``DATE`` in ISO form.
- Cloud cover: GDAL metadata ``CLOUD_COVER`` or ``CLOUDY_PIXEL_PERCENTAGE`` (percent -> fraction).
- Band names: the GDAL band descriptions when present.
- Nodata: the declared nodata value (GDAL_NODATA tag), e.g. ``nan`` or ``-9999``.
- Footprint: ``bounds_lonlat`` (west, south, east, north) of the pixels read, densified edges.

Pixels: NaN and +/-Inf are refused with the file name unless the declared nodata covers them
(the policy of :mod:`satdifuser.data.nodata`, shared by every reader).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from satdifuser.data.crs import import_rasterio, points_to_lonlat
from satdifuser.data.nodata import check_finite
from satdifuser.errors import ConfigError, DataFormatError, DatasetNotFoundError

TIFF_SUFFIXES: tuple[str, ...] = (".tif", ".tiff")
_M_PER_DEG = 111_320.0

Window = Any
"""A ``rasterio.windows.Window`` or ``((row_start, row_stop), (col_start, col_stop))``."""


@dataclass
class GeoInfo:
    """What a GeoTIFF says about itself (NaN / None where it says nothing).

    ``crs`` is the CRS as text (``"EPSG:32631"``, or WKT without an EPSG code), ``transform``
    the affine (a, b, c, d, e, f) of the pixels read, ``bounds_lonlat`` their footprint
    (west, south, east, north) in degrees; all three are None for a plain (non-geo) TIFF.
    """

    lon: float = math.nan
    lat: float = math.nan
    gsd: float = math.nan
    cloud_cover: float = math.nan
    year: float = math.nan
    month: float = math.nan
    day: float = math.nan
    epsg: int | None = None
    crs: str | None = None
    transform: tuple[float, ...] | None = None
    bounds_lonlat: tuple[float, float, float, float] | None = None
    band_names: list[str] | None = None
    nodata: float | None = None
    notes: list[str] = field(default_factory=list)

    def meta_values(self) -> list[float]:
        """The seven DiffusionSat values (lon, lat, gsd, cloud, year, month, day)."""
        return [self.lon, self.lat, self.gsd, self.cloud_cover, self.year, self.month, self.day]


@contextmanager
def open_geotiff(path: Path) -> Iterator[Any]:
    """Open ``path`` with rasterio (read-only); errors name the file.

    Raises:
        DependencyNotFoundError: rasterio (the ``geo`` extra) is not installed.
        DatasetNotFoundError: the file does not exist.
        DataFormatError: GDAL cannot read the file (truncated, not a raster).
    """
    rasterio = import_rasterio()
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"GeoTIFF {path} does not exist; check the folder")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                yield ds
    except rasterio.errors.RasterioError as exc:
        why = str(exc.__cause__ or exc).strip().rstrip(".")  # GDAL's own reason when it gave one
        raise DataFormatError(
            f"cannot read GeoTIFF {path}: {why}; the file is truncated or not a TIFF"
        ) from None


def _window(ds: Any, window: Window | None, path: Path) -> Any:
    """The window as a rasterio ``Window`` inside the raster (the whole raster for None)."""
    from rasterio.windows import Window as RioWindow

    full = RioWindow(0, 0, ds.width, ds.height)
    if window is None:
        return full
    win = window if isinstance(window, RioWindow) else RioWindow.from_slices(*window)
    inside = (
        win.col_off >= 0 and win.row_off >= 0 and win.width > 0 and win.height > 0
        and win.col_off + win.width <= ds.width and win.row_off + win.height <= ds.height
    )  # fmt: skip
    if not inside:
        raise ConfigError(
            f"window {win} is not inside GeoTIFF {path} ({ds.width}x{ds.height} WxH); "
            "give rows and columns within the image"
        )
    return win


def _date(info: GeoInfo, tags: dict[str, str]) -> None:
    text = tags.get("TIFFTAG_DATETIME") or tags.get("ACQUISITION_DATE") or tags.get("DATE") or ""
    m = re.match(r"\s*(\d{4})[:\-](\d{2})[:\-](\d{2})", text)
    if m:
        info.year, info.month, info.day = (float(g) for g in m.groups())


def _georef(info: GeoInfo, ds: Any, win: Any) -> None:
    import rasterio
    from rasterio.transform import Affine
    from rasterio.warp import transform_bounds

    if ds.transform == Affine.identity():
        if ds.crs is not None or ds.gcps[0]:
            info.notes.append("no affine transform (GCPs or CRS only); lon/lat NaN")
        return
    if ds.crs is None:
        info.notes.append("no CRS in the file; lon/lat NaN")
        return
    info.crs = ds.crs.to_string()
    info.epsg = ds.crs.to_epsg()
    tr = ds.transform @ Affine.translation(win.col_off, win.row_off)  # of the window
    info.transform = tuple(float(v) for v in tr[:6])
    cx, cy = tr @ (win.width / 2, win.height / 2)
    (lon,), (lat,) = points_to_lonlat([cx], [cy], ds.crs)
    if math.isnan(lon):
        info.notes.append(f"{info.crs}: the image centre has no lon/lat; lon/lat NaN")
    info.lon, info.lat = lon, lat
    corners = [tr @ (c, r) for c in (0, win.width) for r in (0, win.height)]
    xs, ys = [x for x, _ in corners], [y for _, y in corners]
    try:
        west, south, east, north = transform_bounds(
            ds.crs, "EPSG:4326", min(xs), min(ys), max(xs), max(ys), densify_pts=21
        )
        info.bounds_lonlat = (float(west), float(south), float(east), float(north))
    except (rasterio.errors.RasterioError, ValueError):  # PROJ cannot draw it: unknown
        info.bounds_lonlat = None
    xres = math.hypot(tr.a, tr.d)
    yres = math.hypot(tr.b, tr.e)
    if ds.crs.is_geographic:
        info.gsd = yres * _M_PER_DEG
    else:
        _unit, factor = ds.crs.linear_units_factor
        info.gsd = (xres + yres) / 2 * float(factor)


def _info(ds: Any, win: Any) -> GeoInfo:
    info = GeoInfo(nodata=None if ds.nodata is None else float(ds.nodata))
    if any(ds.descriptions):
        info.band_names = [d or f"band_{b + 1}" for b, d in enumerate(ds.descriptions)]
    tags = {k.upper(): v for k, v in ds.tags().items()}
    _date(info, tags)
    cloud = tags.get("CLOUD_COVER") or tags.get("CLOUDY_PIXEL_PERCENTAGE")
    if cloud is not None:
        try:
            info.cloud_cover = float(cloud) / 100.0
        except ValueError:
            info.notes.append(f"cloud cover {cloud!r} is not a number")
    _georef(info, ds, win)
    return info


def read_geotiff(
    path: Path,
    with_pixels: bool = True,
    window: Window | None = None,
    bands: Sequence[int] | None = None,
) -> tuple[np.ndarray | None, GeoInfo]:
    """Read ``path``: pixels (C, H, W) in their stored dtype (None if not asked) and metadata.

    Args:
        path: The GeoTIFF.
        with_pixels: False reads the header and tags only.
        window: Read only these rows and columns (a ``rasterio.windows.Window`` or
            ``((row_start, row_stop), (col_start, col_stop))``); lon/lat, transform and
            footprint then describe the window. None reads the whole raster.
        bands: 0-based band indices to read, in this order (None: every band).

    Raises:
        DependencyNotFoundError: rasterio (the ``geo`` extra) is not installed.
        DatasetNotFoundError: the file does not exist.
        DataFormatError: the file is not a readable raster, or its pixels hold NaN / Inf that
            its declared nodata does not cover (see :mod:`satdifuser.data.nodata`).
        ConfigError: ``window`` is not inside the raster, or a band index is out of range.
    """
    path = Path(path)
    with open_geotiff(path) as ds:
        win = _window(ds, window, path)
        info = _info(ds, win)
        if not with_pixels:
            return None, info
        indexes = list(range(1, ds.count + 1))
        if bands is not None:
            bad = [b for b in bands if not 0 <= b < ds.count]
            if bad:
                raise ConfigError(
                    f"band index {bad[0]} is out of range for GeoTIFF {path} with {ds.count} "
                    "bands (0-based)"
                )
            indexes = [b + 1 for b in bands]
        arr = ds.read(indexes, window=win)  # a read error -> DataFormatError (open_geotiff)
    check_finite(arr, f"GeoTIFF {path}", info.nodata)
    return arr, info


def band_count(path: Path) -> tuple[int, int, int, str]:
    """``(C, H, W, dtype)`` of a GeoTIFF from its header only.

    Raises:
        DependencyNotFoundError: rasterio (the ``geo`` extra) is not installed.
        DatasetNotFoundError: the file does not exist.
        DataFormatError: the file is not a readable raster.
    """
    with open_geotiff(Path(path)) as ds:
        dtype = str(np.result_type(*ds.dtypes))
        return int(ds.count), int(ds.height), int(ds.width), dtype


__all__ = ["TIFF_SUFFIXES", "GeoInfo", "band_count", "open_geotiff", "read_geotiff"]
