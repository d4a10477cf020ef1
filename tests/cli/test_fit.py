"""`satdifuser fit|validate|test` end to end on tiny data and the tiny-pixel backbone."""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from safetensors import safe_open

from fixtures.eurosat import make as fx_eurosat
from fixtures.mask_folder import make as fx_mask
from satdifuser.cli.main import main
from satdifuser.fusion import GlobalWeightedFusion
from satdifuser.heads import LinearHead

CONF = Path(__file__).resolve().parents[1] / "conf"


def _load(path: str) -> object:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def eurosat_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fx_eurosat.make(tmp_path_factory.mktemp("eurosat"))


def fit_args(root: Path, run: Path, *extra: str) -> list[str]:
    return ["fit", "--config", str(CONF / "eurosat_tiny_pixel.yaml"),
            "--data.init_args.root", str(root), "--trainer.default_root_dir", str(run),
            *extra]  # fmt: skip


@pytest.fixture(scope="module")
def fitted(eurosat_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("runs") / "eurosat"
    start = time.process_time()
    assert main(fit_args(eurosat_root, run)) == 0
    return run, time.process_time() - start


def test_fit_then_test_writes_the_run_directory_in_under_60_s(fitted: tuple[Path, float]) -> None:
    # CPU seconds of this process (single-threaded): wall time on a shared machine says little.
    run, fit_seconds = fitted
    start = time.process_time()
    assert main(["test", "--config", str(run / "config.yaml")]) == 0
    seconds = fit_seconds + time.process_time() - start
    print(f"fit + test: {seconds:.1f} CPU s")
    assert seconds < 60
    for name in ("config.yaml", "env.json", "best.safetensors", "best.json",
                 "logs/fit/metrics.csv", "test/metrics.json", "test/metrics.md",
                 "test/config.yaml", "test/env.json"):  # fmt: skip
        assert (run / name).is_file(), name
    config = yaml.safe_load((run / "config.yaml").read_text())
    init = config["model"]["init_args"]
    assert _load(init["fusion"]["class_path"]) is GlobalWeightedFusion  # name -> class path
    assert init["fusion"]["init_args"]["projection_dim"] == 16 and init["fusion_args"] is None
    assert _load(init["head"]["class_path"]) is LinearHead
    with safe_open(str(run / "best.safetensors"), "pt") as fh:
        keys, meta = list(fh.keys()), fh.metadata()
    assert keys and all(k.startswith(("standardizer.", "fusion.", "head.")) for k in keys)
    assert "GlobalWeightedFusion" in meta["config"]  # the resolved config travels with it
    env = json.loads((run / "env.json").read_text())
    assert env["versions"]["torch"] == torch.__version__ and env["seed"] == 0
    assert "feature_spec_digest" in env
    metrics = json.loads((run / "test/metrics.json").read_text())
    m = metrics["metrics"]
    assert {"overall_accuracy", "f1_macro", "f1_satdifuser", "mean_accuracy", "loss"} <= set(m)
    assert all(0.0 <= m[k] <= 1.0 for k in m if k != "loss")
    assert sum(map(sum, metrics["confusion_matrix"])) == 10  # one test image per class
    assert len(metrics["per_class"]["f1"]) == 10
    assert metrics["checkpoint"]["checkpoint"].endswith("best.safetensors")
    assert "| `overall_accuracy` |" in (run / "test/metrics.md").read_text()
    for png in ("fusion_weights.png", "confusion_matrix.png"):
        with Image.open(run / "test" / png) as im:
            assert im.format == "PNG" and im.size[0] > 100


def test_validate_with_only_the_run_directory(fitted: tuple[Path, float]) -> None:
    run, _ = fitted
    assert main(["validate", "--ckpt_path", str(run)]) == 0
    metrics = json.loads((run / "validate/metrics.json").read_text())
    best = json.loads((run / "best.json").read_text())
    assert metrics["stage"] == "val"
    assert metrics["metrics"]["overall_accuracy"] == pytest.approx(best["score"], abs=1e-6)


def test_fit_refuses_a_finished_run_without_overwrite(
    fitted: tuple[Path, float], eurosat_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = fitted
    before = (run / "best.safetensors").read_bytes()
    assert main(fit_args(eurosat_root, run)) == 2
    assert "already holds best.safetensors" in capsys.readouterr().err
    assert (run / "best.safetensors").read_bytes() == before


def test_test_without_a_checkpoint_fails_clearly(
    eurosat_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = fit_args(eurosat_root, tmp_path / "empty")
    args[0] = "test"
    assert main(args) == 2
    assert "no best.safetensors in run directory" in capsys.readouterr().err
    assert not (tmp_path / "empty" / "test" / "metrics.json").exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["--model.init_args.num_classes", "7"],
         "num_classes=7 but data EuroSATDataModule has 10 classes"),
        (["--model.init_args.fusion", "global_weigted"], "unknown fusion 'global_weigted'"),
        (["--model.init_args.head", "linaer"], "unknown head 'linaer'"),
        (["--model.init_args.fusion_args", "{projection_dims: 4}"],
         "has 'projection_dims', which fusion 'global_weighted' does not take"),
    ],
)  # fmt: skip
def test_bad_config_exits_2_with_one_line(
    eurosat_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    override: list[str],
    message: str,
) -> None:
    assert main(fit_args(eurosat_root, tmp_path / "bad", *override)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and err[-1].startswith("satdifuser fit: error:")
    assert not (tmp_path / "bad" / "best.safetensors").exists()


def test_fit_without_config_names_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fit"]) == 2
    assert "needs --config run.yaml" in capsys.readouterr().err


def test_segmentation_fit_and_test_write_panels(tmp_path: Path) -> None:
    fx_mask.make_dubai(tmp_path)
    run = tmp_path / "run"
    args = ["--config", str(CONF / "dubai_tiny_pixel.yaml"), "--data.init_args.root",
            str(tmp_path), "--trainer.default_root_dir", str(run)]  # fmt: skip
    assert main(["fit", *args]) == 0
    assert main(["test", *args]) == 0
    metrics = json.loads((run / "test/metrics.json").read_text())
    assert {"miou", "overall_accuracy", "f1_macro"} <= set(metrics["metrics"])
    assert metrics["ignore_index"] == 255
    assert sum(map(sum, metrics["confusion_matrix"])) == 40 * 48 + 56 * 40 - 6  # whole images
    with Image.open(run / "test/segmentation_examples.png") as im:
        assert im.format == "PNG"


def test_fit_and_test_from_a_feature_cache(eurosat_root: Path, tmp_path: Path) -> None:
    run, cache = tmp_path / "run", tmp_path / "cache"
    args = fit_args(eurosat_root, run, "--cache_dir", str(cache), "--trainer.max_epochs", "1")
    assert main(args) == 0
    assert main(["test", "--config", str(run / "config.yaml")]) == 0
    assert {p.name.split("-", 1)[0] for p in cache.iterdir()} >= {"train", "val", "test"}
    metrics = json.loads((run / "test/metrics.json").read_text())
    assert sum(map(sum, metrics["confusion_matrix"])) == 10
    assert yaml.safe_load((run / "config.yaml").read_text())["cache_dir"] == str(cache)


def test_cache_dir_with_sliding_window_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fx_mask.make_dubai(tmp_path)
    args = ["fit", "--config", str(CONF / "dubai_tiny_pixel.yaml"), "--data.init_args.root",
            str(tmp_path), "--trainer.default_root_dir", str(tmp_path / "run"),
            "--cache_dir", str(tmp_path / "cache")]  # fmt: skip
    assert main(args) == 2
    assert "do not combine" in capsys.readouterr().err
