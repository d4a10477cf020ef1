"""Pixel sources for prediction: GeoTIFFs read window by window, plain images read once.

Both return raw pixels (C, h, w) in the file's own dtype and a validity mask (h, w) (None when
every pixel is valid). A GeoTIFF's mask follows GDAL: an internal mask band, else the alpha band,
else the nodata value (a pixel is invalid when all bands equal nodata).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from satdifuser.errors import ConfigError, DataFormatError, DatasetNotFoundError
from satdifuser.predict.geo import GEOTIFF_SUFFIXES, import_rasterio, is_georeferenced


class PixelSource:
    """Base of the sources: name, size, selected bands, dtype, windowed ``read``."""

    name: str
    height: int
    width: int
    count: int
    dtype: np.dtype
    georeferenced: bool = False

    def read(
        self, row: int, col: int, height: int, width: int
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Pixels (C, height, width) of the window and its validity mask (None: all valid)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the file."""

    def __enter__(self) -> PixelSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _select(count: int, bands: Sequence[int] | None, source: str) -> list[int]:
    if bands is None:
        return list(range(1, count + 1))
    bad = [b for b in bands if not 1 <= b <= count]
    if bad:
        raise ConfigError(
            f"bands={list(bands)} but {source} has bands 1..{count} (1-based); "
            f"choose bands within 1..{count}"
        )
    return list(bands)


class GeoTiffSource(PixelSource):
    """A GeoTIFF (or any GDAL raster) opened with rasterio; only windows are ever read.

    Args:
        path: The raster file.
        bands: 1-based band indexes to read (default: every band except an alpha band).
    """

    def __init__(self, path: Path, bands: Sequence[int] | None = None) -> None:
        rasterio = import_rasterio()
        from rasterio.enums import ColorInterp, MaskFlags

        self.name = str(path)
        try:
            self.dataset: Any = rasterio.open(path)
        except rasterio.errors.RasterioIOError as exc:
            raise DataFormatError(
                f"cannot open raster {path}: {exc}; the file is truncated or not a raster"
            ) from None
        ds = self.dataset
        alpha = [i + 1 for i, c in enumerate(ds.colorinterp) if c == ColorInterp.alpha]
        default = [b for b in range(1, ds.count + 1) if b not in alpha]
        self.indexes = _select(ds.count, bands, self.name) if bands is not None else default
        self.height, self.width, self.count = ds.height, ds.width, len(self.indexes)
        self.dtype = np.dtype(ds.dtypes[self.indexes[0] - 1])
        self.georeferenced = is_georeferenced(ds)
        flags = [set(ds.mask_flag_enums[i - 1]) for i in self.indexes]
        if all(f == {MaskFlags.all_valid} for f in flags) and not alpha:
            self._mask = "none"
        elif all(MaskFlags.nodata in f for f in flags) and not alpha:
            self._mask = "nodata"  # computed from the pixels already read: no second read
        else:
            self._mask = "gdal"  # internal mask or alpha band: ask GDAL
        self.nodata = ds.nodata

    def read(
        self, row: int, col: int, height: int, width: int
    ) -> tuple[np.ndarray, np.ndarray | None]:
        from rasterio.windows import Window

        window = Window(col, row, width, height)
        pixels = self.dataset.read(self.indexes, window=window)
        if self._mask == "none":
            return pixels, None
        if self._mask == "nodata":
            nd = self.nodata
            bad = np.isnan(pixels) if nd is not None and np.isnan(nd) else pixels == nd
            return pixels, ~bad.all(axis=0)
        return pixels, self.dataset.dataset_mask(window=window) > 0

    def close(self) -> None:
        self.dataset.close()


class ImageSource(PixelSource):
    """A plain image (PNG, JPEG, ...) decoded once with Pillow; alpha becomes the mask.

    Plain formats cannot be read by window, so the image is held whole; scenes larger than a
    few hundred megapixels belong in a (tiled) GeoTIFF.
    """

    def __init__(self, path: Path, bands: Sequence[int] | None = None) -> None:
        from PIL import Image

        self.name = str(path)
        try:
            img = Image.open(path)
            img.load()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise DataFormatError(
                f"cannot read image {path}: {exc}; the file is truncated or not an image"
            ) from None
        if img.mode == "P":
            img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        elif img.mode in {"CMYK", "YCbCr", "HSV", "LAB", "1"}:
            img = img.convert("L" if img.mode == "1" else "RGB")
        arr = np.asarray(img)
        arr = arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)
        self._valid: np.ndarray | None = None
        if img.mode in {"RGBA", "LA", "La", "RGBa", "PA"}:
            self._valid = arr[-1] > 0
            arr = arr[:-1]
        self.indexes = _select(arr.shape[0], bands, self.name)
        self._pixels = np.ascontiguousarray(arr[[i - 1 for i in self.indexes]])
        self.count, self.height, self.width = self._pixels.shape
        self.dtype = self._pixels.dtype

    def read(
        self, row: int, col: int, height: int, width: int
    ) -> tuple[np.ndarray, np.ndarray | None]:
        rows, cols = slice(row, row + height), slice(col, col + width)
        valid = None if self._valid is None else self._valid[rows, cols]
        return self._pixels[:, rows, cols], valid


def is_geotiff(path: Path) -> bool:
    """Whether ``path`` is read with rasterio (by suffix)."""
    return path.suffix.lower() in GEOTIFF_SUFFIXES


def open_source(path: Path, bands: Sequence[int] | None = None) -> PixelSource:
    """Open ``path`` with the source its suffix calls for.

    Raises:
        DatasetNotFoundError: The file does not exist.
        DataFormatError: The file cannot be decoded.
        DependencyNotFoundError: A GeoTIFF and rasterio is missing.
    """
    if not path.is_file():
        raise DatasetNotFoundError(f"input {path} does not exist; check the path")
    return GeoTiffSource(path, bands) if is_geotiff(path) else ImageSource(path, bands)


__all__ = ["GeoTiffSource", "ImageSource", "PixelSource", "is_geotiff", "open_source"]
