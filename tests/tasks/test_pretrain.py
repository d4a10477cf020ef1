"""Tests of `satdifuser pretrain`: exact resume, atomic checkpoints, split guard, export layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from satdifuser.cli.main import main
from satdifuser.errors import ConfigError
from satdifuser.pretrain import (
    PretrainConfig,
    PretrainTrainer,
    RunOptions,
    export_pipeline,
    pretrain_paths,
    resolve_config,
)
from satdifuser.pretrain import checkpoint as ckpt_mod
from satdifuser.pretrain.checkpoint import latest_checkpoint, load_checkpoint

TINY = {
    "sample_size": 16,
    "block_out_channels": [8, 16],
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D"],
    "up_block_types": ["AttnUpBlock2D", "UpBlock2D"],
    "attention_head_dim": 8,
    "norm_num_groups": 4,
    "batch_size": 4,
    "warmup_steps": 3,
    "lr": 1e-3,
    "bf16": False,
}


def _images(n: int = 10, size: int = 16) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _run(run_dir: Path, config: PretrainConfig, **opts) -> PretrainTrainer:
    options = RunOptions(progress=False, sample_every=0, **opts)
    trainer = PretrainTrainer(run_dir, config, _images(), options)
    trainer.run()
    return trainer


def _weights(run_dir: Path) -> dict[str, dict[str, torch.Tensor]]:
    ck = load_checkpoint(latest_checkpoint(run_dir))
    return {"model": ck["model"], "ema": ck["ema"], "opt": ck["optimizer"]["state"][0]}


def _assert_equal(a: dict, b: dict) -> None:
    for part in ("model", "ema"):
        assert a[part].keys() == b[part].keys()
        for k in a[part]:
            assert torch.equal(a[part][k], b[part][k]), f"{part}.{k} differs"
    for k in a["opt"]:
        assert torch.equal(a["opt"][k], b["opt"][k]), f"optimizer {k} differs"


@pytest.mark.parametrize("extra", [{}, {"prediction_type": "v_prediction", "bf16": True}])
def test_resume_equals_uninterrupted(tmp_path: Path, extra: dict) -> None:
    config = PretrainConfig.from_dict({**TINY, **extra})
    # 10 images, batch 4: 2 batches per epoch, so 5 + 5 steps cross epochs and a mid-epoch resume
    _run(tmp_path / "split", config, steps=5)
    first = _weights(tmp_path / "split")
    resumed = _run(tmp_path / "split", config, steps=5)
    assert resumed.step == 10
    whole = _run(tmp_path / "whole", config, max_steps=10)
    assert whole.step == 10
    _assert_equal(_weights(tmp_path / "split"), _weights(tmp_path / "whole"))
    # the weights actually moved between step 5 and 10 (the comparison is not vacuous)
    k = next(iter(first["model"]))
    assert not torch.equal(first["model"][k], _weights(tmp_path / "whole")["model"][k])
    state = load_checkpoint(latest_checkpoint(tmp_path / "split"))["state"]
    totals = state["totals"]
    assert totals["steps"] == 10 and totals["images_seen"] == 40
    assert [(r["start_step"], r["end_step"]) for r in totals["runs"]] == [(0, 5), (5, 10)]
    assert sum(totals["wall_seconds"].values()) > 0
    rows = (tmp_path / "split" / "loss.csv").read_text().splitlines()
    assert [int(r.split(",")[0]) for r in rows[1:]] == list(range(1, 11))


def test_killed_save_keeps_previous_checkpoint(tmp_path: Path, monkeypatch) -> None:
    config = PretrainConfig.from_dict(TINY)
    saves: list[int] = []
    real_save = PretrainTrainer.save

    def counting_save(self: PretrainTrainer) -> Path:
        saves.append(self.step)
        return real_save(self)

    monkeypatch.setattr(PretrainTrainer, "save", counting_save)
    _run(tmp_path, config, steps=2, ckpt_every=0, ckpt_minutes=0.0)  # time-based: every step
    assert saves == [1, 2]
    monkeypatch.undo()
    before = _weights(tmp_path)

    def boom(*args, **kwargs):
        raise KeyboardInterrupt  # a kill in the middle of writing the next checkpoint

    monkeypatch.setattr(ckpt_mod, "_save_tensors", boom)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, config, steps=2)
    monkeypatch.undo()
    assert not list(tmp_path.glob(".checkpoint-tmp-*"))
    after = _weights(tmp_path)
    _assert_equal(before, after)
    assert load_checkpoint(latest_checkpoint(tmp_path))["state"]["step"] == 2
    # rows logged after the checkpoint are dropped on resume, so the log stays consistent
    resumed = _run(tmp_path, config, steps=1)
    rows = (tmp_path / "loss.csv").read_text().splitlines()[1:]
    assert resumed.step == 3 and [int(r.split(",")[0]) for r in rows] == [1, 2, 3]


def test_resume_refuses_changed_config(tmp_path: Path) -> None:
    config = PretrainConfig.from_dict(TINY)
    _run(tmp_path, config, steps=1)
    assert resolve_config(tmp_path, {"lr": TINY["lr"]}) == config
    with pytest.raises(ConfigError, match=r"lr=0\.5 differs"):
        resolve_config(tmp_path, {"lr": 0.5})


def _fake_root(root: Path, n: int = 6, size: int = 20) -> Path:
    rel = []
    for i in range(n):
        path = root / "eurosat_rgb" / "Forest" / f"Forest_{i}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_images(1, size)[0]).save(path)
        rel.append(f"Forest/Forest_{i}.jpg")
    split = {"classes": ["Forest"], "unlabeled": rel, "val": rel[:1], "test": rel[1:2]}
    (root / "eurosat_rgb_split.json").write_text(json.dumps(split))
    return root


@pytest.mark.parametrize("split", ["val", "test", "train"])
def test_refuses_other_splits(tmp_path: Path, split: str, capsys) -> None:
    root = _fake_root(tmp_path / "data")
    with pytest.raises(ConfigError, match=f"split='{split}' cannot be used"):
        pretrain_paths(root, split)
    argv = ["pretrain", "--out", str(tmp_path / "run"), "--data", str(root), "--split", split]
    assert main([*argv, "--steps", "1"]) == 2
    assert "cannot be used for pre-training" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_cli_trains_samples_and_exports(tmp_path: Path) -> None:
    from diffusers import DDPMScheduler, UNet2DModel

    root = _fake_root(tmp_path / "data")
    run_dir, out = tmp_path / "run", tmp_path / "export"
    flags = ["--sample-size", "16", "--channels", "8,16", "--norm-groups", "4"]
    flags += ["--down-blocks", "DownBlock2D,AttnDownBlock2D", "--attention-head-dim", "8"]
    flags += ["--up-blocks", "AttnUpBlock2D,UpBlock2D", "--batch-size", "2", "--no-bf16"]
    flags += ["--prediction-type", "v_prediction", "--beta-schedule", "cosine"]
    argv = ["pretrain", "--out", str(run_dir), "--data", str(root), *flags, "--no-progress"]
    opts = ["--steps", "3", "--sample-every", "2", "--sample-images", "4", "--sample-steps", "3"]
    assert main([*argv, *opts]) == 0
    grid = Image.open(run_dir / "samples" / "step_0000002.png")
    assert grid.size == (2 * 18 + 2, 2 * 18 + 2)  # 2x2 grid of 16 px with 2 px padding
    assert (run_dir / "samples" / "step_0000003.png").is_file()  # final grid
    assert (
        main(
            [
                "pretrain",
                "--export",
                str(run_dir),
                "--to",
                str(out),
                "--sample-images",
                "4",
                "--sample-steps",
                "2",
            ]
        )
        == 0
    )
    unet = UNet2DModel.from_pretrained(out / "unet")
    stored = load_file(out / "unet" / "diffusion_pytorch_model.safetensors")
    assert {v.dtype for v in stored.values()} == {torch.float16}
    assert list(unet.config.block_out_channels) == [8, 16]
    ema = load_checkpoint(latest_checkpoint(run_dir))["ema"]
    for k, v in unet.state_dict().items():
        assert torch.allclose(v.float(), ema[k], atol=1e-2, rtol=1e-2), k
    sched = DDPMScheduler.from_pretrained(out / "scheduler")
    assert sched.config.prediction_type == "v_prediction"
    assert sched.config.beta_schedule == "squaredcos_cap_v2"
    assert sched.config.num_train_timesteps == 1000
    card = (out / "README.md").read_text()
    assert "Total steps: **3**" in card and "images seen: **6**" in card and "--steps 3" in card
    # the model's name, not the last option checked (the shipped card once said "--sample-steps")
    assert card.startswith("# satdifuser-eurosat-tiny\n")
    assert 'create_backbone("satdifuser-eurosat-tiny")' in card
    assert json.loads((out / "training.json").read_text())["name"] == "satdifuser-eurosat-tiny"
    assert Image.open(out / "samples.png").size == (38, 38)
    assert main(["pretrain", "--export", str(run_dir), "--to", str(out)]) == 2  # no --overwrite
    summary = export_pipeline(run_dir, out, overwrite=True, sample_images=1, sample_steps=1)
    assert summary["steps"] == 3 and summary["params"] < 10_000_000


def test_default_model_fits_the_shipping_budget() -> None:
    from satdifuser.pretrain import build_unet

    with torch.device("meta"):
        unet = build_unet(PretrainConfig())
    params = sum(p.numel() for p in unet.parameters())
    assert 6_500_000 < params < 10_000_000  # 7.05M measured; fp16 file < 25 MB
    assert params * 2 / 2**20 < 25
