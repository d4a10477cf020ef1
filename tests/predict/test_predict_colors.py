"""Colour outputs paint class k with the model's class_colors[k] (else the default palette)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from predict_fakes import FakeSegmentationModel, write_geotiff
from torch import Tensor

from satdifuser.errors import ConfigError
from satdifuser.predict import predict_segmentation

COLORS = [(60, 16, 152), (254, 221, 58), (226, 169, 41)]


def _brightest_band(images: Tensor) -> Tensor:
    """Three classes: the brightest band of each pixel."""
    return torch.softmax(images * 50, dim=1)


def _model(colors: object) -> FakeSegmentationModel:
    model = FakeSegmentationModel(fn=_brightest_band, class_names=("r", "g", "b"))
    model.class_colors = colors  # type: ignore[attr-defined]
    return model


def _stripes() -> np.ndarray:
    """(40, 60, 3) uint8: left third red, middle green, right blue."""
    rgb = np.full((40, 60, 3), 20, dtype=np.uint8)
    for k in range(3):
        rgb[:, 20 * k : 20 * (k + 1), k] = 230
    return rgb


def test_png_pixels_of_class_k_have_colour_k(tmp_path: Path) -> None:
    Image.fromarray(_stripes()).save(tmp_path / "in.png")
    predict_segmentation(_model(COLORS), tmp_path / "in.png", tmp_path / "out.png")
    img = Image.open(tmp_path / "out.png")
    ids, rgb = np.asarray(img), np.asarray(img.convert("RGB"))
    assert set(np.unique(ids)) == {0, 1, 2}
    for k, colour in enumerate(COLORS):
        assert (rgb[ids == k] == colour).all()
        assert (ids[:, 20 * k + 2 : 20 * (k + 1) - 2] == k).all()


def test_geotiff_colour_table_uses_the_class_colours(tmp_path: Path) -> None:
    import rasterio

    src = write_geotiff(tmp_path / "in.tif", _stripes().transpose(2, 0, 1).copy())
    predict_segmentation(_model([list(c) for c in COLORS]), src, tmp_path / "out.tif")
    with rasterio.open(tmp_path / "out.tif") as dst:
        cmap = dst.colormap(1)
    assert [cmap[k][:3] for k in range(3)] == COLORS


def test_bad_class_colors_fail_before_any_output(tmp_path: Path) -> None:
    Image.fromarray(_stripes()).save(tmp_path / "in.png")
    with pytest.raises(ConfigError, match="class_colors has 2 entries but the model has 3"):
        predict_segmentation(_model(COLORS[:2]), tmp_path / "in.png", tmp_path / "out.png")
    assert not list(tmp_path.glob("*out*")) and not list(tmp_path.glob(".*partial"))
