"""``satdifuser demo``: end to end on the tiny EuroSAT fixture, outputs, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fixtures.eurosat.make import make
from satdifuser.cli.main import main


@pytest.fixture(scope="module")
def eurosat_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make(tmp_path_factory.mktemp("eurosat"))


def _argv(root: Path, tmp: Path, *extra: str) -> list[str]:
    return [
        "demo", "--backbone", "tiny-pixel", "--data", str(root), "--budget", "2",
        "--epochs", "3", "--min-steps", "0", "--out", str(tmp / "out"),
        "--cache-dir", str(tmp / "cache"), "--no-progress", "--threads", "1", *extra,
    ]  # fmt: skip


def test_demo_writes_metrics_plots_and_prints_the_table(
    eurosat_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_argv(eurosat_root, tmp_path)) == 0
    out = capsys.readouterr().out
    assert "overall accuracy" in out and "macro F1" in out and "SeaLake" in out
    folder = tmp_path / "out"
    for name in ("metrics.json", "metrics.md", "fusion_weights.png", "confusion_matrix.png"):
        assert (folder / name).is_file() and str(folder / name) in out
    payload = json.loads((folder / "metrics.json").read_text())
    assert payload["train_images"] == 20 and payload["test_images"] == 10
    assert 0.0 <= payload["metrics"]["overall_accuracy"] <= 1.0
    assert set(payload["per_class"]["f1"]) == set(payload["class_names"])
    assert sum(map(sum, payload["confusion_matrix"])) == 10
    weights = payload["fusion_weights"]["weights"]  # GW: (timesteps, taps), sums to 1
    assert abs(sum(map(sum, weights)) - 1.0) < 1e-5
    # the demo saves the model it scored: loaded again, it predicts the reported accuracy
    from satdifuser.data.eurosat import EuroSAT
    from satdifuser.model import SatDiFuserModel

    model = SatDiFuserModel.from_pretrained(folder / "model")
    test = EuroSAT(eurosat_root, split="test")
    images = torch.stack([test[i]["image"] for i in range(len(test))])
    labels = torch.tensor([int(test[i]["label"]) for i in range(len(test))])
    accuracy = float((model.predict(images) == labels).float().mean())
    assert accuracy == pytest.approx(payload["metrics"]["overall_accuracy"], abs=1e-6)
    # the second run reuses the feature cache: no new cache folders
    before = sorted((tmp_path / "cache").glob("*"))
    assert {p.name.split("-")[0] for p in before} == {"train", "val", "test"}
    assert main(_argv(eurosat_root, tmp_path)) == 0
    assert sorted((tmp_path / "cache").glob("*")) == before


def test_missing_data_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "nothing"
    empty.mkdir()
    assert main(_argv(empty, tmp_path, "--no-download")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "DatasetNotFoundError" in err
    assert not (tmp_path / "out").exists()


def test_bad_options_are_one_line_errors(
    eurosat_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_argv(eurosat_root, tmp_path, "--timesteps", "ten")) == 2
    assert "--timesteps 'ten' must be comma-separated integers" in capsys.readouterr().err
    argv = _argv(eurosat_root, tmp_path)
    argv[argv.index("tiny-pixel")] = "tiny-pixle"
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "did you mean 'tiny-pixel'" in err
