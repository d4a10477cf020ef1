"""Tests of the compute record of `satdifuser pretrain` (measured CPU time) and `--weights`."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tests.fixtures.cli import cli_error
from tests.tasks.test_pretrain import TINY, _images

from satdifuser.cli.main import main
from satdifuser.pretrain import PretrainConfig, PretrainTrainer, RunOptions, export_pipeline
from satdifuser.pretrain.checkpoint import MANIFEST, latest_checkpoint, load_checkpoint
from satdifuser.pretrain.warm_start import read_export

CPU_TICK = 100.0  # the fake CPU clock below runs this many seconds ahead at each reading


@pytest.fixture
def cpu_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """``time.process_time`` advanced by CPU_TICK per call: a CPU figure far above the wall
    time of a tiny run, so the tests tell it from wall seconds and from 0."""
    real, calls = time.process_time, itertools.count()
    monkeypatch.setattr(time, "process_time", lambda: real() + CPU_TICK * next(calls))


def _train(run_dir: Path, steps: int, init_from=None) -> PretrainTrainer:
    config = init_from.config if init_from is not None else PretrainConfig.from_dict(TINY)
    options = RunOptions(progress=False, sample_every=0, steps=steps)
    trainer = PretrainTrainer(run_dir, config, _images(), options, init_from=init_from)
    trainer.run()
    return trainer


def _export(run_dir: Path, out: Path, **kwargs) -> tuple[dict, str]:
    export_pipeline(run_dir, out, sample_images=1, sample_steps=1, **kwargs)
    return json.loads((out / "training.json").read_text()), (out / "README.md").read_text()


def _totals(run_dir: Path) -> dict:
    return load_checkpoint(latest_checkpoint(run_dir))["state"]["totals"]


def test_cpu_seconds_accumulate_across_resume_into_the_export(tmp_path: Path, cpu_clock) -> None:
    run = tmp_path / "run"
    _train(run, 2)
    _train(run, 2)  # resumed: one save per invocation (ckpt_every 100)
    totals = _totals(run)
    [hw] = totals["wall_seconds"]
    first, second = totals["runs"]
    for entry in (first, second):
        assert CPU_TICK <= entry["cpu_seconds"] < CPU_TICK + 60
        assert 0 < entry["wall_seconds"] < CPU_TICK
    assert totals["cpu_seconds"] == {
        hw: pytest.approx(first["cpu_seconds"] + second["cpu_seconds"])
    }
    assert totals["wall_seconds"][hw] == pytest.approx(
        first["wall_seconds"] + second["wall_seconds"]
    )

    info, card = _export(run, tmp_path / "export")
    cpu = totals["cpu_seconds"][hw]
    assert info["cpu_seconds"] == {hw: cpu} and info["total_cpu_seconds"] == cpu
    assert info["cpu_unrecorded_wall_seconds"] == {}
    assert info["total_cpu_unrecorded_wall_seconds"] == 0
    assert info["total_wall_seconds"] == pytest.approx(totals["wall_seconds"][hw])
    wall_min = totals["wall_seconds"][hw] / 60
    assert "| hardware | wall minutes | CPU-hours (measured) |" in card
    assert f"| {hw} | {wall_min:.1f} | {cpu / 3600:.2f} |" in card
    assert f"Total: {wall_min:.1f} wall minutes; {cpu / 3600:.2f} CPU-hours measured." in card


def _strip_cpu_record(run_dir: Path) -> None:
    """Rewrite the checkpoint as written before CPU time was recorded (manifest kept valid)."""
    folder = latest_checkpoint(run_dir)
    state = json.loads((folder / "state.json").read_text())
    del state["totals"]["cpu_seconds"]
    for entry in state["totals"]["runs"]:
        del entry["cpu_seconds"], entry["wall_seconds"]
    (folder / "state.json").write_text(json.dumps(state, indent=1))
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["files"]["state.json"] = (folder / "state.json").stat().st_size
    (folder / MANIFEST).write_text(json.dumps(manifest))


def test_old_checkpoint_without_cpu_time_says_not_recorded(tmp_path: Path, cpu_clock) -> None:
    run = tmp_path / "run"
    _train(run, 2)
    _strip_cpu_record(run)
    old_wall = _totals(run)["wall_seconds"]
    [hw] = old_wall
    info, card = _export(run, tmp_path / "old")
    assert info["cpu_seconds"] == {} and info["total_cpu_seconds"] is None
    assert info["cpu_unrecorded_wall_seconds"] == old_wall
    assert f"| {hw} | {old_wall[hw] / 60:.1f} | not recorded |" in card
    assert "wall minutes; CPU time not recorded." in card

    trainer = _train(run, 2)  # resumes the old-format checkpoint
    assert trainer.resumed and trainer.step == 4
    totals = _totals(run)
    assert "cpu_seconds" not in totals["runs"][0]  # unknown, not 0
    assert totals["cpu_seconds"] == {hw: totals["runs"][1]["cpu_seconds"]}
    info, card = _export(run, tmp_path / "new")
    cpu = totals["cpu_seconds"][hw]
    assert info["cpu_seconds"] == {hw: cpu} and info["total_cpu_seconds"] == cpu
    assert info["cpu_unrecorded_wall_seconds"] == {hw: pytest.approx(old_wall[hw], abs=2e-3)}
    gap = f"{old_wall[hw] / 60:.1f}"
    assert f"| {cpu / 3600:.2f} ({gap} wall min not recorded) |" in card
    assert f"{cpu / 3600:.2f} CPU-hours measured ({gap} wall minutes not recorded)." in card


def test_warm_start_carries_the_measured_cpu_time(tmp_path: Path, cpu_clock) -> None:
    _train(tmp_path / "a", 2)
    before, _ = _export(tmp_path / "a", tmp_path / "export")
    [hw] = before["cpu_seconds"]
    _train(tmp_path / "b", 1, init_from=read_export(tmp_path / "export"))
    totals = _totals(tmp_path / "b")
    added = totals["runs"][1]["cpu_seconds"]
    assert added >= CPU_TICK
    assert totals["cpu_seconds"][hw] == pytest.approx(before["cpu_seconds"][hw] + added)
    after, _ = _export(tmp_path / "b", tmp_path / "export2")
    assert after["cpu_unrecorded_wall_seconds"] == {}
    assert after["total_cpu_seconds"] == pytest.approx(before["total_cpu_seconds"] + added)


def test_export_raw_weights(tmp_path: Path) -> None:
    run, raw, ema = tmp_path / "run", tmp_path / "raw", tmp_path / "ema"
    _train(run, 4)
    ck = load_checkpoint(latest_checkpoint(run))
    opts = ["--sample-images", "1", "--sample-steps", "1"]
    assert (
        main(["pretrain", "--export", str(run), "--to", str(raw), "--weights", "raw", *opts]) == 0
    )
    assert main(["pretrain", "--export", str(run), "--to", str(ema), *opts]) == 0
    name = "unet/diffusion_pytorch_model.safetensors"
    stored_raw, stored_ema = load_file(raw / name), load_file(ema / name)
    assert stored_raw.keys() == ck["model"].keys()
    for k, v in stored_raw.items():
        assert torch.equal(v, ck["model"][k].half()), k
        assert torch.equal(stored_ema[k], ck["ema"][k].half()), k
    assert any(not torch.equal(stored_raw[k], stored_ema[k]) for k in stored_raw)
    assert json.loads((raw / "training.json").read_text())["weights"] == "raw"
    assert json.loads((ema / "training.json").read_text())["weights"] == "ema"
    assert "Weights here: the raw (non-EMA) weights" in (raw / "README.md").read_text()
    assert "Weights here: the EMA weights" in (ema / "README.md").read_text()


def test_weights_needs_export(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    argv = ["pretrain", "--out", str(run), "--steps", "1", "--weights", "raw"]
    assert cli_error(argv, capsys).endswith(
        "ConfigError: --weights is only used with --export RUN_DIR; add --export or drop --weights"
    )
    assert not run.exists()
    bad = ["pretrain", "--export", str(run), "--to", str(tmp_path / "x"), "--weights", "last"]
    assert "invalid choice: 'last'" in cli_error(bad, capsys)


def test_export_prints_no_spurious_fp32_cast_warning(tmp_path: Path, capfd) -> None:
    run = tmp_path / "run"
    _train(run, 1)
    capfd.readouterr()
    argv = ["pretrain", "--export", str(run), "--to", str(tmp_path / "e")]
    assert main([*argv, "--sample-images", "1", "--sample-steps", "1"]) == 0
    out, err = capfd.readouterr()
    assert "should be kept in float32" not in out + err
    stored = load_file(tmp_path / "e" / "unet/diffusion_pytorch_model.safetensors")
    assert {v.dtype for v in stored.values()} == {torch.float16}
