"""Image files and folders as a dataset: one sample per image, or per tile of a GeoTIFF.

Plain images (PNG, JPEG) are read as RGB in [0, 1] (:func:`satdifuser.data.image_io.read_image`);
GeoTIFFs with rasterio (:func:`satdifuser.data.geotiff_io.read_geotiff`), window by window, the
RGB bands picked as :class:`~satdifuser.data.geotiff_folder.GeoTiffFolder` picks them (band
descriptions, else by count) and scaled by the dtype's default range.

With a custom ``scale`` (a model's ``prepare_raster``, as ``satdifuser predict`` uses it) every
file is read raw instead: GeoTIFF bands in their stored dtype, plain images as RGB in their stored
depth (:func:`satdifuser.data.image_io.read_pixels`), and ``scale`` maps them to the model's input
contract: its band selection and scaling, or, for a model whose input spec converts them itself
(``model.adapt_input``), the values that spec takes (raw bands; z-scored with the spec's mean/std
for ``kind='zscore'``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from satdifuser._typing import Sample
from satdifuser.data.bands import default_band_names, default_range, default_rgb, scale_bands
from satdifuser.data.geotiff_io import TIFF_SUFFIXES, band_count, read_geotiff
from satdifuser.data.image_io import image_size as image_hw
from satdifuser.data.image_io import read_image, read_pixels
from satdifuser.data.meta import make_meta
from satdifuser.data.splits import natural_key
from satdifuser.embed.footprints import Window
from satdifuser.errors import ConfigError, DatasetNotFoundError
from satdifuser.model.resample import resize_images

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", *TIFF_SUFFIXES)

RasterScale = Callable[[np.ndarray, str], torch.Tensor]
"""Raw ``(C, H, W)`` pixels and a source name -> ``(C, H, W)`` model input (e.g. float in [0, 1],
or raw bands for a model with an input spec); raises naming the source when they do not fit."""


def collect_files(paths: Sequence[str | Path]) -> list[Path]:
    """Image files named directly or found (recursively, natural order) in folders.

    Raises:
        DatasetNotFoundError: a path does not exist, or nothing readable was found.
    """
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            hits = [f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
            found.extend(sorted(hits, key=lambda f: natural_key(f.as_posix())))
        elif p.is_file():
            found.append(p)
        else:
            raise DatasetNotFoundError(f"input {p} does not exist; pass image files or folders")
    if not found:
        raise DatasetNotFoundError(
            f"no images ({', '.join(IMAGE_SUFFIXES)}) in {', '.join(map(str, paths))}; "
            "pass image files or folders holding them"
        )
    return found


def tile_windows(height: int, width: int, tile: int | None) -> list[Window]:
    """Non-overlapping ``tile`` x ``tile`` windows covering the image, row-major.

    The last row and column are shifted back inside the image (they overlap their neighbour),
    so every window is full-size and every pixel is covered. None (or a tile not smaller than
    the image) gives the whole image.
    """
    if tile is None or (tile >= height and tile >= width):
        return [(0, 0, height, width)]
    th, tw = min(tile, height), min(tile, width)

    def starts(n: int, t: int) -> list[int]:
        s = list(range(0, n - t + 1, t))
        return s if s[-1] + t == n else [*s, n - t]

    return [(r, c, th, tw) for r in starts(height, th) for c in starts(width, tw)]


class ImageFiles(Dataset[Sample]):
    """Images (or tiles of GeoTIFFs) as samples ``image``, ``meta``, ``id``.

    Args:
        files: Image files (see :func:`collect_files`).
        tile: Cut GeoTIFFs into ``tile`` x ``tile`` windows (see :func:`tile_windows`); None:
            whole images. Plain images are never tiled.
        image_size: Resize every image to this square size (so images of different sizes
            batch together); 0 or None keeps their size.
        scale: Maps the raw pixels of every file (GeoTIFF bands in their dtype; PNG/JPEG as
            RGB in their stored depth) to the model's input (``SatDiFuserModel.prepare_raster``);
            its values are kept as they are (no clipping, also when resized), and so is an
            integer dtype it returns (uint8 for a model that divides by 255 itself). None keeps the
            GeoTIFF RGB bands and scales by the dtype's range (uint8 /255, other integers
            /4095, floats as they are), and plain images by their bit depth.

    Attributes:
        files: One path per sample (a file repeats for each of its tiles).
        windows: ``(row_off, col_off, height, width)`` per sample.
        ids: ``name`` or ``name@row,col`` for tiles.

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        files: Sequence[str | Path],
        tile: int | None = None,
        image_size: int | None = None,
        scale: RasterScale | None = None,
    ) -> None:
        if tile is not None and (isinstance(tile, bool) or tile < 1):
            raise ConfigError(f"tile={tile!r} must be a positive number of pixels")
        self.image_size, self.scale = image_size or 0, scale
        self.files: list[Path] = []
        self.windows: list[Window] = []
        self.ids: list[str] = []
        for f in map(Path, files):
            is_tif = f.suffix.lower() in TIFF_SUFFIXES
            if is_tif:
                _, h, w, _ = band_count(f)
            else:
                h, w = image_hw(f)
            wins = tile_windows(h, w, tile if is_tif else None)
            for win in wins:
                self.files.append(f)
                self.windows.append(win)
                self.ids.append(f.name if len(wins) == 1 else f"{f.name}@{win[0]},{win[1]}")

    def __len__(self) -> int:
        return len(self.files)

    def _read_tif(self, path: Path, win: Window) -> tuple[torch.Tensor, torch.Tensor]:
        row, col, h, w = win
        arr, info = read_geotiff(path, window=((row, row + h), (col, col + w)))
        assert arr is not None
        if self.scale is not None:
            image = self.scale(arr, str(path))
        else:
            names = info.band_names or default_band_names(arr.shape[0])[0]
            keep = default_rgb(names, str(path)) if arr.shape[0] > 3 else list(range(arr.shape[0]))
            arr = arr[keep]
            image = torch.from_numpy(scale_bands(arr, "fixed", default_range(arr.dtype)))
        return image, torch.tensor(info.meta_values(), dtype=torch.float32)

    def __getitem__(self, index: int) -> Sample:
        path, win = self.files[index], self.windows[index]
        if path.suffix.lower() in TIFF_SUFFIXES:
            image, meta = self._read_tif(path, win)
        elif self.scale is not None:  # raw RGB in the stored depth, mapped as the model says
            pixels, _ = read_pixels(path)
            image, meta = self.scale(np.moveaxis(pixels, -1, 0), str(path)), make_meta()
        else:
            image, meta = read_image(path), make_meta()
        image = torch.as_tensor(image)
        if image.is_floating_point() or self.scale is None:
            image = image.float()  # integer pixels from ``scale`` stay (the model scales them)
        size = self.image_size
        if size and tuple(image.shape[-2:]) != (size, size):
            image = resize_images(image[None], (size, size))[0]
            if self.scale is None:
                image = image.clamp(0, 1)
        return {"image": image, "meta": meta, "id": self.ids[index]}


__all__ = ["IMAGE_SUFFIXES", "ImageFiles", "RasterScale", "collect_files", "tile_windows"]
