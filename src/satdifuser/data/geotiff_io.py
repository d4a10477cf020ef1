"""Reading GeoTIFFs with tifffile: pixels as (C, H, W) and DiffusionSat metadata from the tags.

Why tifffile and not rasterio: tifffile is pure Python on top of numpy (a wheel with no system
libraries), reads the GeoTIFF tags we need (ModelTiepoint, ModelPixelScale, GeoKeyDirectory,
DateTime, GDAL_METADATA), and installs anywhere torch does; rasterio pulls in GDAL, which is
large and a frequent source of install conflicts. What tifffile lacks (reprojection, windowed
reads of compressed cloud-optimised files from URLs) satdifuser does not need.

Metadata rules (documented assumptions):

- lon/lat: the image centre, from ModelTiepoint + ModelPixelScale (north-up rasters, no
  ModelTransformation). Geographic EPSG:4326 gives degrees directly; WGS84 / UTM is inverted by
  :mod:`satdifuser.data.crs`; other CRSs need ``pyproj`` (else NaN and a note).
- GSD: the pixel scale in metres for projected CRSs (linear unit metre); for EPSG:4326 the
  north-south pixel size times 111,320 m per degree.
- Date: the TIFF DateTime tag (``YYYY:MM:DD HH:MM:SS``), else a GDAL metadata item
  ``ACQUISITION_DATE``/``DATE`` in ISO form.
- Cloud cover: GDAL metadata ``CLOUD_COVER`` or ``CLOUDY_PIXEL_PERCENTAGE`` (percent -> fraction).
- Band names: GDAL metadata band ``DESCRIPTION`` items when present.
- Nodata: the GDAL_NODATA tag (42113), e.g. ``nan`` or ``-9999``.

Pixels: NaN and +/-Inf are refused with the file name unless the declared nodata covers them
(the policy of :mod:`satdifuser.data.nodata`, shared by every reader).
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from satdifuser.data.crs import to_lonlat
from satdifuser.data.nodata import check_finite, parse_nodata
from satdifuser.errors import DataFormatError, DatasetNotFoundError

TIFF_SUFFIXES: tuple[str, ...] = (".tif", ".tiff")
_M_PER_DEG = 111_320.0


@dataclass
class GeoInfo:
    """What a GeoTIFF says about itself (NaN / None where it says nothing)."""

    lon: float = math.nan
    lat: float = math.nan
    gsd: float = math.nan
    cloud_cover: float = math.nan
    year: float = math.nan
    month: float = math.nan
    day: float = math.nan
    epsg: int | None = None
    band_names: list[str] | None = None
    nodata: float | None = None
    notes: list[str] = field(default_factory=list)

    def meta_values(self) -> list[float]:
        """The seven DiffusionSat values (lon, lat, gsd, cloud, year, month, day)."""
        return [self.lon, self.lat, self.gsd, self.cloud_cover, self.year, self.month, self.day]


def _to_chw(arr: np.ndarray, axes: str, path: Path) -> np.ndarray:
    if arr.ndim == 2:
        return arr[None]
    if arr.ndim == 3:
        return np.moveaxis(arr, -1, 0) if axes[0] == "Y" else arr  # YXS -> SYX
    raise DataFormatError(f"GeoTIFF {path} has shape {arr.shape} (axes {axes}); expected 2-D/3-D")


def _gdal_items(text: str | None) -> tuple[dict[str, str], dict[int, str]]:
    items: dict[str, str] = {}
    descriptions: dict[int, str] = {}
    if not text:
        return items, descriptions
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return items, descriptions
    for item in root.iter("Item"):
        name, value = item.get("name", ""), (item.text or "").strip()
        if item.get("sample") is not None:
            if name.upper() == "DESCRIPTION" or item.get("role") == "description":
                descriptions[int(item.get("sample", "0"))] = value
        else:
            items[name.upper()] = value
    return items, descriptions


def _date(info: GeoInfo, datetime_tag: Any, items: dict[str, str]) -> None:
    text = str(datetime_tag or items.get("ACQUISITION_DATE") or items.get("DATE") or "")
    m = re.match(r"\s*(\d{4})[:\-](\d{2})[:\-](\d{2})", text)
    if m:
        info.year, info.month, info.day = (float(g) for g in m.groups())


def _georef(info: GeoInfo, geo: dict[str, Any], shape: tuple[int, int]) -> None:
    scale, tie = geo.get("ModelPixelScale"), geo.get("ModelTiepoint")
    if scale is None or tie is None or len(tie) < 6:
        if geo.get("ModelTransformation") is not None:
            info.notes.append("ModelTransformation (rotated raster) is not read; lon/lat NaN")
        return
    model = int(geo.get("GTModelTypeGeoKey", 0) or 0)
    epsg = geo.get("ProjectedCSTypeGeoKey") if model == 1 else geo.get("GeographicTypeGeoKey")
    epsg = int(epsg) if epsg is not None else (4326 if model == 2 else None)
    info.epsg = epsg
    h, w = shape
    sx, sy = float(scale[0]), float(scale[1])
    i, j, x0, y0 = float(tie[0]), float(tie[1]), float(tie[3]), float(tie[4])  # (I, J, K, X, Y, Z)
    cx, cy = x0 + (w / 2 - i) * sx, y0 - (h / 2 - j) * sy
    if epsg is None:
        info.notes.append("no EPSG code in GeoKeyDirectory; lon/lat NaN")
        return
    lonlat = to_lonlat(cx, cy, epsg)
    if lonlat is None:
        info.notes.append(f"EPSG:{epsg} needs pyproj to give lon/lat (pip install pyproj)")
    else:
        info.lon, info.lat = lonlat
    if epsg == 4326 or model == 2:
        info.gsd = sy * _M_PER_DEG
    elif int(geo.get("ProjLinearUnitsGeoKey", 9001) or 9001) == 9001:
        info.gsd = (sx + sy) / 2
    else:
        info.notes.append("projected CRS not in metres; GSD NaN")


def read_geotiff(path: Path, with_pixels: bool = True) -> tuple[np.ndarray | None, GeoInfo]:
    """Read ``path``: pixels (C, H, W) in their stored dtype (None if not asked) and its tags.

    Raises:
        DatasetNotFoundError: the file does not exist.
        DataFormatError: the file is not a readable TIFF, or its pixels hold NaN / Inf that
            its declared nodata does not cover (see :mod:`satdifuser.data.nodata`).
    """
    if not path.is_file():
        raise DatasetNotFoundError(f"GeoTIFF {path} does not exist; check the folder")
    try:
        with tifffile.TiffFile(path) as tf:
            series = tf.series[0]
            page = tf.pages[0]
            axes = series.axes
            arr = series.asarray() if with_pixels else None
            shape = tuple(series.shape)
            tags = page.tags  # type: ignore[union-attr]
            dt = tags.get("DateTime")
            gdal = tags.get("GDAL_METADATA")
            nodata_tag = tags.get(42113)  # GDAL_NODATA
            geo = dict(page.geotiff_tags or {}) if tf.is_geotiff else {}  # type: ignore[union-attr]
            dt_value = dt.value if dt is not None else None
            gdal_text = gdal.value if gdal is not None else None
            nodata_text = nodata_tag.value if nodata_tag is not None else None
    except (tifffile.TiffFileError, OSError, ValueError, KeyError, IndexError) as exc:
        raise DataFormatError(
            f"cannot read GeoTIFF {path}: {exc}; the file is truncated or not a TIFF"
        ) from None
    yx = [shape[k] for k, a in enumerate(axes) if a in "YX"]
    info = GeoInfo(nodata=parse_nodata(nodata_text))
    items, desc = _gdal_items(gdal_text)
    if desc:
        n_bands = int(np.prod([shape[k] for k, a in enumerate(axes) if a not in "YX"]) or 1)
        info.band_names = [desc.get(b, f"band_{b + 1}") for b in range(n_bands)]
    _date(info, dt_value, items)
    cloud = items.get("CLOUD_COVER") or items.get("CLOUDY_PIXEL_PERCENTAGE")
    if cloud is not None:
        try:
            info.cloud_cover = float(cloud) / 100.0
        except ValueError:
            info.notes.append(f"cloud cover {cloud!r} is not a number")
    if geo and len(yx) == 2:
        _georef(info, geo, (int(yx[0]), int(yx[1])))
    chw = _to_chw(arr, axes, path) if arr is not None else None
    if chw is not None:
        check_finite(chw, f"GeoTIFF {path}", info.nodata)
    return chw, info


def band_count(path: Path) -> tuple[int, int, int, str]:
    """``(C, H, W, dtype)`` of a GeoTIFF from its header only."""
    try:
        with tifffile.TiffFile(path) as tf:
            s = tf.series[0]
            axes, shape, dtype = s.axes, s.shape, str(s.dtype)
    except (tifffile.TiffFileError, OSError, ValueError) as exc:
        raise DataFormatError(f"cannot read GeoTIFF {path}: {exc}") from None
    yx = [shape[k] for k, a in enumerate(axes) if a in "YX"]
    c = int(np.prod([shape[k] for k, a in enumerate(axes) if a not in "YX"]) or 1)
    return c, int(yx[0]), int(yx[1]), dtype


__all__ = ["TIFF_SUFFIXES", "GeoInfo", "band_count", "read_geotiff"]
