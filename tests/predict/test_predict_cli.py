"""``satdifuser predict`` on the command line (the model loader is replaced by a fake)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from predict_fakes import FakeClassifier, FakeSegmentationModel, write_geotiff

import satdifuser.cli.predict as cli_predict
from satdifuser.cli.main import main


def _use(model: object, monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    loaded: list[tuple] = []

    def load(path: Path, device: str | None = None) -> object:
        loaded.append((path, device))
        return model

    monkeypatch.setattr(cli_predict, "load_model", load)
    return loaded


def test_segmentation_cli_writes_geotiff_and_reports_tiles_per_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    loaded = _use(FakeSegmentationModel(), monkeypatch)
    src = write_geotiff(tmp_path / "s.tif", np.full((3, 70, 50), 200, dtype=np.uint8))
    args = ["--out", str(tmp_path / "o"), "--probabilities", "--overlap", "8", "--no-progress"]
    code = main(["predict", "--model", str(tmp_path / "m"), str(src), *args])
    out = capsys.readouterr().out
    assert code == 0 and loaded == [(tmp_path / "m", None)]
    assert "windows in" in out and "windows/s" in out and "Mpx/s" in out
    assert (tmp_path / "o" / "s.tif").is_file() and (tmp_path / "o" / "s_proba.tif").is_file()


def test_classification_cli_writes_the_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _use(FakeClassifier(), monkeypatch)
    Image.fromarray(np.full((8, 8, 3), (9, 9, 250), dtype=np.uint8)).save(tmp_path / "x.png")
    assert main(["predict", "--model", "m", str(tmp_path / "x.png"), "--out",
                 str(tmp_path / "p.csv"), "--no-progress"]) == 0  # fmt: skip
    with (tmp_path / "p.csv").open() as f:
        assert next(csv.DictReader(f))["predicted"] == "blue"


def test_band_count_error_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _use(FakeSegmentationModel(), monkeypatch)
    src = write_geotiff(tmp_path / "two.tif", np.ones((2, 40, 40), dtype=np.uint8))
    code = main(["predict", "--model", "m", str(src), "--out", str(tmp_path / "c.tif")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert err.startswith("satdifuser predict: error: InputError:") and "has 2 band(s)" in err


def test_predict_is_listed_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "predict" in capsys.readouterr().out


def test_real_tiny_model_from_a_saved_folder_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI loads a saved SatDiFuserModel and streams a scene through it."""
    import torch

    from satdifuser.backbones import create_backbone
    from satdifuser.features import FeatureExtractor
    from satdifuser.fusion import create_fusion
    from satdifuser.heads import create_head
    from satdifuser.model import SatDiFuserModel

    fx = FeatureExtractor(create_backbone("tiny-pixel", seed=0), timesteps=[10], image_size=32)
    fu = create_fusion("global_weighted", fx.feature_info, projection_dim=8, bottleneck_dim=4,
                       num_groups=2)  # fmt: skip
    head = create_head("upernet", fu.out_channels, 2, channels=8)
    model = SatDiFuserModel(fx, fu, head, "segmentation", ["land", "water"])
    folder = model.save_pretrained(tmp_path / "model")
    pixels = np.random.default_rng(0).integers(1, 256, (3, 50, 70), dtype=np.uint8)
    src = write_geotiff(tmp_path / "scene.tif", pixels)
    out = tmp_path / "classes.tif"
    assert main(["predict", "--model", str(folder), str(src), "--out", str(out),
                 "--no-progress"]) == 0  # fmt: skip
    import rasterio

    with rasterio.open(out) as c, rasterio.open(src) as s:
        assert c.transform == s.transform and set(np.unique(c.read(1))) <= {0, 1}
    assert torch.get_num_threads() >= 1 and "windows in" in capsys.readouterr().out
