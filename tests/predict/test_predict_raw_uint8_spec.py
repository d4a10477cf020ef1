"""A model whose input spec says kind='raw' without a scale (8-bit input, divided by 255) takes
uint8 files through ``satdifuser predict`` and ``satdifuser embed`` exactly as ``model.predict``
takes the uint8 tensor; other dtypes stay one clear error."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
from PIL import Image
from predict_fakes import write_geotiff

from fixtures.cli import cli_error
from fixtures.tiny_model import tiny_model
from satdifuser.cli.main import main
from satdifuser.model import SatDiFuserModel
from satdifuser.model.inputs import InputSpec
from satdifuser.model.resample import resampled_size, resize_images

TILE = 16
SPEC = InputSpec(["red", "green", "blue"], "raw")  # scale None: uint8 / 255


def _model(folder: Path, task: str = "classification", resample: float = 1.0) -> Path:
    model = tiny_model(task, TILE, jitter=0.5, resample=resample,
                       input_contract={"spec": SPEC.to_config()})  # fmt: skip
    return model.save_pretrained(folder)


def _pixels(size: int, seed: int = 0) -> np.ndarray:
    """(3, size, size) uint8 with structure (so resizing changes them) over the full range."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    base = 127 + 120 * np.sin(x / 3.0) * np.cos(y / 5.0)
    px = np.stack([base, 255 - base, rng.integers(0, 256, (size, size))])
    return np.clip(px, 0, 255).astype(np.uint8)


def _file(tmp_path: Path, pixels: np.ndarray, suffix: str) -> Path:
    if suffix == "png":
        path = tmp_path / "x.png"
        Image.fromarray(np.moveaxis(pixels, 0, -1)).save(path)
        return path
    return write_geotiff(tmp_path / "x.tif", pixels)


@pytest.mark.parametrize("suffix", ["png", "tif"])
@pytest.mark.parametrize("resample", [1.0, 0.5])
def test_predict_classifies_uint8_files_like_model_predict_on_the_uint8_tensor(
    tmp_path: Path, suffix: str, resample: float
) -> None:
    folder = _model(tmp_path / "m", resample=resample)
    pixels = _pixels(24)
    src = _file(tmp_path, pixels, suffix)
    out = tmp_path / "p.csv"
    assert main(["predict", "--model", str(folder), str(src), "--out", str(out),
                 "--no-progress"]) == 0  # fmt: skip
    with out.open() as f:
        row = next(csv.DictReader(f))
    got = np.array([float(row[f"prob_{c}"]) for c in "abc"])
    model = SatDiFuserModel.from_pretrained(folder)
    want = model.predict_proba(torch.from_numpy(pixels)[None])[0].numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert row["predicted"] == "abc"[int(want.argmax())]


@pytest.mark.parametrize("suffix", ["png", "tif"])
@pytest.mark.parametrize("resample", [1.0, 0.5])
def test_predict_segments_uint8_files_like_model_predict_on_the_uint8_tensor(
    tmp_path: Path, suffix: str, resample: float
) -> None:
    folder = _model(tmp_path / "m", "segmentation", resample=resample)
    size = round(TILE / resample)  # one native window: no blending with neighbours
    pixels = _pixels(size)
    src = _file(tmp_path, pixels, suffix)
    model = SatDiFuserModel.from_pretrained(folder)
    want = model.predict(torch.from_numpy(pixels)[None])[0].numpy()
    if suffix == "png":
        out = tmp_path / "c.png"
        assert main(["predict", "--model", str(folder), str(src), "--out", str(out),
                     "--no-progress"]) == 0  # fmt: skip
        got = np.asarray(Image.open(out))
    else:
        out = tmp_path / "c.tif"
        assert main(["predict", "--model", str(folder), str(src), "--out", str(out),
                     "--probabilities", "--no-progress"]) == 0  # fmt: skip
        with rasterio.open(out) as c, rasterio.open(tmp_path / "c_proba.tif") as p:
            got, probs = c.read(1), p.read()
        proba = model.predict_proba(torch.from_numpy(pixels)[None])[0].numpy()
        np.testing.assert_allclose(probs, proba, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("suffix", ["png", "tif"])
@pytest.mark.parametrize("resample", [1.0, 0.5])
def test_embed_takes_uint8_files_as_model_forward_takes_the_uint8_tensor(
    tmp_path: Path, suffix: str, resample: float
) -> None:
    folder = _model(tmp_path / "m", resample=resample)
    size = round(TILE / resample)  # the native size embed reads (no resize when reading)
    pixels = _pixels(size)
    src = _file(tmp_path, pixels, suffix)
    out = tmp_path / "e.parquet"
    assert main(["embed", "--model", str(folder), "--out", str(out), "--no-progress",
                 str(src)]) == 0  # fmt: skip
    got = np.stack(pd.read_parquet(out)["embedding"].to_list())
    model = SatDiFuserModel.from_pretrained(folder)
    x = torch.from_numpy(pixels)[None]
    x = resize_images(x, resampled_size(size, size, resample))  # uint8 stays uint8, as in predict
    with torch.no_grad():
        maps = list(model.fusion(model.standardizer(list(model.extractor(model.adapt_input(x))))))
    want = torch.cat([m.float().mean(dim=(2, 3)) for m in maps], dim=1).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_a_uint16_file_is_one_clear_error_in_predict_and_embed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _model(tmp_path / "m")
    src = write_geotiff(tmp_path / "x16.tif", _pixels(24).astype(np.uint16) * 16)
    predict = cli_error(["predict", "--model", str(folder), str(src), "--out",
                      str(tmp_path / "p.csv"), "--no-progress"], capsys)  # fmt: skip
    embed = cli_error(["embed", "--model", str(folder), "--out", str(tmp_path / "e.parquet"),
                    "--no-progress", str(src)], capsys)  # fmt: skip
    assert predict == embed
    assert "x16.tif" in predict and "uint16" in predict and "scale" in predict
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "e.parquet").exists()
