"""Training-recipe options of `satdifuser pretrain`: rot90, Min-SNR-gamma, timestep power.

Default values must keep the exact trajectory of runs made before these options existed (a live
run is resumed by the new code), so the first tests replay the old train step inline.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tests.tasks.test_pretrain import TINY, _fake_root, _images, _weights
from tests.tasks.test_pretrain_errors import FLAGS, _one_line_error

from satdifuser.cli.main import main
from satdifuser.errors import ConfigError
from satdifuser.pretrain import (
    PretrainConfig,
    PretrainTrainer,
    RunOptions,
    export_pipeline,
    resolve_config,
)
from satdifuser.pretrain.config import ARCHITECTURE_FIELDS, build_scheduler
from satdifuser.pretrain.image_pool import BatchOrder
from satdifuser.pretrain.trainer import _lr_at, min_snr_weights, sample_timesteps
from satdifuser.pretrain.warm_start import read_export

NEW_KEYS = ("rot90", "loss_weighting", "min_snr_gamma", "timestep_power")


def _trainer(run_dir: Path, config: PretrainConfig, **opts) -> PretrainTrainer:
    options = RunOptions(progress=False, sample_every=0, **opts)
    return PretrainTrainer(run_dir, config, _images(), options)


def _old_train_step(tr: PretrainTrainer, order: BatchOrder, pool: np.ndarray) -> float:
    """The train step as it was before the recipe options (commit b56efbd), on CPU, in fp32."""
    cfg, gen = tr.cfg, tr.gen
    x = torch.from_numpy(pool[order.next_indices()]).permute(0, 3, 1, 2).float()
    x = x.div_(127.5).sub_(1.0)
    b = x.shape[0]
    if cfg.flips:
        hflip = (torch.rand(b, generator=gen) < 0.5)[:, None, None, None]
        vflip = (torch.rand(b, generator=gen) < 0.5)[:, None, None, None]
        x = torch.where(hflip, x.flip(-1), x)
        x = torch.where(vflip, x.flip(-2), x)
    noise = torch.randn(x.shape, generator=gen)
    t = torch.randint(0, cfg.num_train_timesteps, (b,), generator=gen)
    noisy = tr.scheduler.add_noise(x, noise, t)
    target = noise if cfg.prediction_type == "epsilon" else tr.scheduler.get_velocity(x, noise, t)
    for group in tr.optimizer.param_groups:
        group["lr"] = _lr_at(cfg, tr.step, tr.warm_start_step)
    pred = tr.unet(noisy, t).sample
    loss = F.mse_loss(pred.float(), target)
    tr.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(tr.unet.parameters(), cfg.grad_clip)
    tr.optimizer.step()
    tr.ema.update(tr.unet, tr.step)
    tr.step += 1
    return float(loss.detach())


def _old_config_dict() -> dict:
    """A config.json as written before the recipe options existed (none of the new keys)."""
    data = PretrainConfig.from_dict(TINY).to_dict()
    for key in NEW_KEYS:
        data.pop(key)
    return data


# ------------------------------------------------------------ defaults keep old runs bit-exact
@pytest.mark.parametrize("extra", [{}, {"prediction_type": "v_prediction", "flips": False}])
def test_default_recipe_steps_equal_the_old_train_step_bit_for_bit(
    tmp_path: Path, extra: dict
) -> None:
    config = PretrainConfig.from_dict({**_old_config_dict(), **extra})
    new, old = _trainer(tmp_path / "new", config), _trainer(tmp_path / "old", config)
    order = BatchOrder(len(_images()), config.batch_size, config.seed)
    for _ in range(3):
        assert new.train_step() == _old_train_step(old, order, _images())
        assert torch.equal(new.gen.get_state(), old.gen.get_state())  # same draws, same count
    theirs = old.unet.state_dict()
    for name, value in new.unet.state_dict().items():
        assert torch.equal(value, theirs[name]), name
    for name, value in new.ema.shadow.items():
        assert torch.equal(value, old.ema.shadow[name]), name


def test_old_config_json_loads_resolves_and_resumes_exactly(tmp_path: Path) -> None:
    run, whole = tmp_path / "run", tmp_path / "whole"
    _trainer(run, PretrainConfig.from_dict(_old_config_dict()), steps=2).run()
    (run / "config.json").write_text(json.dumps(_old_config_dict(), indent=2) + "\n")
    stored = PretrainConfig.load(run / "config.json")
    assert (stored.rot90, stored.loss_weighting, stored.timestep_power) == (False, "mse", 1.0)
    assert resolve_config(run, {}) == stored
    defaults = {"rot90": False, "loss_weighting": "mse", "min_snr_gamma": 5.0}
    assert resolve_config(run, {**defaults, "timestep_power": 1.0}) == stored
    with pytest.raises(ConfigError, match=r"^rot90=True differs from False stored in"):
        resolve_config(run, {"rot90": True})
    resumed = _trainer(run, resolve_config(run, {}), steps=2)
    assert resumed.resumed
    resumed.run()
    _trainer(whole, PretrainConfig.from_dict(TINY), steps=4).run()
    a, b = _weights(run), _weights(whole)
    for part in ("model", "ema"):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part}.{key}"
    assert set(NEW_KEYS) <= set(json.loads((run / "config.json").read_text()))


# ------------------------------------------------------------ Min-SNR-gamma
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_min_snr_weights_match_the_closed_form(schedule: str) -> None:
    config = PretrainConfig.from_dict({**TINY, "beta_schedule": schedule})
    alphas = build_scheduler(config).alphas_cumprod
    if schedule == "linear":  # the DDPM schedule from scratch, to pin what SNR_t means
        betas = np.linspace(1e-4, 0.02, 1000)
        assert np.allclose(alphas.numpy(), np.cumprod(1 - betas), rtol=1e-5)
    ts = [0, 21, 161, 500, 999]
    t = torch.tensor(ts)
    for gamma in (1.0, 5.0):
        eps = min_snr_weights(alphas, t, gamma, "epsilon")
        v = min_snr_weights(alphas, t, gamma, "v_prediction")
        for i, step in enumerate(ts):
            a = float(alphas[step])
            snr = a / (1 - a)
            assert eps[i].item() == pytest.approx(min(snr, gamma) / snr, rel=1e-5)
            assert v[i].item() == pytest.approx(min(snr, gamma) / (snr + 1), rel=1e-5)
        assert eps[0].item() < 0.01 and eps[-1].item() == 1.0  # low t damped, high t kept
    zero = min_snr_weights(torch.tensor([0.0]), torch.tensor([0]), 5.0, "epsilon")
    assert zero.item() == 1.0  # SNR 0 (a final cosine step) gives weight 1, not NaN


def test_min_snr_changes_the_gradient_but_logs_the_plain_mse(tmp_path: Path) -> None:
    low_t = {**TINY, "timestep_power": 4.0}  # SNR_t > gamma at low t, where weights are < 1
    base = PretrainConfig.from_dict(low_t)
    snr = PretrainConfig.from_dict({**low_t, "loss_weighting": "min_snr", "min_snr_gamma": 5.0})
    flat = PretrainConfig.from_dict({**low_t, "loss_weighting": "min_snr", "min_snr_gamma": 1e9})
    runs = {
        name: _trainer(tmp_path / name, cfg)
        for name, cfg in (("mse", base), ("snr", snr), ("flat", flat))
    }
    losses = {name: tr.train_step() for name, tr in runs.items()}
    # same draws and initial weights: the logged (unweighted) MSE of the first step agrees
    assert losses["snr"] == pytest.approx(losses["mse"], rel=1e-6)
    assert losses["flat"] == pytest.approx(losses["mse"], rel=1e-6)
    # the gradient direction (Adam's first step is about lr * sign(grad), so compare gradients)
    grads = {
        name: torch.cat([p.grad.flatten() for p in tr.unet.parameters()])
        for name, tr in runs.items()
    }
    direction = {name: g / g.norm() for name, g in grads.items()}
    # gamma above every SNR weighs each image 1: the MSE gradient (up to summation order)
    assert torch.allclose(direction["flat"], direction["mse"], atol=1e-6)
    assert torch.dot(direction["snr"], direction["mse"]).item() < 0.99


# ------------------------------------------------------------ timestep power
@pytest.mark.parametrize("power", [0.5, 2.0, 3.0])
def test_timestep_power_biases_the_draw(power: float) -> None:
    config = PretrainConfig.from_dict({**TINY, "timestep_power": power})
    t = sample_timesteps(config, 40_000, torch.Generator().manual_seed(0))
    assert t.dtype == torch.long and 0 <= int(t.min()) and int(t.max()) <= 999
    assert (t.double() / 1000).mean().item() == pytest.approx(1 / (power + 1), abs=0.01)
    low = (t < 162).double().mean().item()  # the features are read at low t
    assert low == pytest.approx(0.162 ** (1 / power), abs=0.01)


def test_timestep_power_one_is_the_old_uniform_draw() -> None:
    config = PretrainConfig.from_dict(TINY)
    gen, ref = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    uniform = torch.randint(0, 1000, (64,), generator=ref)
    assert torch.equal(sample_timesteps(config, 64, gen), uniform)
    assert torch.equal(gen.get_state(), ref.get_state())


# ------------------------------------------------------------ rot90
def _clean_batches(tmp_path: Path, monkeypatch, steps: int, **extra) -> list[torch.Tensor]:
    trainer = _trainer(tmp_path, PretrainConfig.from_dict({**TINY, **extra}))
    seen: list[torch.Tensor] = []
    add_noise = trainer.scheduler.add_noise

    def record(x, noise, t):
        seen.append(x.detach().clone())
        return add_noise(x, noise, t)

    monkeypatch.setattr(trainer.scheduler, "add_noise", record)
    for _ in range(steps):
        trainer.train_step()
    return seen


def _quarter_turns(image: torch.Tensor, pool: torch.Tensor) -> int:
    """How many quarter turns map a pool image onto ``image`` (exactly one pool image fits)."""
    hits = [
        k for k in range(4) for source in pool if torch.equal(image, source.rot90(k, dims=(-2, -1)))
    ]
    assert len(hits) == 1, hits
    return hits[0]


@pytest.mark.parametrize("rot90", [True, False])
def test_rot90_rotates_the_training_images_only_when_on(
    tmp_path: Path, monkeypatch, rot90: bool
) -> None:
    pool = torch.from_numpy(_images()).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
    batches = _clean_batches(tmp_path, monkeypatch, 5, flips=False, rot90=rot90)
    turns = [_quarter_turns(image, pool) for batch in batches for image in batch]
    assert len(turns) == 5 * TINY["batch_size"]
    if rot90:
        assert set(turns) == {0, 1, 2, 3}
    else:
        assert set(turns) == {0}


# ------------------------------------------------------------ warm start: recipe yes, shape no
@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("export")
    _trainer(tmp / "run", PretrainConfig.from_dict(TINY), steps=2).run()
    export_pipeline(tmp / "run", tmp / "export", sample_images=1, sample_steps=1)
    return tmp / "export"


RECIPE = {
    "lr": 5e-4,
    "warmup_steps": 7,
    "ema_max_decay": 0.99,
    "loss_weighting": "min_snr",
    "min_snr_gamma": 2.0,
    "timestep_power": 2.5,
    "rot90": True,
    "flips": False,
}


def test_warm_start_takes_recipe_overrides(tmp_path: Path, export: Path) -> None:
    exported = read_export(export)
    config = resolve_config(tmp_path / "b", RECIPE, exported.config)
    assert {k: getattr(config, k) for k in RECIPE} == RECIPE
    assert config.block_out_channels == exported.config.block_out_channels
    shape = {k: exported.config.to_dict()[k] for k in ARCHITECTURE_FIELDS}  # same values: fine
    assert resolve_config(tmp_path / "b", shape, exported.config) == exported.config
    options = RunOptions(progress=False, sample_every=0, steps=1)
    warm = PretrainTrainer(tmp_path / "b", config, _images(), options, init_from=exported)
    warm.run()
    assert warm.step == 3 and math.isfinite(warm.last_loss)


ARCH_CHANGES = {
    "sample_size": 32,
    "block_out_channels": [8, 32],
    "down_block_types": ["DownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "UpBlock2D"],
    "layers_per_block": 2,
    "attention_head_dim": 4,
    "norm_num_groups": 2,
    "num_train_timesteps": 500,
}


def test_every_architecture_field_has_a_refusal_case() -> None:
    assert set(ARCH_CHANGES) == set(ARCHITECTURE_FIELDS)


@pytest.mark.parametrize(("key", "value"), ARCH_CHANGES.items())
def test_warm_start_refuses_architecture_changes(
    tmp_path: Path, export: Path, key: str, value
) -> None:
    exported = read_export(export)
    with pytest.raises(ConfigError, match=rf"^{key}=.* differs from .* of the --init-from export"):
        resolve_config(tmp_path / "b", {key: value}, exported.config)


def test_cli_warm_start_with_recipe_flags_and_refused_shape(
    tmp_path: Path, export: Path, capsys
) -> None:
    root = _fake_root(tmp_path / "data", n=10, size=16)
    base = ["pretrain", "--data", str(root), "--no-progress", "--sample-every", "0"]
    out = tmp_path / "b"
    refused = [*base, "--out", str(out), "--init-from", str(export), "--timesteps", "500"]
    assert main([*refused, "--steps", "1"]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "num_train_timesteps=500 differs from 1000 of the --init-from export" in line
    assert not out.exists()
    recipe = ["--lr", "5e-4", "--ema-max-decay", "0.99", "--loss-weighting", "min_snr"]
    recipe += ["--min-snr-gamma", "2", "--timestep-power", "2.5", "--rot90", "--no-flips"]
    warm = [*base, "--out", str(out), "--init-from", str(export), *recipe, "--steps", "1"]
    assert main(warm) == 0
    stored = json.loads((out / "config.json").read_text())
    assert {k: stored[k] for k in RECIPE if k != "warmup_steps"} == {
        k: v for k, v in RECIPE.items() if k != "warmup_steps"
    }


# ------------------------------------------------------------ CLI: end to end, bad values
def test_cli_recipe_end_to_end_into_the_export_and_backbone(tmp_path: Path) -> None:
    from satdifuser.backbones import DiffusionBackbone

    root = _fake_root(tmp_path / "data")
    run_dir, out = tmp_path / "run", tmp_path / "export"
    recipe = ["--prediction-type", "v_prediction", "--beta-schedule", "cosine"]
    recipe += ["--ema-max-decay", "0.15", "--loss-weighting", "min_snr", "--min-snr-gamma", "3"]
    recipe += ["--timestep-power", "2", "--rot90"]
    argv = ["pretrain", "--out", str(run_dir), "--data", str(root), *FLAGS, *recipe]
    assert main([*argv, "--steps", "2"]) == 0
    assert main([*argv, "--steps", "1"]) == 0  # resume with the same flags: accepted
    stored = json.loads((run_dir / "config.json").read_text())
    assert stored["prediction_type"] == "v_prediction" and stored["beta_schedule"] == "cosine"
    assert stored["loss_weighting"] == "min_snr" and stored["min_snr_gamma"] == 3.0
    assert stored["timestep_power"] == 2.0 and stored["rot90"] is True
    with (run_dir / "loss.csv").open() as fh:
        decays = [float(r["ema_decay"]) for r in csv.DictReader(fh)]
    assert decays == pytest.approx([0.1, 0.15, 0.15])  # min(0.15, (1+step)/(10+step))
    export = ["pretrain", "--export", str(run_dir), "--to", str(out)]
    assert main([*export, "--sample-images", "1", "--sample-steps", "1"]) == 0
    card = (out / "README.md").read_text()
    assert "Min-SNR-gamma weighted MSE loss (gamma 3" in card
    assert "timesteps floor(T * u^2), u ~ U[0, 1) (mean t/T 0.33)" in card
    assert "random horizontal/vertical flips, random 90-degree rotations" in card
    backbone = DiffusionBackbone.from_pretrained(out)
    assert backbone.prediction_type == "v_prediction"
    cosine = build_scheduler(PretrainConfig.from_dict(stored)).alphas_cumprod.double()
    assert torch.allclose(backbone.alphas_cumprod, cosine, atol=1e-6)


BAD_RECIPE = [
    (["--timestep-power", "0"], r"timestep_power=0\.0 must be > 0"),
    (["--timestep-power", "-1"], r"timestep_power=-1\.0 must be > 0"),
    (["--timestep-power", "nan"], r"timestep_power=nan must be a finite number"),
    (["--timestep-power", "inf"], r"timestep_power=inf must be a finite number"),
    (["--min-snr-gamma", "0"], r"min_snr_gamma=0\.0 must be > 0"),
    (["--min-snr-gamma", "nan"], r"min_snr_gamma=nan must be a finite number"),
    (["--loss-weighting", "l1"], r"--loss-weighting: invalid choice: 'l1'"),
    (["--timestep-power", "two"], r"--timestep-power: invalid float value: 'two'"),
]


@pytest.mark.parametrize(("extra", "match"), BAD_RECIPE)
def test_bad_recipe_value_is_one_line_and_creates_nothing(
    tmp_path: Path, extra: list[str], match: str, capsys
) -> None:
    root = _fake_root(tmp_path / "data")
    out = tmp_path / "run"
    argv = ["pretrain", "--out", str(out), "--data", str(root), *FLAGS, *extra, "--steps", "1"]
    assert main(argv) == 2
    assert re.search(match, _one_line_error(capsys.readouterr().err))
    assert not out.exists()


def test_bad_recipe_values_in_a_config_file_are_refused() -> None:
    for key, value, match in (
        ("loss_weighting", "snr", r"loss_weighting='snr' is unknown; expected mse or min_snr"),
        ("rot90", "yes", r"rot90='yes' must be true or false"),
        ("timestep_power", True, r"timestep_power=True must be a finite number"),
    ):
        with pytest.raises(ConfigError, match=match):
            PretrainConfig.from_dict({**TINY, key: value})
