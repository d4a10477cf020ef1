"""`satdifuser fit` with ``train_crop`` and ``train_flips``: random crops, flips and quarter turns
of cached segmentation samples, from YAML or the command line, saved in the run's config.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from fixtures.geobench import make as gbfx
from satdifuser.cli.main import main
from satdifuser.features import cache_datamodule

CONFIG = Path(__file__).resolve().parents[1] / "conf" / "pv4ger_seg_tiny_pixel.yaml"


@pytest.fixture(scope="module")
def geobench_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("geobench")
    gbfx.make_task(root, "m-pv4ger-seg", n=(4, 2, 2), size=16)
    return root


def test_yaml_train_crop_trains_on_crops_and_is_saved_in_the_run_config(
    geobench_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.set_num_threads(1)
    shapes: list[tuple[int, ...]] = []
    real = cache_datamodule.crop_loader

    def spy(*args: Any, **kwargs: Any) -> Any:
        loader = real(*args, **kwargs)
        shapes.extend(tuple(b["mask"].shape) for b in loader)
        return loader

    monkeypatch.setattr(cache_datamodule, "crop_loader", spy)
    run, cache = tmp_path / "run", tmp_path / "cache"
    args = ["fit", "--config", str(CONFIG), "--data.init_args.root", str(geobench_root),
            "--trainer.default_root_dir", str(run), "--cache_dir", str(cache)]  # fmt: skip
    assert main(args) == 0
    assert shapes and {s[-2:] for s in shapes} == {(8, 8)}  # training batches were 8 px crops
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["train_crop"] == 8 and saved["cache_dir"] == str(cache)
    assert main(["test", "--config", str(run / "config.yaml")]) == 0  # whole 16 px patches


def test_train_crop_without_cache_dir_is_one_line(
    geobench_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["fit", "--config", str(CONFIG), "--data.init_args.root", str(geobench_root),
            "--trainer.default_root_dir", str(tmp_path / "run")]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "train_crop=8 crops cached features, but cache_dir is not set" in err


def test_bad_train_crop_from_yaml_is_one_line(
    geobench_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["fit", "--config", str(CONFIG), "--data.init_args.root", str(geobench_root),
            "--trainer.default_root_dir", str(tmp_path / "run"), "--cache_dir",
            str(tmp_path / "cache"), "--train_crop", "32"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "train_crop=32 is larger than the 16x16 px training windows" in err


def test_yaml_train_flips_turns_the_crops_and_is_saved_in_the_run_config(
    geobench_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.set_num_threads(1)
    transforms: list[Any] = []
    real = cache_datamodule.crop_loader

    def spy(*args: Any, **kwargs: Any) -> Any:
        transforms.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(cache_datamodule, "crop_loader", spy)
    extra = tmp_path / "flips.yaml"
    extra.write_text("train_flips: true\n")
    run, cache = tmp_path / "run", tmp_path / "cache"
    args = ["fit", "--config", str(CONFIG), "--config", str(extra), "--data.init_args.root",
            str(geobench_root), "--trainer.default_root_dir", str(run), "--cache_dir",
            str(cache)]  # fmt: skip
    assert main(args) == 0
    assert transforms and all(t.flips and t.grid.crop == 8 for t in transforms)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["train_flips"] is True and saved["train_crop"] == 8
    assert main(["test", "--config", str(run / "config.yaml")]) == 0


def test_train_flips_is_off_by_default_and_needs_cache_dir(
    geobench_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["fit", "--config", str(CONFIG), "--data.init_args.root", str(geobench_root),
            "--trainer.default_root_dir", str(tmp_path / "run"), "--train_crop", "null",
            "--train_flips", "true"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "train_flips=true flips cached features, but cache_dir is not set" in err
    # without --train_flips the same run needs no cache: flips are off by default
    assert main([*args[:-2], "--trainer.fast_dev_run", "true"]) == 0
