"""``bench probe_speed``: the reference side recomputes per batch, ours runs the library task path;
the report holds both sides' wall/CPU seconds and the measured speed-up (no timing asserts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from satdifuser.bench.probe_speed import run
from satdifuser.errors import ConfigError


@pytest.fixture
def one_thread():  # tiny ops on a shared 2-core machine are faster without OpenMP waits
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _argv(tmp_path: Path, *extra: str) -> list[str]:
    return ["--backbone", "tiny-pixel", "--train-images", "2", "--val-images", "1",
            "--epochs", "2", "--batch-size", "2", "--projection-dim", "16",
            "--bottleneck-dim", "8", "--root", str(tmp_path / "absent"), "--threads", "1",
            "--cache-dir", str(tmp_path), "--run-dir", str(tmp_path / "run"),
            "--out", str(tmp_path / "r.json"), *extra]  # fmt: skip


@pytest.mark.filterwarnings("ignore:EuroSAT unavailable")
def test_probe_speed_measures_both_whole_probes_through_the_task_path(
    tmp_path: Path, one_thread: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(_argv(tmp_path, "--full-train", "30", "--full-val", "20")) == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    c, r, o, w = rep["config"], rep["reference"], rep["ours"], rep["measured_whole_probe"]
    assert (c["train_images"], c["val_images"], c["epochs"], c["measured_epochs"]) == (2, 1, 2, 2)
    assert c["pool"] == 4 and c["images"] == "random" and c["recipe"]["standardize"] is True
    assert {"cpu", "load_average_start", "load_average_end"} <= set(rep["machine"])
    # both sides timed end to end, the speed-up is their ratio
    assert r["wall_s"] == pytest.approx(r["train_s"] + r["val_s"]) and r["cpu_s"] > 0
    assert o["wall_s"] == pytest.approx(o["extract_s"] + o["fit_s"]) and o["cpu_s"] > 0
    assert w["ref_s"] == r["wall_s"] and w["ours_s"] == o["wall_s"]
    assert w["speedup"] == pytest.approx(r["wall_s"] / o["wall_s"])
    assert w["speedup_cpu"] == pytest.approx(r["cpu_s"] / o["cpu_s"])
    assert rep["estimated_whole_probe"] is None
    # ours went through fit_and_test: best epoch kept, model saved in the run folder
    run_dir = tmp_path / "run"
    assert o["run_dir"] == str(run_dir) and (run_dir / "best.json").is_file()
    assert o["model_dir"] == str(run_dir / "model") and any((run_dir / "model").iterdir())
    assert o["cache_bytes"] > 0 and not list(tmp_path.glob("probe-cache-*"))  # fresh, removed
    x = rep["extrapolated"]
    assert (x["train_images"], x["val_images"]) == (30, 20)
    assert x["ref_s"] == pytest.approx(2 * (30 * r["train_s"] / 4 + 20 * r["val_s"] / 2))
    text = capsys.readouterr().out
    assert "ESTIMATE for 2 epochs" in text and "MEASURED whole 2-epoch probe" in text
    assert "EXTRAPOLATED (not measured" in text


@pytest.mark.filterwarnings("ignore:EuroSAT unavailable")
def test_fewer_measured_epochs_are_labelled_estimates(tmp_path: Path, one_thread: None) -> None:
    assert run(_argv(tmp_path, "--measure-epochs", "1", "--pool", "0")) == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["measured_whole_probe"] is None and rep["extrapolated"] is None
    e, r, o = rep["estimated_whole_probe"], rep["reference"], rep["ours"]
    assert (e["epochs"], e["from_epochs"], rep["config"]["pool"]) == (2, 1, 0)
    assert e["ref_s"] == pytest.approx(2 * r["wall_s"])
    assert e["ours_s"] == pytest.approx(o["extract_s"] + 2 * o["fit_s"])


def test_bad_options_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--measure-epochs 3 exceeds --epochs 2"):
        run(_argv(tmp_path, "--measure-epochs", "3"))
    with pytest.raises(ConfigError, match="--train-images 0"):
        run(_argv(tmp_path, "--train-images", "0"))
    assert not (tmp_path / "r.json").exists()


@pytest.mark.filterwarnings("ignore:EuroSAT unavailable")
def test_missing_cache_and_out_folders_are_created_before_anything_runs(
    tmp_path: Path, one_thread: None
) -> None:
    argv = _argv(tmp_path)
    argv[argv.index("--cache-dir") + 1] = str(tmp_path / "new" / "cache")
    argv[argv.index("--out") + 1] = str(tmp_path / "reports" / "r.json")
    assert run(argv) == 0
    assert (tmp_path / "reports" / "r.json").is_file() and (tmp_path / "new" / "cache").is_dir()


def test_a_cache_dir_that_is_a_file_is_refused_before_the_probe(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    argv = _argv(tmp_path)
    argv[argv.index("--cache-dir") + 1] = str(tmp_path / "file" / "cache")
    with pytest.raises(ConfigError, match=r"--cache-dir=.*/file is a file, not a folder"):
        run(argv)
    assert not (tmp_path / "run").exists() and not (tmp_path / "r.json").exists()
