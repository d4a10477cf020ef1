"""Tests of `satdifuser pretrain --init-from`: a new run continuing an exported model's record."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tests.tasks.test_pretrain import TINY, _fake_root, _images

from satdifuser.cli.main import main
from satdifuser.errors import CheckpointError, ConfigError
from satdifuser.pretrain import PretrainConfig, PretrainTrainer, RunOptions, export_pipeline
from satdifuser.pretrain.warm_start import read_export, start_position


def _trainer(run_dir: Path, init_from=None, n: int = 10, **opts) -> PretrainTrainer:
    options = RunOptions(progress=False, sample_every=0, **opts)
    config = init_from.config if init_from is not None else PretrainConfig.from_dict(TINY)
    return PretrainTrainer(run_dir, config, _images(n), options, init_from=init_from)


def _export(tmp_path: Path, steps: int) -> tuple[PretrainTrainer, Path]:
    source = _trainer(tmp_path / "a", steps=steps)
    source.run()
    out = tmp_path / "export"
    export_pipeline(tmp_path / "a", out, sample_images=1, sample_steps=1)
    return source, out


@pytest.mark.parametrize("steps", [4, 5])  # at and inside an epoch boundary (2 batches/epoch)
def test_warm_start_continues_step_data_order_and_weights(tmp_path: Path, steps: int) -> None:
    source, out = _export(tmp_path, steps)
    exported = read_export(out)
    warm = _trainer(tmp_path / "b", init_from=exported)
    assert warm.step == warm.warm_start_step == steps
    assert (warm.order.next_indices() == source.order.next_indices()).all()
    fp16 = load_file(out / "unet" / "diffusion_pytorch_model.safetensors")
    model = warm.unet.state_dict()
    for key, value in fp16.items():
        assert torch.equal(model[key], value.float()), key
        assert torch.equal(warm.ema.shadow[key], value.float()), key


def test_warm_start_accumulates_totals_into_the_next_export(tmp_path: Path) -> None:
    source, out = _export(tmp_path, 3)
    first_loss = json.loads((out / "training.json").read_text())["first_loss"]
    warm = _trainer(tmp_path / "b", init_from=read_export(out), steps=2, command="warm cmd")
    warm.run()
    with (tmp_path / "b" / "loss.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [4, 5]
    rewarm = TINY["lr"] / TINY["warmup_steps"]  # the LR warm-up restarts at the warm start
    assert float(rows[0]["lr"]) == pytest.approx(rewarm, rel=1e-3)
    again = tmp_path / "export2"
    summary = export_pipeline(tmp_path / "b", again, sample_images=1, sample_steps=1)
    assert summary["steps"] == 5 and summary["images_seen"] == 5 * TINY["batch_size"]
    assert [(r["start_step"], r["end_step"]) for r in summary["runs"]] == [(0, 3), (3, 5)]
    assert summary["runs"][1]["command"] == "warm cmd"
    [hw] = source.totals["wall_seconds"]
    assert summary["wall_seconds"][hw] > source.totals["wall_seconds"][hw]
    assert [w["step"] for w in summary["warm_starts"]] == [3]
    assert summary["first_loss"] == first_loss
    card = (again / "README.md").read_text()
    assert "Total steps: **5**" in card and "warm start at step 3" in card


def test_resume_ignores_init_from_once_a_checkpoint_exists(tmp_path: Path) -> None:
    _, out = _export(tmp_path, 2)
    exported = read_export(out)
    _trainer(tmp_path / "b", init_from=exported, steps=2).run()
    again = _trainer(tmp_path / "b", init_from=exported)
    assert again.resumed and again.step == 4 and again.warm_start_step == 2


def test_warm_start_on_other_data_starts_a_fresh_order_and_records_it(
    tmp_path: Path, capsys
) -> None:
    _, out = _export(tmp_path, 2)
    trainer = _trainer(tmp_path / "b", init_from=read_export(out), n=12, steps=1)
    assert trainer.step == 2 and (trainer.order.epoch, trainer.order.position) == (0, 0)
    assert "warm start on other data (12 images; the export's pool had 10)" in (
        capsys.readouterr().err
    )
    [note] = trainer.totals["warm_starts"]
    assert note["data"] == "other data: 12 images (the export's pool had 10)"
    trainer.run()
    again = tmp_path / "e2"
    export_pipeline(tmp_path / "b", again, sample_images=1, sample_steps=1)
    assert "other data: 12 images" in (again / "README.md").read_text()


def test_warm_start_refuses_non_exports_and_a_pool_mismatch_in_the_order(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="is not a `satdifuser pretrain --export` folder"):
        read_export(tmp_path / "a")
    with pytest.raises(ConfigError, match="pool of 10 images but 12 were given"):
        start_position(7, 10, 12, 4)
    assert start_position(7, 10, 10, 4) == (3, 4)


def test_cli_init_from_starts_a_new_run_from_an_export(tmp_path: Path, capsys) -> None:
    root = _fake_root(tmp_path / "data")
    flags = ["--sample-size", "16", "--channels", "8,16", "--norm-groups", "4"]
    flags += ["--down-blocks", "DownBlock2D,AttnDownBlock2D", "--attention-head-dim", "8"]
    flags += ["--up-blocks", "AttnUpBlock2D,UpBlock2D", "--batch-size", "2", "--no-bf16"]
    base = ["pretrain", "--data", str(root), "--no-progress", "--sample-every", "0"]
    assert main([*base, "--out", str(tmp_path / "a"), *flags, "--steps", "2"]) == 0
    export = ["pretrain", "--export", str(tmp_path / "a"), "--to", str(tmp_path / "e")]
    assert main([*export, "--sample-images", "1", "--sample-steps", "1"]) == 0
    warm = [*base, "--out", str(tmp_path / "b"), "--init-from", str(tmp_path / "e")]
    assert main([*warm, "--steps", "1"]) == 0
    assert "at step 3 (+1)" in capsys.readouterr().out
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["block_out_channels"] == [8, 16]  # the export's config, no shape flags needed
    assert main([*warm, "--steps", "1"]) == 0  # resumes; --init-from ignored
    assert "--init-from ignored" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "c"), "--init-from", str(tmp_path), "--steps", "1"])
    assert "is not a `satdifuser pretrain --export` folder" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_card_names_the_data_of_each_stretch_of_the_history() -> None:
    from satdifuser.pretrain.export import _data_section

    dubai = [{"kind": "mask_folder", "name": "dubai_aerial", "count": 45, "weight": 1.0,
              "scale": 0.25, "crops": [64, 128]}]  # fmt: skip
    eurosat = [{"kind": "eurosat", "name": "data", "count": 22000, "weight": 1.0, "scale": 1.0}]
    runs = [
        {"start_step": 0, "end_step": 10},  # before sources were recorded: EuroSAT
        {"start_step": 10, "end_step": 20, "sources": eurosat},
        {"start_step": 20, "end_step": 30, "sources": dubai},
    ]
    text = _data_section(dubai, 64, runs)
    assert text.index("Steps 0 -> 20:") < text.index("`eurosat` `data`: 22000 images")
    assert text.index("Steps 20 -> 30:") < text.index("`mask_folder` `dubai_aerial`: 45 images")
    assert text.count("Held-out images were never read") == 1
    one = _data_section(eurosat, 64, runs[:2])  # one stretch: no step headings
    assert "Steps" not in one and "`eurosat` `data`: 22000 images" in one
