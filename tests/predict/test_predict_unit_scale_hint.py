"""A model that takes [0, 1] (input spec kind='unit', or no spec) given uint16 (or out-of-range
float) files without ``--scale``: predict and embed refuse them with one line that names the
file, the values and the fix (``--scale``), and embed takes ``--scale`` as predict does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from predict_fakes import write_geotiff

from fixtures.cli import cli_error
from fixtures.tiny_model import tiny_model
from satdifuser.cli.main import main
from satdifuser.model.inputs import InputSpec

TILE = 16
UNIT = InputSpec(["red", "green", "blue"], "unit")


def _model(folder: Path, spec: InputSpec | None) -> Path:
    contract = {"spec": spec.to_config()} if spec is not None else {}
    return tiny_model("classification", TILE, input_contract=contract).save_pretrained(folder)


def _dn(top: float = 4000.0) -> np.ndarray:
    y, x = np.mgrid[0:TILE, 0:TILE]
    base = 0.5 + 0.5 * np.sin(x / 3.0) * np.cos(y / 5.0)
    return np.stack([base, 1 - base, (x + y) / (2 * TILE)]) * top


def _errors(folder: Path, src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    predict = cli_error(["predict", "--model", str(folder), str(src), "--out",
                         str(tmp_path / "p.csv"), "--no-progress"], capsys)  # fmt: skip
    embed = cli_error(["embed", "--model", str(folder), "--out", str(tmp_path / "e.parquet"),
                       "--no-progress", str(src)], capsys)  # fmt: skip
    assert predict == embed
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "e.parquet").exists()
    return predict


@pytest.mark.parametrize("spec", [UNIT, None], ids=["unit", "no-spec"])
def test_uint16_file_on_a_unit_model_names_scale_as_the_fix(
    tmp_path: Path, spec: InputSpec | None, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _model(tmp_path / "m", spec)
    raw = _dn().astype(np.uint16)
    src = write_geotiff(tmp_path / "s2.tif", raw)
    msg = _errors(folder, src, tmp_path, capsys)
    assert "InputError: " in msg and f"s2.tif: uint16 values up to {raw.max()}," in msg, msg
    assert "[0, 1]" in msg and "--scale 10000" in msg, msg


def test_out_of_range_float_file_on_a_unit_model_names_scale_as_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _model(tmp_path / "m", UNIT)
    src = write_geotiff(tmp_path / "f.tif", _dn().astype(np.float32))
    msg = _errors(folder, src, tmp_path, capsys)
    assert "f.tif: float pixels in [" in msg and "--scale 10000" in msg, msg


def test_embed_scale_maps_uint16_files_into_the_unit_range(tmp_path: Path) -> None:
    folder = _model(tmp_path / "m", UNIT)
    raw = _dn().astype(np.uint16)
    dn = write_geotiff(tmp_path / "dn.tif", raw)
    unit = write_geotiff(tmp_path / "unit.tif", (raw.astype(np.float32) / 10000))

    def embed(src: Path, out: Path, *extra: str) -> np.ndarray:
        assert main(["embed", "--model", str(folder), "--out", str(out), "--no-progress",
                     *extra, str(src)]) == 0  # fmt: skip
        return np.stack(pd.read_parquet(out)["embedding"].to_list())

    got = embed(dn, tmp_path / "a.parquet", "--scale", "10000")
    np.testing.assert_allclose(got, embed(unit, tmp_path / "b.parquet"), rtol=1e-5, atol=1e-6)


def test_embed_scale_without_a_model_and_files_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_geotiff(tmp_path / "s2.tif", _dn().astype(np.uint16))
    msg = cli_error(["embed", "--backbone", "tiny-pixel", "--scale", "10000", "--out",
                     str(tmp_path / "e.parquet"), "--no-progress", str(src)], capsys)  # fmt: skip
    assert "--scale" in msg and "--model DIR" in msg, msg
