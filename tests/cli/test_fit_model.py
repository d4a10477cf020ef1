"""`fit` trains the model object users keep: RUN/model loads and predicts like `test` scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fixtures.eurosat import make as fx_eurosat
from satdifuser.cli.main import main
from satdifuser.data.eurosat import EuroSAT
from satdifuser.model import SatDiFuserModel

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def test_fit_saves_a_model_that_predicts_what_test_scores(tmp_path: Path) -> None:
    root = fx_eurosat.make(tmp_path / "eurosat")
    run, cache = tmp_path / "run", tmp_path / "cache"
    common = ["--data.init_args.root", str(root), "--cache-dir", str(cache)]  # either spelling
    fast = ["--model.init_args.extractor.init_args.pool", "2",
            "--model.init_args.standardize", "true"]  # fmt: skip
    assert main(["fit", "--config", str(CONF / "eurosat_tiny_pixel.yaml"), *common, *fast,
                 "--trainer.default_root_dir", str(run)]) == 0  # fmt: skip
    # one content-addressed folder per split, pooled maps: a tiny cache
    folders = sorted(p.name for p in cache.iterdir() if p.is_dir())
    assert [f.split("-")[0] for f in folders] == ["train", "val"]
    assert main(["test", "--config", str(run / "config.yaml"), *common]) == 0
    metrics = json.loads((run / "test" / "metrics.json").read_text())
    model = SatDiFuserModel.from_pretrained(run / "model")
    assert model.standardizer.is_fitted and model.feature_info[0].reduction == 16
    test = EuroSAT(root, split="test")
    images = torch.stack([test[i]["image"] for i in range(len(test))])
    labels = torch.tensor([int(test[i]["label"]) for i in range(len(test))])
    accuracy = float((model.predict(images) == labels).float().mean())
    assert accuracy == pytest.approx(metrics["metrics"]["overall_accuracy"], abs=1e-6)
