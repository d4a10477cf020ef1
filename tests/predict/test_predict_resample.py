"""Models trained on resampled pixels: native windows of tile / resample, native-grid outputs."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import torch.nn.functional as F
from PIL import Image
from predict_fakes import FakeClassifier, FakeSegmentationModel, write_geotiff
from torch import Tensor

import satdifuser.cli.predict as cli_predict
from satdifuser.cli.main import main
from satdifuser.data.tiling import window_starts
from satdifuser.errors import ConfigError
from satdifuser.predict import predict, predict_segmentation

H, W = 150, 110  # not multiples of the native window: flush last windows on both axes


class ResamplingSegmenter(FakeSegmentationModel):
    """A per-pixel model that records a training factor, like SatDiFuserModel."""

    def __init__(self, resample: float, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.resample = resample

    def predict_proba(self, images: Tensor, resample: float | None = None) -> Tensor:
        assert resample == 1.0, "predict must call the model at its own scale"
        return super().predict_proba(images)


def _scene(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """Smooth base + 1-pixel stripes: resampling by 0.5 averages the stripes away."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    base = 128 + 70 * np.sin(x / 17) * np.cos(y / 23)
    stripes = 25 * ((x.astype(int) % 2) * 2 - 1)
    px = np.stack([base + stripes, base + stripes - 20, base + stripes + 20])
    pixels = np.clip(px, 1, 255).astype(np.uint8)
    return write_geotiff(tmp_path / "scene.tif", pixels), pixels


def _down(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    x = torch.from_numpy(pixels.astype(np.float32))[None]
    out = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    return out[0].round().clamp(0, 255).numpy().astype(np.uint8)


def test_segmentation_at_half_resolution_equals_predicting_a_downsampled_raster(
    tmp_path: Path,
) -> None:
    src, pixels = _scene(tmp_path)
    model = ResamplingSegmenter(0.5, tile_size=32)
    out, proba = tmp_path / "c.tif", tmp_path / "p.tif"
    stats = predict_segmentation(model, src, out, probabilities_path=proba, batch_size=3)
    # native windows of 64 px (stride 48) were read and the model saw 32 x 32 windows
    assert stats.tiles == 3 * 2 and stats.pixels == H * W
    assert {c[1:] for c in model.calls} == {(3, 32, 32)} and sum(c[0] for c in model.calls) == 6
    with rasterio.open(src) as s, rasterio.open(out) as c, rasterio.open(proba) as p:
        assert (c.crs, c.transform, c.width, c.height) == (s.crs, s.transform, W, H)
        assert (p.crs, p.transform, p.width, p.height) == (s.crs, s.transform, W, H)
        got = p.read(2)
    # by hand: downsample the whole raster, predict it at the model's scale, upsample
    small = write_geotiff(tmp_path / "small.tif", _down(pixels, (H // 2, W // 2)))
    predict_segmentation(FakeSegmentationModel(tile_size=32), small, tmp_path / "sc.tif",
                         probabilities_path=tmp_path / "sp.tif")  # fmt: skip
    with rasterio.open(tmp_path / "sp.tif") as p:
        ref = torch.from_numpy(p.read(2))[None, None]
    expected = F.interpolate(ref, size=(H, W), mode="bilinear", align_corners=False)[0, 0].numpy()
    diff = np.abs(got - expected)
    assert diff.mean() < 1e-3 and diff.max() < 0.01, (diff.mean(), diff.max())
    # ... and not what the model gives at native resolution (there the stripes stay)
    native = (pixels.astype(np.float32) / 255).mean(axis=0)
    assert np.abs(got - native).mean() > 0.08


def test_resample_override_works_for_any_model_and_keeps_the_grid(tmp_path: Path) -> None:
    src, _ = _scene(tmp_path)
    plain = FakeSegmentationModel(tile_size=32)  # no resample of its own
    predict(plain, [src], tmp_path / "o.tif", resample=0.5, batch_size=8)
    assert {c[1:] for c in plain.calls} == {(3, 32, 32)}
    with rasterio.open(tmp_path / "o.tif") as c:
        assert (c.width, c.height) == (W, H)
    stored = ResamplingSegmenter(0.25, tile_size=32)
    predict(stored, [src], tmp_path / "n.tif", resample=1.0, overlap=8)  # native scale
    n = len(window_starts(H, 32, 24)) * len(window_starts(W, 32, 24))  # native 32-px windows
    assert sum(c[0] for c in stored.calls) == n == 6 * 5
    stored.calls.clear()
    predict(stored, [src], tmp_path / "q.tif")  # its own 0.25: native 128-px windows, stride 96
    assert sum(c[0] for c in stored.calls) == 2 * 1 and {c[1:] for c in stored.calls} == {
        (3, 32, 32)
    }


def test_overlap_is_in_native_pixels_of_the_native_window(tmp_path: Path) -> None:
    src, _ = _scene(tmp_path)
    with pytest.raises(ConfigError, match=r"overlap=64 must be in \[0, 64\) native pixels"):
        predict(ResamplingSegmenter(0.5, tile_size=32), [src], tmp_path / "x.tif", overlap=64)
    assert not (tmp_path / "x.tif").exists()


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), 5.0])
def test_bad_factor_fails_before_any_output(tmp_path: Path, bad: float) -> None:
    src, _ = _scene(tmp_path)
    with pytest.raises(ConfigError, match="must be a number in"):
        predict(FakeSegmentationModel(), [src], tmp_path / "o", resample=bad)
    assert not (tmp_path / "o").exists()


class ShapeClassifier(FakeClassifier):
    def __init__(self, resample: float) -> None:
        super().__init__()
        self.resample, self.shapes = resample, []  # type: ignore[var-annotated]

    def predict_proba(self, images: Tensor, resample: float | None = None) -> Tensor:
        assert resample == 1.0
        self.shapes.append(tuple(images.shape))
        return super().predict_proba(images)


def test_classification_images_are_resized_by_the_factor(tmp_path: Path) -> None:
    rgb = np.zeros((40, 30, 3), dtype=np.uint8)
    rgb[..., 2] = 200
    Image.fromarray(rgb).save(tmp_path / "a.png")
    model = ShapeClassifier(0.5)
    predict(model, [tmp_path / "a.png"], tmp_path / "p.csv")
    assert model.shapes == [(1, 3, 20, 15)]
    with (tmp_path / "p.csv").open() as f:
        assert next(csv.DictReader(f))["predicted"] == "blue"


def test_cli_resample_override_notes_it_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    src, _ = _scene(tmp_path)
    model = ResamplingSegmenter(0.25, tile_size=32)
    monkeypatch.setattr(cli_predict, "load_model", lambda path, device=None: model)
    argv = ["predict", "--model", "m", str(src), "--out", str(tmp_path / "o.tif"), "--no-progress"]
    assert main([*argv, "--resample", "0.5"]) == 0
    err = capsys.readouterr().err
    assert "note: --resample 0.5 overrides the model's resample 0.25" in err
    assert {c[1:] for c in model.calls} == {(3, 32, 32)}
    assert main([*argv, "--resample", "0.25"]) == 0
    assert "note:" not in capsys.readouterr().err
    assert main([*argv, "--resample", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "ConfigError" in err and "resample=0.0 must be a number" in err


def test_default_window_batch_shrinks_with_the_window_area() -> None:
    from satdifuser.predict.segmentation import auto_batch_size

    assert [auto_batch_size(t) for t in (32, 64, 90, 128, 256, 512, 1024)] == [32, 32, 16, 8,
                                                                              2, 1, 1]
