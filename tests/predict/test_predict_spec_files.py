"""Files given to ``satdifuser predict`` / ``embed`` on a model with an input spec hold raw values:
they reach the model as ``model.predict`` takes the tensor prepared by hand (z-scored for
kind='zscore', divided into [0, 1] for kind='unit'), and ``--scale`` never scales a second time:
it is the override for models that take [0, 1], one clear error where the spec scales by
another value."""

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

TILE = 16
MEAN, STD = (950.0, 1040.0, 1120.0), (600.0, 450.0, 500.0)
ZSCORE = InputSpec(["red", "green", "blue"], "zscore", scale=2750, mean=MEAN, std=STD)
RAW = InputSpec(["red", "green", "blue"], "raw", scale=10000)
RAW_U8 = InputSpec(["red", "green", "blue"], "raw")  # uint8 / 255
UNIT = InputSpec(["red", "green", "blue"], "unit")


def _model(folder: Path, spec: InputSpec, task: str = "classification") -> Path:
    model = tiny_model(task, TILE, jitter=0.5, input_contract={"spec": spec.to_config()})
    return model.save_pretrained(folder)


def _dn(size: int, top: float = 4000.0) -> np.ndarray:
    """(3, size, size) Sentinel-2-like DN in [0, top] with structure (different per band)."""
    y, x = np.mgrid[0:size, 0:size]
    base = 0.5 + 0.45 * np.sin(x / 3.0) * np.cos(y / 5.0)
    return np.stack([base, 1 - base, (x + y) / (2 * size)]) * top


def _zscored(raw: np.ndarray) -> torch.Tensor:
    """What a TorchGeo data module hands the model: (raw - mean) / std per band, (1, C, H, W)."""
    mean = np.asarray(MEAN, dtype=np.float32)[:, None, None]
    std = np.asarray(STD, dtype=np.float32)[:, None, None]
    return torch.from_numpy((raw.astype(np.float32) - mean) / std)[None]


def _predict_csv(folder: Path, src: Path, out: Path, *extra: str) -> np.ndarray:
    assert main(["predict", "--model", str(folder), str(src), "--out", str(out),
                 "--no-progress", *extra]) == 0  # fmt: skip
    with out.open() as f:
        row = next(csv.DictReader(f))
    return np.array([float(row[f"prob_{c}"]) for c in "abc"])


def _proba(folder: Path, x: torch.Tensor) -> np.ndarray:
    return SatDiFuserModel.from_pretrained(folder).predict_proba(x)[0].numpy()


# ------------------------------------------------------------------ kind='zscore'
@pytest.mark.parametrize("dtype", ["uint16", "float32"])
def test_predict_zscores_raw_file_values_like_a_data_module(tmp_path: Path, dtype: str) -> None:
    folder = _model(tmp_path / "m", ZSCORE)
    raw = _dn(24).astype(dtype)
    src = write_geotiff(tmp_path / "x.tif", raw)
    got = _predict_csv(folder, src, tmp_path / "p.csv")
    np.testing.assert_allclose(got, _proba(folder, _zscored(raw)), rtol=1e-4, atol=1e-5)


def test_predict_segments_a_raw_file_on_a_zscore_model_like_the_zscored_tensor(
    tmp_path: Path,
) -> None:
    folder = _model(tmp_path / "m", ZSCORE, "segmentation")
    raw = _dn(TILE).astype(np.uint16)  # one window: no blending with neighbours
    src = write_geotiff(tmp_path / "x.tif", raw)
    out = tmp_path / "c.tif"
    assert main(["predict", "--model", str(folder), str(src), "--out", str(out),
                 "--probabilities", "--no-progress"]) == 0  # fmt: skip
    with rasterio.open(tmp_path / "c_proba.tif") as p:
        probs = p.read()
    np.testing.assert_allclose(probs, _proba(folder, _zscored(raw)), rtol=1e-4, atol=1e-5)


def test_embed_zscores_raw_file_values_like_a_data_module(tmp_path: Path) -> None:
    folder = _model(tmp_path / "m", ZSCORE)
    raw = _dn(TILE).astype(np.uint16)
    src = write_geotiff(tmp_path / "x.tif", raw)
    out = tmp_path / "e.parquet"
    assert main(["embed", "--model", str(folder), "--out", str(out), "--no-progress",
                 str(src)]) == 0  # fmt: skip
    got = np.stack(pd.read_parquet(out)["embedding"].to_list())
    model = SatDiFuserModel.from_pretrained(folder)
    with torch.no_grad():
        rgb = model.adapt_input(_zscored(raw))
        maps = list(model.fusion(model.standardizer(list(model.extractor(rgb)))))
    want = torch.cat([m.float().mean(dim=(2, 3)) for m in maps], dim=1).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


# -------------------------------------------------------------------- kind='unit'
@pytest.mark.parametrize("suffix", ["png", "tif"])
def test_predict_divides_uint8_files_by_255_for_a_unit_model(tmp_path: Path, suffix: str) -> None:
    folder = _model(tmp_path / "m", UNIT)
    raw = _dn(24, top=255.0).astype(np.uint8)
    if suffix == "png":
        src = tmp_path / "x.png"
        Image.fromarray(np.moveaxis(raw, 0, -1)).save(src)
    else:
        src = write_geotiff(tmp_path / "x.tif", raw)
    got = _predict_csv(folder, src, tmp_path / "p.csv")
    want = _proba(folder, torch.from_numpy(raw.astype(np.float32) / 255)[None])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_scale_maps_a_uint16_file_into_the_unit_range_of_a_unit_model(tmp_path: Path) -> None:
    folder = _model(tmp_path / "m", UNIT)
    raw = _dn(24).astype(np.uint16)
    src = write_geotiff(tmp_path / "x.tif", raw)
    got = _predict_csv(folder, src, tmp_path / "p.csv", "--scale", "10000")
    want = _proba(folder, torch.from_numpy(raw.astype(np.float32) / 10000)[None])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------- --scale
@pytest.mark.parametrize(("spec", "scale"), [(RAW, "10000"), (ZSCORE, "2750")],
                         ids=["raw", "zscore"])  # fmt: skip
def test_scale_equal_to_the_spec_scale_changes_nothing(
    tmp_path: Path, spec: InputSpec, scale: str
) -> None:
    folder = _model(tmp_path / "m", spec)
    raw = _dn(24).astype(np.uint16)
    src = write_geotiff(tmp_path / "x.tif", raw)
    got = _predict_csv(folder, src, tmp_path / "p.csv", "--scale", scale)
    x = _zscored(raw) if spec.kind == "zscore" else torch.from_numpy(raw.astype(np.float32))[None]
    np.testing.assert_allclose(got, _proba(folder, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("spec", "scale", "named"),
    [(RAW, "4095", "10000"), (ZSCORE, "10000", "2750"), (RAW_U8, "255", "255")],
    ids=["raw", "zscore", "raw-uint8"],
)
def test_scale_other_than_the_spec_scale_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: InputSpec, scale: str, named: str
) -> None:
    folder = _model(tmp_path / "m", spec)
    raw = _dn(24, top=255.0).astype(np.uint8 if spec is RAW_U8 else np.uint16)
    src = write_geotiff(tmp_path / "x.tif", raw)
    out = tmp_path / "p.csv"
    msg = cli_error(["predict", "--model", str(folder), str(src), "--out", str(out),
                  "--no-progress", "--scale", scale], capsys)  # fmt: skip
    assert f"--scale {scale}" in msg and named in msg and spec.kind in msg, msg
    assert not out.exists()
