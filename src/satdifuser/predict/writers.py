"""Writers of segmentation output, fed finished rows top to bottom.

- :class:`GeoTiffWriter`: class ids (and optionally per-class probabilities in a second file) as
  tiled, deflate-compressed GeoTIFFs carrying the input's CRS and transform. Rows are buffered
  until a full row of 256-pixel tiles is complete, so each tile is compressed and written once
  (no rewritten, orphaned tiles) and memory stays at one tile row.
- :class:`PngWriter`: a palette ("colour") PNG whose pixel values are the class ids.

Both paint class ``k`` with the model's ``class_colors[k]`` when it has them (the dataset's mask
colours, see :mod:`satdifuser.model.colors`), else with matplotlib's tab20.

Both write to a temporary name in the output folder and rename into place on :meth:`finish`
(the PNG through :func:`satdifuser._atomic_io.atomic_path`); :meth:`abort` removes the partial
file, so no half-written output is left.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from satdifuser._atomic_io import atomic_path
from satdifuser.errors import ConfigError

BLOCK = 256
"""GeoTIFF tile side (pixels)."""

_PALETTE = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
    (174, 199, 232), (255, 187, 120), (152, 223, 138), (255, 152, 150), (197, 176, 213),
    (196, 156, 148), (247, 182, 210), (199, 199, 199), (219, 219, 141), (158, 218, 229),
]  # fmt: skip
"""matplotlib's tab20, cycled for more classes."""


def class_dtype(num_classes: int) -> tuple[np.dtype, int]:
    """The class-id dtype for K classes and its nodata value (the dtype's maximum)."""
    dtype = np.dtype(np.uint8 if num_classes <= 255 else np.uint16)
    return dtype, int(np.iinfo(dtype).max)


def class_colours(
    num_classes: int, colors: Sequence[tuple[int, int, int]] | None = None
) -> list[tuple[int, int, int]]:
    """One RGB colour per class id: ``colors`` (the model's) when given, else tab20."""
    if colors:
        return [(int(c[0]), int(c[1]), int(c[2])) for c in colors[:num_classes]]
    return [_PALETTE[i % len(_PALETTE)] for i in range(num_classes)]


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


class RowWriter:
    """Receives finished output rows in order; subclasses write them somewhere."""

    nodata: int
    dtype: np.dtype

    def write_rows(self, classes: np.ndarray, probs: np.ndarray | None) -> None:
        """Append rows: class ids (h, W) (nodata where invalid) and probabilities (K, h, W)."""
        raise NotImplementedError

    def finish(self) -> None:
        """Flush and move the output into place."""
        raise NotImplementedError

    def abort(self) -> None:
        """Drop the partial output."""
        raise NotImplementedError


