"""Plain-image output, input contracts (bands, scaling), option errors, the geo extra."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from predict_fakes import FakeSegmentationModel, write_geotiff
from torch import Tensor

from satdifuser.errors import ConfigError, DependencyNotFoundError, InputError, InputShapeError
from satdifuser.predict import default_prepare_raster, predict, predict_segmentation
from satdifuser.predict.writers import class_colours


def test_plain_png_gives_a_colour_png_of_class_ids_with_transparent_nodata(
    tmp_path: Path,
) -> None:
    rgba = np.zeros((40, 70, 4), dtype=np.uint8)
    rgba[:, :35, :3], rgba[:, 35:, :3] = 40, 220  # left dark (class a), right bright (class b)
    rgba[..., 3] = 255
    rgba[:5, :5, 3] = 0  # transparent corner = nodata
    Image.fromarray(rgba).save(tmp_path / "tile.png")
    result = predict(FakeSegmentationModel(), [tmp_path], tmp_path / "maps")
    out = tmp_path / "maps" / "tile.png"
    assert result.outputs == [out]
    img = Image.open(out)
    ids = np.asarray(img)
    assert img.mode == "P" and ids.shape == (40, 70) and img.info["transparency"] == 255
    assert (ids[:5, :5] == 255).all() and (ids[5:, :35] == 0).all() and (ids[:, 35:] == 1).all()
    assert tuple(img.getpalette()[3:6]) == class_colours(2)[1]


def test_wrong_band_count_is_refused_before_any_output(tmp_path: Path) -> None:
    src = write_geotiff(tmp_path / "two.tif", np.ones((2, 40, 40), dtype=np.uint8))
    out = tmp_path / "out.tif"
    with pytest.raises(InputError, match=r"two\.tif has 2 band\(s\) but the model takes 3"):
        predict_segmentation(FakeSegmentationModel(), src, out)
    assert not out.exists() and not list(tmp_path.glob(".*partial"))
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(tmp_path / "grey.png")
    with pytest.raises(InputError, match=r"grey\.png has 1 band"):
        predict(FakeSegmentationModel(), [tmp_path / "grey.png"], tmp_path / "g.png")


def test_uint16_needs_a_declared_scale(tmp_path: Path) -> None:
    src = write_geotiff(tmp_path / "s2.tif", np.full((3, 40, 40), 5000, dtype=np.uint16))
    with pytest.raises(InputError, match=r"s2\.tif is uint16 .*\(--scale"):
        predict_segmentation(FakeSegmentationModel(), src, tmp_path / "c.tif")
    predict_segmentation(FakeSegmentationModel(), src, tmp_path / "c.tif",
                         probabilities_path=tmp_path / "p.tif", scale=10000)  # fmt: skip
    import rasterio

    with rasterio.open(tmp_path / "p.tif") as p:
        np.testing.assert_allclose(p.read(2), 0.5)


def test_default_preparer_rules() -> None:
    u8 = np.full((3, 2, 2), 255, dtype=np.uint8)
    assert default_prepare_raster(u8, "x", 3).max().item() == 1.0
    with pytest.raises(InputError, match=r"float values in \[0, 2\]"):
        default_prepare_raster(np.array([[[0.0, 2.0]]] * 3, dtype=np.float32), "x", 3)
    with pytest.raises(InputError, match="int16"):
        default_prepare_raster(u8.astype(np.int16), "x", 3)
    with pytest.raises(ConfigError, match="scale=0"):
        default_prepare_raster(u8, "x", 3, scale=0)


def test_bands_select_and_model_prepare_raster_is_used(tmp_path: Path) -> None:
    pixels = np.zeros((4, 40, 40), dtype=np.uint8)
    pixels[3] = 255  # only band 4 is bright
    src = write_geotiff(tmp_path / "four.tif", pixels)
    seen: list[str] = []

    class WithPrepare(FakeSegmentationModel):
        def prepare_raster(self, array: np.ndarray, source: str) -> Tensor:
            seen.append(source)
            return torch.from_numpy(array.astype(np.float32) / 255)

    with pytest.raises(ConfigError, match=r"bands=\[1, 5\] but .*four\.tif has bands 1\.\.4"):
        predict_segmentation(WithPrepare(), src, tmp_path / "c.tif", bands=[1, 5])
    predict_segmentation(WithPrepare(), src, tmp_path / "c.tif", bands=[4, 4, 4])
    import rasterio

    with rasterio.open(tmp_path / "c.tif") as c:
        assert (c.read(1) == 1).all()
    assert seen and set(seen) == {str(src)}


def test_model_output_of_wrong_shape_is_an_error(tmp_path: Path) -> None:
    src = write_geotiff(tmp_path / "s.tif", np.ones((3, 40, 40), dtype=np.uint8))
    bad = FakeSegmentationModel(fn=lambda x: torch.ones(x.shape[0], 2))
    with pytest.raises(InputShapeError, match=r"returned shape \(\d+, 2\)"):
        predict_segmentation(bad, src, tmp_path / "c.tif")
    assert not (tmp_path / "c.tif").exists()


def test_output_options_that_do_not_fit_are_refused(tmp_path: Path) -> None:
    a = write_geotiff(tmp_path / "a.tif", np.ones((3, 8, 8), dtype=np.uint8))
    (tmp_path / "b").mkdir()
    b = write_geotiff(tmp_path / "b" / "a.tif", np.ones((3, 8, 8), dtype=np.uint8))
    with pytest.raises(ConfigError, match="names one file but there are 2 inputs"):
        predict(FakeSegmentationModel(), [a, b], tmp_path / "x.tif")
    with pytest.raises(ConfigError, match="would both be written to"):
        predict(FakeSegmentationModel(), [a, b], tmp_path / "maps")
    with pytest.raises(ConfigError, match=r"overlap=32 must be in \[0, 32\)"):
        predict(FakeSegmentationModel(), [a], tmp_path / "x.tif", overlap=32)
    with pytest.raises(ConfigError, match="lacks task_type"):
        predict(object(), [a], tmp_path / "x.tif")


def test_missing_rasterio_names_the_geo_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = write_geotiff(tmp_path / "s.tif", np.ones((3, 8, 8), dtype=np.uint8))
    monkeypatch.setitem(sys.modules, "rasterio", None)  # import rasterio -> ImportError
    with pytest.raises(DependencyNotFoundError, match=r'pip install "satdifuser\[geo\]"'):
        predict_segmentation(FakeSegmentationModel(), src, tmp_path / "c.tif")
