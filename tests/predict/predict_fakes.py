"""Tiny fake models (the predict protocol) and a GeoTIFF writer for the predict tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

rasterio = pytest.importorskip("rasterio", reason="the predict GeoTIFF tests need the geo extra")
from rasterio.transform import from_origin  # noqa: E402

UTM_ORIGIN = (500_000.0, 5_000_000.0)  # EPSG:32633, about 45.1 N 15 E


class FakeSegmentationModel:
    """Per-pixel two-class model: p(b) = mean over bands (or ``fn`` of the windows)."""

    task_type = "segmentation"

    def __init__(
        self,
        tile_size: int = 32,
        in_channels: int = 3,
        fn: Callable[[Tensor], Tensor] | None = None,
        class_names: tuple[str, ...] = ("a", "b"),
    ) -> None:
        self.tile_size, self.in_channels = tile_size, in_channels
        self.class_names = list(class_names)
        self.fn = fn
        self.calls: list[tuple[int, ...]] = []

    def predict_proba(self, images: Tensor) -> Tensor:
        assert images.dtype == torch.float32 and 0 <= images.min() and images.max() <= 1
        self.calls.append(tuple(images.shape))
        if self.fn is not None:
            return self.fn(images)
        p = images.mean(dim=1, keepdim=True)
        return torch.cat([1 - p, p], dim=1)


class FakeClassifier:
    """Three classes whose probabilities are the normalised band means (argmax = brightest band)."""

    def __init__(self, task_type: str = "classification", in_channels: int = 3) -> None:
        self.task_type, self.in_channels, self.tile_size = task_type, in_channels, 32
        self.class_names = ["red", "green", "blue"][:in_channels]

    def predict_proba(self, images: Tensor) -> Tensor:
        m = images.mean(dim=(2, 3)) + 1e-3
        return m / m.sum(dim=1, keepdim=True) if self.task_type == "classification" else m


def write_geotiff(
    path: Path,
    pixels: np.ndarray,
    *,
    crs: str | None = "EPSG:32633",
    nodata: float | None = None,
    gsd: float = 10.0,
) -> Path:
    """Write (C, H, W) pixels as a GeoTIFF at :data:`UTM_ORIGIN` (no CRS when ``crs`` is None)."""
    c, h, w = pixels.shape
    profile = {"driver": "GTiff", "height": h, "width": w, "count": c, "dtype": pixels.dtype.name}
    if crs is not None:
        profile |= {"crs": crs, "transform": from_origin(*UTM_ORIGIN, gsd, gsd)}
    if nodata is not None:
        profile["nodata"] = nodata
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(pixels)
    return path