class GeoTiffWriter(RowWriter):
    """Class ids (and probabilities) as tiled, compressed GeoTIFFs with the input's georeference.

    Args:
        path: Output class-id GeoTIFF.
        height: Raster height.
        width: Raster width.
        class_names: The K class names (tags, colour map, probability band names).
        crs: The input's CRS (None for an ungeoreferenced input).
        transform: The input's affine transform (None: identity).
        nodata: The input's nodata value; kept when it is an integer outside the class ids that
            fits the class dtype, else the dtype's maximum is used.
        probabilities_path: Also write K float32 bands of blended probabilities here (NaN nodata).
        colors: RGB per class for the colour map (None: tab20).
    """

    def __init__(
        self,
        path: Path,
        height: int,
        width: int,
        class_names: Sequence[str],
        crs: Any = None,
        transform: Any = None,
        nodata: float | None = None,
        probabilities_path: Path | None = None,
        colors: Sequence[tuple[int, int, int]] | None = None,
    ) -> None:
        from satdifuser.predict.geo import import_rasterio

        rasterio = import_rasterio()
        k = len(class_names)
        self.dtype, self.nodata = class_dtype(k)
        if nodata is not None and float(nodata).is_integer() and k <= nodata <= self.nodata:
            self.nodata = int(nodata)
        self.paths = [path] + ([probabilities_path] if probabilities_path is not None else [])
        base: dict[str, Any] = {
            "driver": "GTiff", "height": height, "width": width, "tiled": True,
            "blockxsize": BLOCK, "blockysize": BLOCK, "compress": "deflate", "BIGTIFF": "IF_SAFER",
        }  # fmt: skip
        if crs is not None:
            base["crs"] = crs
        if transform is not None:
            base["transform"] = transform
        self.width, self.row, self.filled = width, 0, 0
        self._buf = np.empty((min(BLOCK, height), width), dtype=self.dtype)
        self._pbuf: np.ndarray | None = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            self.dst = rasterio.open(
                _partial(path), "w", **base, count=1, dtype=self.dtype.name,
                nodata=self.nodata, predictor=2,
            )  # fmt: skip
            palette = class_colours(min(k, self.nodata), colors)
            self.dst.write_colormap(1, {i: (*c, 255) for i, c in enumerate(palette)})
            self.dst.update_tags(class_names=json.dumps(list(class_names)))
            self.dst.set_band_description(1, "class_id")
            self.pdst: Any = None
            if probabilities_path is not None:
                self.pdst = rasterio.open(
                    _partial(probabilities_path), "w", **base, count=k, dtype="float32",
                    nodata=float("nan"), predictor=3,
                )  # fmt: skip
                for i, name in enumerate(class_names, start=1):
                    self.pdst.set_band_description(i, name)
                self._pbuf = np.empty((k, *self._buf.shape), dtype=np.float32)

    def _flush(self) -> None:
        from rasterio.windows import Window

        if not self.filled:
            return
        window = Window(0, self.row, self.width, self.filled)
        self.dst.write(self._buf[: self.filled], 1, window=window)
        if self.pdst is not None and self._pbuf is not None:
            self.pdst.write(self._pbuf[:, : self.filled], window=window)
        self.row += self.filled
        self.filled = 0

    def write_rows(self, classes: np.ndarray, probs: np.ndarray | None) -> None:
        start = 0
        while start < classes.shape[0]:
            n = min(classes.shape[0] - start, self._buf.shape[0] - self.filled)
            self._buf[self.filled : self.filled + n] = classes[start : start + n]
            if self._pbuf is not None and probs is not None:
                self._pbuf[:, self.filled : self.filled + n] = probs[:, start : start + n]
            self.filled += n
            start += n
            if self.filled == self._buf.shape[0]:
                self._flush()

    def finish(self) -> None:
        self._flush()
        self.dst.close()
        if self.pdst is not None:
            self.pdst.close()
        for p in self.paths:
            os.replace(_partial(p), p)

    def abort(self) -> None:
        for dst in (self.dst, self.pdst):
            if dst is not None and not dst.closed:
                dst.close()
        for p in self.paths:
            _partial(p).unlink(missing_ok=True)


class PngWriter(RowWriter):
    """A palette PNG: pixel value = class id, colours ``colors`` (None: tab20), nodata (255)
    black/transparent.

    The class map (one byte per pixel) is held whole because PNG is written in one go.

    Raises:
        ConfigError: More than 255 classes (a palette holds 256 entries, one for nodata).
    """

    def __init__(
        self,
        path: Path,
        height: int,
        width: int,
        class_names: Sequence[str],
        colors: Sequence[tuple[int, int, int]] | None = None,
    ) -> None:
        k = len(class_names)
        if k > 255:
            raise ConfigError(
                f"a colour PNG holds at most 255 classes but the model has {k}; "
                "write a GeoTIFF instead (--out ending in .tif)"
            )
        self.path, self.class_names = path, list(class_names)
        self.colors = class_colours(k, colors)
        self.nodata, self.dtype = 255, np.dtype(np.uint8)
        self._out = np.full((height, width), self.nodata, dtype=np.uint8)
        self.row = 0

    def write_rows(self, classes: np.ndarray, probs: np.ndarray | None) -> None:
        self._out[self.row : self.row + classes.shape[0]] = classes
        self.row += classes.shape[0]

    def finish(self) -> None:
        from PIL import Image

        img = Image.frombytes("P", self._out.shape[::-1], self._out.tobytes())
        palette = [0] * (256 * 3)
        for i, c in enumerate(self.colors):
            palette[3 * i : 3 * i + 3] = c
        img.putpalette(palette)
        with atomic_path(self.path) as tmp:
            img.save(tmp, format="PNG", transparency=self.nodata)

    def abort(self) -> None:
        """Nothing to drop: the PNG is only written (atomically) by :meth:`finish`."""


__all__ = ["BLOCK", "GeoTiffWriter", "PngWriter", "RowWriter", "class_colours", "class_dtype"]
