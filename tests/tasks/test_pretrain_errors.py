"""`satdifuser pretrain` failure modes: damaged checkpoints, bad options, signals, leftovers."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import struct
from pathlib import Path

import pytest
import torch
from tests.tasks.test_pretrain import TINY, _fake_root, _images

from satdifuser._atomic_io import tmp_name
from satdifuser.cli.main import main
from satdifuser.errors import CheckpointError, ConfigError
from satdifuser.pretrain import PretrainConfig, PretrainTrainer, RunOptions, export_pipeline
from satdifuser.pretrain.checkpoint import (
    MANIFEST,
    TMP_PREFIX,
    latest_checkpoint,
    load_checkpoint,
    read_tensors,
)
from satdifuser.pretrain.warm_start import WEIGHTS_FILE, read_export

FLAGS = ["--sample-size", "16", "--channels", "8,16", "--norm-groups", "4"]
FLAGS += ["--down-blocks", "DownBlock2D,AttnDownBlock2D", "--attention-head-dim", "8"]
FLAGS += ["--up-blocks", "AttnUpBlock2D,UpBlock2D", "--batch-size", "2", "--no-bf16"]
FLAGS += ["--no-progress", "--sample-every", "0"]


def _trainer(run_dir: Path, **opts) -> PretrainTrainer:
    options = RunOptions(progress=False, sample_every=0, **opts)
    return PretrainTrainer(run_dir, PretrainConfig.from_dict(TINY), _images(), options)


def _snapshot(run_dir: Path) -> dict[str, str]:
    return {
        str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run_dir.rglob("*"))
        if p.is_file()
    }


def _damage(path: Path, kind: str) -> None:
    data = path.read_bytes()
    if kind == "missing":
        path.unlink()
    elif kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "garbage":
        path.write_bytes(os.urandom(len(data)))
    elif kind == "huge_header":
        path.write_bytes(struct.pack("<Q", 2**62) + data[8:])
    elif kind == "empty":
        path.write_bytes(b"")


def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("satdifuser pretrain: error: "), err
    assert "Traceback" not in err
    return lines[0]


# ------------------------------------------------------------ damaged checkpoints (item 3, 15)
@pytest.mark.parametrize(
    ("name", "kind", "manifest", "match"),
    [
        ("rng.safetensors", "missing", True, r"incomplete \(missing rng\.safetensors\)"),
        ("rng.safetensors", "missing", False, r"incomplete \(missing rng\.safetensors\)"),
        ("model.safetensors", "truncated", True, r"model\.safetensors has \d+ bytes but the man"),
        ("model.safetensors", "truncated", False, r"model\.safetensors is not a readable"),
        ("ema.safetensors", "garbage", False, r"ema\.safetensors is not a readable"),
        ("optimizer.safetensors", "huge_header", False, r"optimizer\.safetensors is not a read"),
        ("state.json", "truncated", False, r"state\.json is not readable JSON"),
    ],
)
def test_damaged_checkpoint_stops_the_run_and_changes_nothing(
    tmp_path: Path, name: str, kind: str, manifest: bool, match: str
) -> None:
    _trainer(tmp_path, steps=2).run()
    folder = tmp_path / "checkpoint"
    if not manifest:  # as written by the code before manifests existed
        (folder / MANIFEST).unlink()
    _damage(folder / name, kind)
    before = _snapshot(tmp_path)
    with pytest.raises(CheckpointError, match=match):
        _trainer(tmp_path, steps=2).run()
    assert _snapshot(tmp_path) == before  # no restart at step 0 over the run


def test_damaged_checkpoint_is_one_cli_line_before_loading_data(tmp_path: Path, capsys) -> None:
    root = _fake_root(tmp_path / "data")
    argv = ["pretrain", "--out", str(tmp_path / "run"), "--data", str(root), *FLAGS]
    assert main([*argv, "--steps", "2"]) == 0
    (tmp_path / "run" / "checkpoint" / "rng.safetensors").unlink()
    before = _snapshot(tmp_path / "run")
    capsys.readouterr()
    assert main([*argv, "--steps", "2"]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "checkpoint" in line and "missing rng.safetensors" in line and "left untouched" in line
    assert _snapshot(tmp_path / "run") == before


def test_damaged_checkpoint_points_to_the_previous_complete_one(tmp_path: Path) -> None:
    _trainer(tmp_path, steps=2).run()
    shutil.copytree(tmp_path / "checkpoint", tmp_path / "checkpoint.old")
    (tmp_path / "checkpoint" / "ema.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"delete it to resume from the previous checkpoint"):
        latest_checkpoint(tmp_path)
    shutil.rmtree(tmp_path / "checkpoint")
    resumed = _trainer(tmp_path, steps=1)  # as the message says: resumes from checkpoint.old
    assert resumed.resumed and resumed.step == 2


def test_checkpoint_without_manifest_still_resumes_exactly(tmp_path: Path) -> None:
    """A checkpoint written by the code before manifests (all files present) loads as before."""
    _trainer(tmp_path / "old", steps=2).run()
    (tmp_path / "old" / "checkpoint" / MANIFEST).unlink()
    _trainer(tmp_path / "old", steps=2).run()
    _trainer(tmp_path / "whole", max_steps=4).run()
    a = load_checkpoint(latest_checkpoint(tmp_path / "old"))["model"]
    b = load_checkpoint(latest_checkpoint(tmp_path / "whole"))["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "old" / "checkpoint" / MANIFEST).is_file()  # new writes get one


def test_kill_between_renames_resumes_from_checkpoint_old(tmp_path: Path) -> None:
    _trainer(tmp_path, steps=2).run()
    (tmp_path / "checkpoint").rename(tmp_path / "checkpoint.old")
    resumed = _trainer(tmp_path, steps=1)
    assert resumed.resumed and resumed.step == 2


@pytest.mark.parametrize("kind", ["truncated", "garbage", "huge_header", "empty", "missing"])
def test_bad_safetensors_is_one_error_naming_the_file(tmp_path: Path, kind: str) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "weights.safetensors"
    save_file({"a": torch.zeros(64)}, str(path))
    _damage(path, kind)
    with pytest.raises(CheckpointError, match=re.escape(f"test file {path}")):
        read_tensors(path, "test file")


@pytest.mark.parametrize("kind", ["truncated", "huge_header"])
def test_export_and_init_from_refuse_damaged_weights_in_one_line(
    tmp_path: Path, kind: str, capsys
) -> None:
    _trainer(tmp_path / "run", steps=1).run()
    export_pipeline(tmp_path / "run", tmp_path / "export", sample_images=1, sample_steps=1)
    _damage(tmp_path / "export" / WEIGHTS_FILE, kind)
    with pytest.raises(CheckpointError, match=r"exported weights .*diffusion_pytorch_model"):
        read_export(tmp_path / "export")
    root = _fake_root(tmp_path / "data")
    out = tmp_path / "warm"
    argv = ["pretrain", "--out", str(out), "--data", str(root), "--init-from"]
    assert main([*argv, str(tmp_path / "export"), "--steps", "1"]) == 2
    assert "diffusion_pytorch_model.safetensors" in _one_line_error(capsys.readouterr().err)
    assert not out.exists()

    _damage(tmp_path / "run" / "checkpoint" / "ema.safetensors", kind)
    target = ["--to", str(tmp_path / "export2"), "--sample-images", "1", "--sample-steps", "1"]
    assert main(["pretrain", "--export", str(tmp_path / "run"), *target]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "ema.safetensors" in line
    assert not (tmp_path / "export2").exists()


def test_export_refuses_ema_of_another_model(tmp_path: Path) -> None:
    _trainer(tmp_path, steps=1).run()
    from safetensors.torch import save_file

    ema = load_checkpoint(latest_checkpoint(tmp_path))["ema"]
    key = next(iter(ema))
    ema[key] = torch.zeros(3)
    (tmp_path / "checkpoint" / MANIFEST).unlink()
    save_file(ema, str(tmp_path / "checkpoint" / "ema.safetensors"))
    with pytest.raises(CheckpointError, match=f"does not match the model.*{re.escape(key)}"):
        export_pipeline(tmp_path, tmp_path / "export", sample_images=1, sample_steps=1)


# ------------------------------------------------------------ options (items 7, 13, 17)
BAD_OPTIONS = [
    (["--steps", "-5"], r"--steps=-5 is invalid"),
    (["--steps", "0"], r"--steps=0 is invalid"),
    (["--steps", "abc"], r"argument --steps: invalid int value"),
    (["--max-steps", "0", "--steps", "1"], r"--max-steps=0 is invalid"),
    (["--max-minutes", "-1"], r"--max-minutes=-1.0 is invalid"),
    (["--steps", "1", "--threads", "-1"], r"--threads=-1 is invalid"),
    (["--steps", "1", "--threads", "0"], r"--threads=0 is invalid"),
    (["--steps", "1", "--device", "banana"], r"device='banana' is not a device name"),
    (["--steps", "1", "--ckpt-every", "-1"], r"--ckpt-every=-1 is invalid"),
    (["--steps", "1", "--sample-images", "0"], r"--sample-images=0 is invalid"),
    (["--steps", "1", "--attention-head-dim", "32"], r"below attention_head_dim=32"),
    (["--steps", "1", "--down-blocks", "DownBlock2D,NoSuchBlock2D"], r"NoSuchBlock2D"),
    (["--steps", "1", "--norm-groups", "0"], r"norm_num_groups=0 must be >= 1"),
    (["--steps", "1", "--timesteps", "0"], r"num_train_timesteps=0 must be >= 1"),
    (["--steps", "1", "--batch-size", "0"], r"batch_size=0"),
    (["--steps", "1", "--weight-decay", "-1"], r"weight_decay=-1.0"),
    (["--steps", "1", "--sample-every", "1", "--timesteps", "10"], r"--sample-steps=50 exceeds"),
    (["--steps", "1", "--to", "x"], r"--to is only used with --export"),
    (["--steps", "1", "--bogus"], r"unrecognized arguments: --bogus"),
]


@pytest.mark.parametrize(("extra", "match"), BAD_OPTIONS)
def test_bad_option_is_one_line_and_creates_nothing(
    tmp_path: Path, extra: list[str], match: str, capsys
) -> None:
    root = _fake_root(tmp_path / "data")
    out = tmp_path / "run"
    argv = ["pretrain", "--out", str(out), "--data", str(root), *FLAGS, *extra]
    assert main(argv) == 2
    assert re.search(match, _one_line_error(capsys.readouterr().err))
    assert not out.exists()


def test_missing_gpu_is_one_line(tmp_path: Path, capsys) -> None:
    if torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    argv = ["pretrain", "--out", str(tmp_path / "run"), "--steps", "1", "--device", "cuda:7"]
    assert main(argv) == 2
    assert "device='cuda:7' but this machine has" in _one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


def test_channels_below_head_size_refused_by_the_config() -> None:
    with pytest.raises(ConfigError, match=r"block_out_channels\[1\]=4 is below attention_head"):
        PretrainConfig.from_dict({**TINY, "block_out_channels": [4, 4], "attention_head_dim": 8})


# ------------------------------------------------------------ signals (item 7)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stopped_run_saves_and_exits_non_zero(
    tmp_path: Path, monkeypatch, capsys, signum: int
) -> None:
    root = _fake_root(tmp_path / "data")
    argv = ["pretrain", "--out", str(tmp_path / "run"), "--data", str(root), *FLAGS]
    real_step = PretrainTrainer.train_step

    def step_then_signal(self: PretrainTrainer) -> float:
        loss = real_step(self)
        if self.step == 2:
            os.kill(os.getpid(), signum)  # as `kill` or Ctrl-C would, in the middle of the run
        return loss

    monkeypatch.setattr(PretrainTrainer, "train_step", step_then_signal)
    assert main([*argv, "--steps", "5"]) == 128 + signum
    err = capsys.readouterr().err
    assert "rerun the same command to resume" in err
    assert load_checkpoint(latest_checkpoint(tmp_path / "run"))["state"]["step"] == 2
    monkeypatch.undo()
    assert main([*argv, "--steps", "1"]) == 0  # a run that reaches its stop condition exits 0
    assert load_checkpoint(latest_checkpoint(tmp_path / "run"))["state"]["step"] == 3


# ------------------------------------------------------------ leftovers (item 17)
def test_failed_first_run_leaves_nothing_behind(tmp_path: Path, monkeypatch) -> None:
    calls = {"n": 0}
    real_step = PretrainTrainer.train_step

    def failing_step(self: PretrainTrainer) -> float:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("out of memory")
        return real_step(self)

    monkeypatch.setattr(PretrainTrainer, "train_step", failing_step)
    with pytest.raises(RuntimeError, match="out of memory"):
        _trainer(tmp_path / "run", steps=3).run()
    assert not (tmp_path / "run").exists()
    # a folder that existed with other files keeps them; only this start's files go
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    calls["n"] = 0
    with pytest.raises(RuntimeError):
        _trainer(tmp_path / "mine", steps=3).run()
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]


def test_failed_resumed_run_keeps_its_files(tmp_path: Path, monkeypatch) -> None:
    _trainer(tmp_path, steps=1).run()

    def failing_step(self: PretrainTrainer) -> float:
        raise RuntimeError("boom")

    monkeypatch.setattr(PretrainTrainer, "train_step", failing_step)
    with pytest.raises(RuntimeError):
        _trainer(tmp_path, steps=1).run()
    assert (tmp_path / "config.json").is_file() and (tmp_path / "loss.csv").is_file()
    assert latest_checkpoint(tmp_path) is not None


def test_stale_checkpoint_tmp_folders_are_removed_on_start(tmp_path: Path) -> None:
    _trainer(tmp_path, steps=1).run()
    stale = tmp_path / f"{TMP_PREFIX}killed"
    stale.mkdir()  # what a SIGKILL during a checkpoint write leaves
    (stale / "model.safetensors").write_bytes(b"partial")
    trainer = _trainer(tmp_path, steps=1)
    assert not stale.exists()
    assert any("unfinished checkpoint write" in n for n in trainer.notes)


def test_leftovers_of_killed_file_writes_are_removed_on_start(tmp_path: Path) -> None:
    _trainer(tmp_path, steps=1).run()
    (tmp_path / "samples").mkdir(exist_ok=True)
    left = [
        tmp_name(tmp_path / "config.json"),
        tmp_name(tmp_path / "samples" / "latest.png"),
    ]
    for p in left:
        p.write_bytes(b"partial")  # what a SIGKILL during an atomic write leaves
    trainer = _trainer(tmp_path, steps=1)
    assert not any(p.exists() for p in left)
    assert (tmp_path / "config.json").is_file()
    assert any("2 unfinished file write(s)" in n for n in trainer.notes)


def test_start_without_checkpoint_drops_rows_of_the_lost_start(tmp_path: Path) -> None:
    """A run killed before its first checkpoint restarts at step 0 with a consistent log."""
    _trainer(tmp_path, steps=2).run()
    shutil.rmtree(tmp_path / "checkpoint")  # as if killed before the first checkpoint
    trainer = _trainer(tmp_path, steps=1)
    assert not trainer.resumed
    assert any("2 logged step(s)" in n for n in trainer.notes)
    trainer.run()
    rows = (tmp_path / "loss.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [1]


def test_stale_export_tmp_folders_are_removed(tmp_path: Path) -> None:
    _trainer(tmp_path / "run", steps=1).run()
    stale = tmp_path / ".export-tmp-killed"
    stale.mkdir()
    export_pipeline(tmp_path / "run", tmp_path / "export", sample_images=1, sample_steps=1)
    assert not stale.exists() and (tmp_path / "export" / "README.md").is_file()
