"""`satdifuser fit|validate|test` errors: one line naming the key, no usage, no traceback.

Covers issue 13: parse errors (usage dump), errors raised while LightningCLI builds the classes
(buried in a traceback), OS errors on output paths, a SIGTERM-stopped fit that exited 0, and a
failed fit that left a half-written run folder.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from fixtures.eurosat import make as fx_eurosat
from satdifuser.cli import fit as cli_fit
from satdifuser.cli.main import main
from satdifuser.features import atomic_io

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def eurosat_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fx_eurosat.make(tmp_path_factory.mktemp("eurosat"))


def fit_args(root: Path, run: Path, *extra: str, sub: str = "fit") -> list[str]:
    return [sub, "--config", str(CONF / "eurosat_tiny_pixel.yaml"),
            "--data.init_args.root", str(root), "--trainer.default_root_dir", str(run),
            *extra]  # fmt: skip


def one_error_line(capsys: pytest.CaptureFixture[str], sub: str = "fit") -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and "usage:" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"satdifuser {sub}: error: "), lines[0]
    return lines[0]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# -- parse errors: no usage dump ------------------------------------------------------------------

YAML_CASES = {
    "empty": ("", "is empty"),
    "list": ("- model\n", "holds a list, not a mapping"),
    "invalid": ("model: {class_path: [1\n", "is not valid YAML"),
    "typo": ("model:\n  init_args:\n    num_clases: 10\n",
             "model.init_args.num_clases: satdifuser.tasks.ClassificationTask takes no argument "
             "'num_clases' (did you mean 'num_classes'?)"),
    "class": ("model:\n  class_path: satdifuser.tasks.NoSuchTask\n",
              "model.class_path='satdifuser.tasks.NoSuchTask'"),
    "literal": ("model:\n  init_args:\n    loss: hinge\n", "model.init_args.loss: expected"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(YAML_CASES))
def test_bad_yaml_is_one_line_naming_the_file_or_key(
    case: str, eurosat_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, message = YAML_CASES[case]
    extra = write(tmp_path / f"{case}.yaml", text)
    assert main(fit_args(eurosat_root, tmp_path / "run", "--config", str(extra))) == 2
    line = one_error_line(capsys)
    assert "ConfigError" in line and message in line
    if case in ("empty", "list", "invalid"):
        assert str(extra) in line
    assert not (tmp_path / "run").exists()


OPTION_CASES = {
    "unknown": (["--trainer.max_epocs", "3"], "unrecognized option '--trainer.max_epocs'",
                "did you mean --trainer.max_epochs"),
    "threads": (["--threads", "-1"], "unrecognized option '--threads'", "OMP_NUM_THREADS"),
    "num-workers": (["--num-workers", "-3"], "unrecognized option '--num-workers'",
                    "--data.init_args.num_workers"),
    "device": (["--device", "cuda:7"], "unrecognized option '--device'", "--trainer.accelerator"),
    "int": (["--trainer.max_epochs", "abc"], "trainer.max_epochs: expected int, got 'abc'",
            "--trainer.max_epochs VALUE"),
    "float": (["--model.init_args.lr", "fast"], "model.init_args.lr: expected float",
              "--model.init_args.lr VALUE"),
    "seed": (["--seed_everything", "x"], "seed_everything: expected bool or int", "VALUE"),
    "missing-config": (["--config", "/nonexistent/run.yaml"], "--config: File does not exist",
                       "pass an existing YAML file"),
}  # fmt: skip


@pytest.mark.parametrize(
    ("case", "sub"),
    [*((case, "fit") for case in OPTION_CASES), ("device", "test"), ("int", "validate")],
)
def test_bad_option_is_one_line_with_the_fix(
    case: str,
    sub: str,
    eurosat_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    extra, message, fix = OPTION_CASES[case]
    assert main(fit_args(eurosat_root, tmp_path / "run", *extra, sub=sub)) == 2
    line = one_error_line(capsys, sub)
    assert message in line and fix in line


# -- errors raised while the classes are built ----------------------------------------------------

BUILD_CASES = {
    "max_epochs": (["--trainer.max_epochs", "-3"], "ConfigError: trainer.max_epochs: "),
    "accelerator": (["--trainer.accelerator", "banana"], "ConfigError: trainer.accelerator: "),
    "num_classes": (["--model.init_args.num_classes", "-2"],
                    "ConfigError: model.init_args.num_classes: num_classes=-2"),
    "batch_size": (["--data.init_args.batch_size", "0"], "ConfigError: data.init_args: "),
    "num_workers": (["--data.init_args.num_workers", "-3"], "ConfigError: data.init_args: "),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BUILD_CASES))
def test_error_while_building_classes_is_one_line_naming_the_key(
    case: str, eurosat_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra, message = BUILD_CASES[case]
    assert main(fit_args(eurosat_root, tmp_path / "run", *extra)) == 2
    assert message in one_error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_unknown_backbone_in_yaml_names_the_nested_key(
    eurosat_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = write(tmp_path / "bb.yaml", "model:\n  init_args:\n    extractor:\n      init_args:\n"
                  "        backbone: tiny-pixle\n")  # fmt: skip
    assert main(fit_args(eurosat_root, tmp_path / "run", "--config", str(extra))) == 2
    line = one_error_line(capsys)
    assert "UnknownNameError: model.init_args.extractor.init_args.backbone: " in line
    assert "did you mean 'tiny-pixel'" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
@pytest.mark.parametrize("sub", ["fit", "test"])
def test_cuda_without_gpu_is_one_line(
    sub: str, eurosat_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = fit_args(eurosat_root, tmp_path / "run", "--trainer.accelerator", "cuda",
                    "--trainer.devices", "[7]", sub=sub)  # fmt: skip
    assert main(args) == 2
    line = one_error_line(capsys, sub)
    assert "trainer.accelerator: " in line and "--trainer.accelerator VALUE" in line


# -- output paths ---------------------------------------------------------------------------------


def test_run_directory_that_is_a_file_is_refused_before_anything_is_built(
    eurosat_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = write(tmp_path / "runs", "not a folder")
    assert main(fit_args(eurosat_root, blocker / "run")) == 2
    line = one_error_line(capsys)
    assert f"trainer.default_root_dir='{blocker / 'run'}': {blocker} is a file" in line
    assert blocker.read_text() == "not a folder"


def test_cache_dir_that_is_a_file_is_refused(
    eurosat_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = write(tmp_path / "cache", "x")
    assert main(fit_args(eurosat_root, tmp_path / "run", "--cache_dir", str(cache))) == 2
    assert f"cache_dir='{cache}': {cache} is a file" in one_error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_read_only_run_directory_is_refused(
    eurosat_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parent = tmp_path / "readonly"
    parent.mkdir()
    parent.chmod(0o555)
    if os.geteuid() == 0:  # root writes anyway: make the permission check see what a user sees
        real = os.access
        monkeypatch.setattr(
            atomic_io.os, "access", lambda p, m: False if Path(p) == parent else real(p, m)
        )
    try:
        assert main(fit_args(eurosat_root, parent / "run")) == 2
        line = one_error_line(capsys)
    finally:
        parent.chmod(0o755)
    assert f"folder {parent} is not writable" in line
    assert "trainer.default_root_dir" in line and not (parent / "run").exists()


# -- failed and interrupted fits ------------------------------------------------------------------


def test_failed_fit_removes_the_folders_it_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "runs" / "new" / "run"
    assert main(fit_args(tmp_path / "no-data", run)) == 2  # fails in trainer.fit (data setup)
    assert "DatasetNotFoundError" in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "runs").exists()


def test_failed_fit_keeps_a_folder_that_existed_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    write(run / "notes.txt", "mine")
    assert main(fit_args(tmp_path / "no-data", run)) == 2
    assert "DatasetNotFoundError" in capsys.readouterr().err
    assert (run / "notes.txt").read_text() == "mine"


class SigtermAfterFirstEpoch(Callback):
    """Sends this process SIGTERM once the first epoch (and its validation) is done."""

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.current_epoch == 0:
            os.kill(os.getpid(), signal.SIGTERM)


def test_fit_stopped_by_sigterm_exits_non_zero_and_keeps_its_checkpoint(
    eurosat_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = cli_fit.SatdifuserCLI.instantiate_trainer

    def with_sigterm(self: cli_fit.SatdifuserCLI, **kwargs: object) -> Trainer:
        trainer = original(self, **kwargs)
        trainer.callbacks.append(SigtermAfterFirstEpoch())
        return trainer

    monkeypatch.setattr(cli_fit.SatdifuserCLI, "instantiate_trainer", with_sigterm)
    run = tmp_path / "run"
    previous = signal.getsignal(signal.SIGTERM)
    assert main(fit_args(eurosat_root, run, "--trainer.max_epochs", "3")) == 143
    assert signal.getsignal(signal.SIGTERM) == previous  # Lightning restored the handler
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("satdifuser fit: error: RunInterruptedError: fit stopped by SIGTERM")
    assert "with 1 of 3 epochs completed" in line
    assert "best.safetensors holds the best epoch" in line
    assert (run / "best.safetensors").is_file() and (run / "config.yaml").is_file()
