"""Forward process, prediction conversions and the DDIM inversion walk."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDPMScheduler

from satdifuser.backbones import create_backbone
from satdifuser.backbones.presets import SD_SCHEDULER
from satdifuser.errors import ConfigError
from satdifuser.features import FeatureExtractor
from satdifuser.features.noise import (
    add_noise,
    ddim_step,
    draw_noise,
    inversion_schedule,
    to_epsilon,
)


def test_add_noise_equals_scheduler_forward_process() -> None:
    sched = DDPMScheduler.from_config(SD_SCHEDULER)
    bb = create_backbone("tiny-pixel")
    x0, eps = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    t = torch.tensor([0, 21, 161, 999])
    ours = add_noise(x0, eps, bb.alphas_cumprod, t)
    torch.testing.assert_close(ours, sched.add_noise(x0, eps, t), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction", "sample"])
def test_to_epsilon_inverts_each_parameterisation(prediction: str) -> None:
    x0, eps = (
        torch.randn(2, 4, 4, 4, dtype=torch.float64),
        torch.randn(2, 4, 4, 4, dtype=torch.float64),
    )
    a = torch.tensor([0.98, 0.5], dtype=torch.float64)
    sa, s1 = a.sqrt().view(-1, 1, 1, 1), (1 - a).sqrt().view(-1, 1, 1, 1)
    xt = sa * x0 + s1 * eps
    output = {"epsilon": eps, "v_prediction": sa * eps - s1 * x0, "sample": x0}[prediction]
    got = to_epsilon(output.float(), xt.float(), a, prediction)
    torch.testing.assert_close(got, eps.float(), atol=1e-5, rtol=1e-5)
    moved = ddim_step(xt.float(), eps.float(), a, torch.tensor([0.3, 0.9]))
    expected = (
        torch.tensor([0.3, 0.9]).sqrt().view(-1, 1, 1, 1) * x0
        + (1 - torch.tensor([0.3, 0.9])).sqrt().view(-1, 1, 1, 1) * eps
    )
    torch.testing.assert_close(moved, expected.float(), atol=1e-5, rtol=1e-5)


def test_inversion_schedule() -> None:
    assert inversion_schedule([21, 61, 161]) == [0, 1, 21, 41, 61, 81, 101, 121, 141, 161]
    assert inversion_schedule([40, 0]) == [0, 20, 40]
    assert inversion_schedule([30], steps=100) == [0, 10, 20, 30]
    with pytest.raises(ConfigError, match="not on one grid"):
        inversion_schedule([21, 40])
    with pytest.raises(ConfigError, match="must divide"):
        inversion_schedule([21], steps=7)


def test_draw_noise_is_deterministic() -> None:
    assert torch.equal(draw_noise((2, 3), 4, seed=1), draw_noise((2, 3), 4, seed=1))
    assert not torch.equal(draw_noise((2, 3), 4, seed=1), draw_noise((2, 3), 4, seed=2))


def test_one_ddim_inversion_step_on_v_model_matches_hand_formula() -> None:
    bb = create_backbone("tiny-diffusionsat")  # v-prediction
    assert bb.prediction_type == "v_prediction" and bb.vae is not None
    images = torch.rand(2, 3, 32, 32)
    fx = FeatureExtractor(bb, timesteps=[1], taps=["up_blocks.2"], noise="ddim_inversion")
    assert fx._schedule == [0, 1]  # exactly one inversion step: t=0 -> t=1
    got = fx(images)[0]
    with torch.no_grad():
        z0 = bb.vae.encode(images * 2 - 1).latent_dist.mean * 0.18215
        ehs = bb.prompt_embedding("a satellite image").expand(2, -1, -1)
        labels = bb.metadata_labels(None, 2)
        a0, a1 = bb.alphas_cumprod[0].float(), bb.alphas_cumprod[1].float()
        v = bb.unet(z0, torch.zeros(2, dtype=torch.long), ehs, class_labels=labels).sample
        eps = a0.sqrt() * v + (1 - a0).sqrt() * z0  # v -> epsilon
        x0_hat = (z0 - (1 - a0).sqrt() * eps) / a0.sqrt()
        x1 = a1.sqrt() * x0_hat + (1 - a1).sqrt() * eps
        store = {}
        h = bb.unet.up_blocks[2].register_forward_hook(lambda m, i, o: store.setdefault("f", o))
        bb.unet(x1, torch.ones(2, dtype=torch.long), ehs, class_labels=labels)
        h.remove()
    torch.testing.assert_close(got, store["f"], atol=1e-5, rtol=1e-5)
    # treating v as epsilon (the reference's shortcut) gives different features
    with torch.no_grad():
        x1_wrong = a1.sqrt() * (z0 - (1 - a0).sqrt() * v) / a0.sqrt() + (1 - a1).sqrt() * v
        store.clear()
        h = bb.unet.up_blocks[2].register_forward_hook(lambda m, i, o: store.setdefault("f", o))
        bb.unet(x1_wrong, torch.ones(2, dtype=torch.long), ehs, class_labels=labels)
        h.remove()
    assert (store["f"] - got).abs().max() > 1e-4
