"""Segmentation of scenes: georeference kept, nodata kept, weighted blending, bounded reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from predict_fakes import FakeSegmentationModel, write_geotiff
from torch import Tensor

from satdifuser.predict import predict, predict_segmentation
from satdifuser.predict.sources import GeoTiffSource

H, W = 300, 200  # taller than one 256-row output block and many 32-px window strips


@pytest.fixture
def scene(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """uint8 RGB scene with nodata=0 in a 70 x 90 block (more than a whole window)."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(1, 256, size=(3, H, W), dtype=np.uint8)
    pixels[:, 100:170, 50:140] = 0
    return write_geotiff(tmp_path / "scene.tif", pixels, nodata=0), pixels


def test_output_keeps_crs_transform_size_and_is_tiled_compressed(
    scene: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    src, _ = scene
    out = tmp_path / "out" / "classes.tif"
    predict(FakeSegmentationModel(), [src], out, overlap=8, batch_size=4)
    with rasterio.open(src) as a, rasterio.open(out) as b:
        assert (b.crs, b.transform, b.width, b.height) == (a.crs, a.transform, a.width, a.height)
        assert b.count == 1 and b.dtypes[0] == "uint8"
        assert b.profile["tiled"] and b.block_shapes[0] == (256, 256)
        assert b.compression is not None and b.compression.value == "DEFLATE"
        assert b.tags()["class_names"] == '["a", "b"]'
        assert b.colormap(1)[1][:3] == (255, 127, 14)
    assert not list(out.parent.glob(".*partial"))


def test_blended_probabilities_equal_the_per_pixel_model_on_the_whole_scene(
    scene: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    """A per-pixel model must give the same map however the windows fall: checks offsets."""
    src, pixels = scene
    out, proba = tmp_path / "c.tif", tmp_path / "p.tif"
    model = FakeSegmentationModel()
    predict_segmentation(model, src, out, probabilities_path=proba, overlap=12, batch_size=5)
    expected = (pixels.astype(np.float32) / 255).mean(axis=0)
    valid = pixels.any(axis=0)
    with rasterio.open(proba) as p, rasterio.open(out) as c:
        got, classes = p.read(2), c.read(1)
        assert p.descriptions == ("a", "b") and p.dtypes[0] == "float32"
    np.testing.assert_allclose(got[valid], expected[valid], atol=2e-6)
    assert np.isnan(got[~valid]).all()
    np.testing.assert_array_equal(classes[valid], (expected[valid] > 0.5).astype(np.uint8))


def test_nodata_area_stays_nodata_and_whole_nodata_windows_are_skipped(
    scene: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    src, pixels = scene
    out = tmp_path / "c.tif"
    stats = predict_segmentation(FakeSegmentationModel(), src, out, overlap=8)
    with rasterio.open(out) as c:
        classes, nodata = c.read(1), c.nodata
    assert nodata == 255  # the input's nodata 0 is a class id, so 255 marks nodata
    assert (classes[100:170, 50:140] == 255).all()
    assert (classes[~(pixels == 0).all(axis=0)] != 255).all()
    assert stats.skipped >= 1 and stats.tiles == 13 * 8  # window rows x columns (stride 24)


def test_input_nodata_value_outside_the_class_ids_is_kept(tmp_path: Path) -> None:
    pixels = np.full((3, 40, 40), 100, dtype=np.uint8)
    pixels[:, :10] = 200
    src = write_geotiff(tmp_path / "s.tif", pixels, nodata=200)
    predict_segmentation(FakeSegmentationModel(), src, tmp_path / "c.tif")
    with rasterio.open(tmp_path / "c.tif") as c:
        assert c.nodata == 200 and (c.read(1)[:10] == 200).all() and (c.read(1)[10:] == 0).all()


def _constant(values: list[float]) -> object:
    def fn(images: Tensor) -> Tensor:
        b, _, h, w = images.shape
        return torch.tensor(values).view(1, -1, 1, 1).expand(b, -1, h, w).clone()

    return fn


@pytest.mark.parametrize("blend", ["triangular", "hann"])
def test_constant_model_gives_exactly_that_constant(tmp_path: Path, blend: str) -> None:
    """Weights are normalised: powers of two come back bit-exact, others within float32 rounding."""
    rng = np.random.default_rng(1)
    src = write_geotiff(tmp_path / "s.tif", rng.integers(0, 256, (3, 90, 110), dtype=np.uint8))
    for values in ([0.5, 0.25, 0.125, 0.125], [0.3, 0.7]):
        model = FakeSegmentationModel(fn=_constant(values), class_names=("a", "b", "c", "d")[
            : len(values)])  # fmt: skip
        predict_segmentation(model, src, tmp_path / "c.tif", probabilities_path=tmp_path / "p.tif",
                             overlap=13, blend=blend)  # fmt: skip
        with rasterio.open(tmp_path / "p.tif") as p, rasterio.open(tmp_path / "c.tif") as c:
            probs, classes = p.read(), c.read(1)
        expected = np.array(values, dtype=np.float32)[:, None, None]
        if values[0] == 0.5:
            np.testing.assert_array_equal(probs, np.broadcast_to(expected, probs.shape))
        else:
            np.testing.assert_allclose(probs, np.broadcast_to(expected, probs.shape), rtol=5e-7)
        assert (classes == int(np.argmax(values))).all()


def _window_mean(images: Tensor) -> Tensor:
    """Each window predicts one value: its mean brightness (differs between windows)."""
    p = images.mean(dim=(1, 2, 3)).view(-1, 1, 1, 1).expand(-1, 1, *images.shape[-2:])
    return torch.cat([1 - p, p], dim=1)


def _max_column_step(tmp_path: Path, blend: str) -> float:
    ramp = np.tile(np.linspace(0, 255, 160), (3, 32, 1)).astype(np.uint8)  # brightness grows in x
    src = write_geotiff(tmp_path / f"ramp_{blend}.tif", ramp)
    proba = tmp_path / f"p_{blend}.tif"
    predict_segmentation(FakeSegmentationModel(fn=_window_mean), src, tmp_path / f"c_{blend}.tif",
                         probabilities_path=proba, overlap=16, blend=blend)  # fmt: skip
    with rasterio.open(proba) as p:
        row = p.read(2)[0].astype(np.float64)
    return float(np.abs(np.diff(row)).max())


def test_weighted_blending_removes_the_seams_of_plain_averaging(tmp_path: Path) -> None:
    """Windows disagree by ~0.1; plain averaging jumps by half of that where a window starts."""
    uniform = _max_column_step(tmp_path, "uniform")
    triangular = _max_column_step(tmp_path, "triangular")
    assert uniform > 0.04  # a visible seam: half the window-to-window difference at once
    assert triangular < uniform / 5


def test_reads_are_bounded_windows_never_the_whole_raster(
    scene: tuple[Path, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[tuple[int, int, int, int]] = []
    original = GeoTiffSource.read

    def spy(self: GeoTiffSource, row: int, col: int, height: int, width: int) -> tuple:
        reads.append((row, col, height, width))
        return original(self, row, col, height, width)

    monkeypatch.setattr(GeoTiffSource, "read", spy)
    src, _ = scene
    tile, overlap, batch = 32, 8, 3
    predict_segmentation(FakeSegmentationModel(tile_size=tile), src, tmp_path / "c.tif",
                         overlap=overlap, batch_size=batch)  # fmt: skip
    assert len(reads) > 20
    for _, _, height, width in reads:
        assert height <= tile and width <= (batch - 1) * (tile - overlap) + tile
    covered = np.zeros((H, W), dtype=bool)
    for row, col, height, width in reads:
        covered[row : row + height, col : col + width] = True
    assert covered.all()


def test_scene_smaller_than_a_window_is_padded_and_cropped(tmp_path: Path) -> None:
    pixels = np.random.default_rng(2).integers(1, 256, (3, 20, 50), dtype=np.uint8)
    src = write_geotiff(tmp_path / "small.tif", pixels)
    model = FakeSegmentationModel(tile_size=32)
    predict_segmentation(model, src, tmp_path / "c.tif", probabilities_path=tmp_path / "p.tif")
    with rasterio.open(tmp_path / "p.tif") as p:
        got = p.read(2)
    assert got.shape == (20, 50) and {s[2:] for s in model.calls} == {(32, 32)}
    np.testing.assert_allclose(got, (pixels / 255).mean(axis=0), atol=2e-6)


def test_alpha_band_is_the_mask_not_model_input_and_progress_reaches_the_total(
    tmp_path: Path,
) -> None:
    from rasterio.enums import ColorInterp

    pixels = np.full((4, 50, 60), 200, dtype=np.uint8)
    pixels[3] = 255
    pixels[3, 20:30, 10:25] = 0  # transparent
    src = tmp_path / "rgba.tif"
    write_geotiff(src, pixels)
    with rasterio.open(src, "r+") as ds:
        ds.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    seen: list[tuple[int, int]] = []
    predict_segmentation(FakeSegmentationModel(), src, tmp_path / "c.tif",
                         progress=lambda done, total: seen.append((done, total)))  # fmt: skip
    with rasterio.open(tmp_path / "c.tif") as c:
        classes = c.read(1)
    assert (classes[20:30, 10:25] == 255).all() and (classes == 255).sum() == 10 * 15
    assert (classes[classes != 255] == 1).all()
    assert seen[-1][0] == seen[-1][1] == 2 * 3 and [d for d, _ in seen] == sorted(
        d for d, _ in seen
    )
