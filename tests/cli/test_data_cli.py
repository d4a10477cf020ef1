from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.eurosat import make as fx_eurosat
from fixtures.geotiff import make as fx_geotiff
from satdifuser.cli.main import main


@pytest.fixture(scope="module")
def es(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fx_eurosat.make(tmp_path_factory.mktemp("cli")) / "eurosat_rgb"


def test_inspect_prints_summary_and_writes_grid(
    es: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "grid.png"
    assert main(["data", "inspect", str(es), "--out", str(out), "--samples", "5"]) == 0
    text = capsys.readouterr().out
    assert "eurosat (image class folders)" in text and "AnnualCrop 5" in text
    assert "train 20, val 10, test 10, unlabeled 10" in text and f"sample grid    {out}" in text
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_inspect_json_and_default_grid_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    gt = fx_geotiff.make_classes(tmp_path / "ms")
    monkeypatch.chdir(tmp_path)
    assert main(["data", "inspect", str(gt), "--json", "--samples", "3"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"].startswith("geotiff_folder") and doc["task_type"] == "classification"
    assert doc["grid"] == str(tmp_path / "ms_samples.png") and Path(doc["grid"]).is_file()


def test_unknown_layout_fails_with_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "data" / "misc").mkdir(parents=True)
    (tmp_path / "data" / "notes.txt").write_text("x")
    out = tmp_path / "g.png"
    assert main(["data", "inspect", str(tmp_path / "data"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "DataFormatError: cannot tell the dataset layout" in err
    assert not out.exists()


def test_bad_options_exit_2(es: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "inspect", str(es), "--out", str(tmp_path / "g.jpg")]) == 2
    assert "must end in .png" in capsys.readouterr().err and not (tmp_path / "g.jpg").exists()
    assert main(["data", "inspect", str(es), "--samples", "0", "--no-grid"]) == 2
    assert "samples=0 must be between 1 and 256" in capsys.readouterr().err
    assert main(["data"]) == 2
    assert "required" in capsys.readouterr().err
    assert main(["data", "inspect", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_inspect_real_eurosat_and_dubai(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, n, want in [
        ("eurosat_rgb", "8", "unlabeled 22000"),
        ("dubai_aerial", "2", "tile_8 9"),
    ]:
        out = tmp_path / f"{name}.png"
        assert (
            main(["data", "inspect", str(shared_data / name), "--out", str(out), "--samples", n])
            == 0
        )
        assert want in capsys.readouterr().out and out.stat().st_size > 1000


def test_inspect_json_geobench_keys_bands_and_classes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fixtures.geobench import make as fx_geobench

    fx = fx_geobench.make_task(tmp_path, "m-chesapeake", n=(2, 1, 1))
    assert main(["data", "inspect", str(fx.task_dir), "--json", "--no-grid", "--samples", "2"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert all(k.replace("_", "").isalpha() and k.islower() for k in doc), list(doc)
    assert doc["num_classes"] == 7 and list(doc["classes"])[:2] == ["no data", "water"]
    assert "NearInfrared" in doc["bands"] and "NearInfrared" in doc["band_values"]
