"""FeatureExtractor: equivalence with a plain per-timestep forward, truncation, taps, inputs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from satdifuser.backbones import DiffusionBackbone, create_backbone
from satdifuser.errors import ConfigError, InputError, InputShapeError
from satdifuser.features import FeatureExtractor
from satdifuser.features.noise import draw_noise
from satdifuser.features.taps import HOOK_NAME, resolve_taps

TAPS = ("up_blocks.*.attn1", "up_blocks.*.conv2", "mid_block")


@pytest.fixture(scope="module")
def sat() -> DiffusionBackbone:
    return create_backbone("tiny-diffusionsat")


@pytest.fixture(scope="module")
def sd() -> DiffusionBackbone:
    return create_backbone("tiny-sd")


def _reference(
    bb: DiffusionBackbone,
    images: Tensor,
    timesteps: list[int],
    taps: list[str],
    ensemble: int,
    seed: int,
    metadata: Tensor | None,
) -> list[Tensor]:
    """Per-timestep, per-draw FULL UNet forward with plain torch hooks (no satdifuser taps)."""
    assert bb.vae is not None
    with torch.no_grad():
        z0 = bb.vae.encode(images * 2 - 1).latent_dist.mean * bb.vae.config.scaling_factor
        noise = draw_noise(z0.shape[1:], len(timesteps) * ensemble, seed)
        ehs = bb.prompt_embedding("a satellite image").expand(len(images), -1, -1)
        labels = bb.metadata_labels(metadata, len(images))
        modules = dict(bb.unet.named_modules())
        out: list[Tensor] = []
        for ti, t in enumerate(timesteps):
            acc: dict[str, list[Tensor]] = {n: [] for n in taps}
            a = bb.alphas_cumprod[t].float()
            for k in range(ensemble):
                xt = a.sqrt() * z0 + (1 - a).sqrt() * noise[ti * ensemble + k]
                store: dict[str, Tensor] = {}
                handles = [
                    modules[n].register_forward_hook(
                        lambda m, i, o, n=n, store=store: store.__setitem__(
                            n, o if isinstance(o, Tensor) else o[0]
                        )
                    )
                    for n in taps
                ]
                final = bb.unet(xt, torch.full((len(images),), t), ehs, class_labels=labels).sample
                for h in handles:
                    h.remove()
                assert final.shape == z0.shape  # the full forward ran to the end
                for n in taps:
                    acc[n].append(store[n])
            out += [torch.stack(acc[n]).mean(0) for n in taps]
        return out


def test_batched_truncated_equals_per_timestep_full_forward(sat: DiffusionBackbone) -> None:
    images = torch.rand(2, 3, 32, 32)
    md = torch.tensor([[10.0, 45.0, 2.5, 0.1, 2018, 6, 15], [-70.0, -10.0, 0.5, 0, 2020, 1, 2]])
    fx = FeatureExtractor(sat, timesteps=[21, 161, 500], taps=TAPS, ensemble=2, seed=3)
    got = fx(images, md)
    ref = _reference(sat, images, [21, 161, 500], fx.tap_names, 2, 3, md)
    assert len(got) == len(ref) == len(fx.feature_info)
    for info, g, r in zip(fx.feature_info, got, ref, strict=True):
        r = r if r.ndim == 4 else r.transpose(1, 2).reshape(g.shape)
        assert g.dtype == torch.float32
        torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-5, msg=f"{info}")


def test_one_batched_call_that_stops_after_the_last_tap(sd: DiffusionBackbone) -> None:
    calls: list[int] = []
    ends: list[int] = []
    h1 = sd.unet.conv_in.register_forward_hook(lambda m, i, o: calls.append(o.shape[0]))
    h2 = sd.unet.conv_out.register_forward_hook(lambda m, i, o: ends.append(1))
    try:
        fx = FeatureExtractor(sd, timesteps=[1, 21, 61], taps=["up_blocks.1"], ensemble=2)
        calls.clear(), ends.clear()
        fx(torch.rand(2, 3, 32, 32))
    finally:
        h1.remove(), h2.remove()
    assert calls == [3 * 2 * 2]  # one UNet call holding timesteps x draws x images
    assert ends == []  # conv_out never ran: truncated after up_blocks.1
    assert not any(HOOK_NAME in m.__dict__.get("_satdifuser_hooks", {}) for m in sd.modules())


def test_feature_info_known_before_running_matches_outputs(sd: DiffusionBackbone) -> None:
    fx = FeatureExtractor(sd, timesteps=[61, 21], taps=TAPS, image_size=0)
    assert [f.timestep for f in fx.feature_info[: len(fx.tap_names)]] == [61] * len(fx.tap_names)
    maps = fx(torch.rand(1, 3, 48, 32))  # non-square, kept as is
    for info, m in zip(fx.feature_info, maps, strict=True):
        assert m.shape == (1, info.channels, 48 // info.reduction, 32 // info.reduction)
    sizes = {f.tap: f.reduction for f in fx.feature_info}
    assert sizes["mid_block"] == 8 and sizes["up_blocks.2.resnets.0.conv2"] == 2


def test_pyramid_layout(sd: DiffusionBackbone) -> None:
    fx = FeatureExtractor(sd, timesteps=[21, 61], taps=["up_blocks.*.conv2"])
    maps = fx(torch.rand(2, 3, 32, 32))
    pyr = fx.pyramid(maps)
    assert [p.shape[-1] for p in pyr] == [16, 8, 4]  # finest first
    assert [p.shape[1] for p in pyr] == fx.pyramid_channels() == [128, 256, 256]
    finest = [m for m, i in zip(maps, fx.feature_info, strict=True) if i.reduction == 2]
    assert torch.equal(pyr[0], torch.cat(finest, 1))  # timestep-major, then taps
    per_t = fx.pyramid(maps, per_timestep=True)
    assert len(per_t) == 2 and torch.equal(torch.cat([per_t[0][1], per_t[1][1]], 1), pyr[1])


def test_tap_patterns(sd: DiffusionBackbone) -> None:
    assert resolve_taps(sd.unet, ["down_blocks.*"]) == [f"down_blocks.{i}" for i in range(3)]
    assert resolve_taps(sd.unet, ["mid_block", "mid_block"]) == ["mid_block"]
    with pytest.raises(ConfigError, match=r"'up_blocks\.9' matches no module"):
        resolve_taps(sd.unet, ["up_blocks.9"])
    fx = FeatureExtractor(sd, timesteps=[21], taps=["down_blocks.*", "mid_block"])
    shapes = [tuple(m.shape) for m in fx(torch.rand(1, 3, 32, 32))]
    assert shapes == [(1, 32, 8, 8), (1, 64, 4, 4), (1, 64, 4, 4), (1, 64, 4, 4)]


def test_metadata_changes_features_and_zero_differs_from_dropped(sat: DiffusionBackbone) -> None:
    images = torch.rand(1, 3, 32, 32)
    fx = FeatureExtractor(sat, timesteps=[61], taps=["up_blocks.2"])
    base = fx(images)[0]
    md = torch.tensor([[30.0, 10.0, 1.0, 0.2, 2016, 5, 20]])
    assert (fx(images, md)[0] - base).abs().max() > 1e-4
    unknown = torch.full((1, 7), math.nan)
    torch.testing.assert_close(fx(images, unknown)[0], base, atol=0, rtol=0)
    dropped = FeatureExtractor(sat, timesteps=[61], taps=["up_blocks.2"], use_metadata=False)
    assert (dropped(images)[0] - base).abs().max() > 1e-4


def test_save_pretrained_round_trip_gives_identical_features(
    sat: DiffusionBackbone, tmp_path
) -> None:
    images = torch.rand(2, 3, 32, 32)
    fx = FeatureExtractor(sat, timesteps=[21, 61], taps=["up_blocks.*.conv2"])
    again = FeatureExtractor(
        str(sat.save_pretrained(tmp_path / "bb")), timesteps=[21, 61], taps=["up_blocks.*.conv2"]
    )
    assert again.identity() == fx.identity()
    for a, b in zip(fx(images), again(images), strict=True):
        assert torch.equal(a, b)


def test_frozen_outputs_and_state(sd: DiffusionBackbone) -> None:
    fx = FeatureExtractor(sd, timesteps=[21], taps=["up_blocks.1"])
    fx.train()
    assert not fx.training and not sd.training and not sd.unet.training
    assert list(fx.parameters()) == [] and fx.state_dict() == {}
    out = fx(torch.rand(1, 3, 32, 32))[0]
    assert not out.is_inference() and not out.requires_grad
    weight = torch.ones(out.shape[1], requires_grad=True)
    (out * weight[:, None, None]).sum().backward()  # usable by trainable fusion modules
    assert weight.grad is not None


def test_posterior_sample_is_deterministic_and_batch_independent(sd: DiffusionBackbone) -> None:
    images = torch.rand(2, 3, 32, 32)
    fx = FeatureExtractor(sd, timesteps=[21], taps=["up_blocks.1"], posterior="sample", seed=5)
    both = fx(images)[0]
    torch.testing.assert_close(fx(images[1:])[0], both[1:], atol=1e-5, rtol=1e-5)
    mean = FeatureExtractor(sd, timesteps=[21], taps=["up_blocks.1"], seed=5)(images)[0]
    assert (mean - both).abs().max() > 1e-4


def test_bfloat16_is_close_to_float32(sd: DiffusionBackbone) -> None:
    images = torch.rand(1, 3, 32, 32)
    f32 = FeatureExtractor(sd, timesteps=[61], taps=["up_blocks.1"])(images)[0]
    bf = FeatureExtractor(sd, timesteps=[61], taps=["up_blocks.1"], dtype="bfloat16")(images)[0]
    assert bf.dtype == torch.float32
    cos = torch.nn.functional.cosine_similarity(f32.flatten(), bf.flatten(), dim=0)
    assert cos > 0.99 and not torch.equal(f32, bf)  # close, but bf16 really ran


def test_identity_tracks_spec_and_weights(sd: DiffusionBackbone) -> None:
    a = FeatureExtractor(sd, timesteps=[21], taps=["up_blocks.1"])
    assert a.identity() == FeatureExtractor(sd, timesteps=[21], taps=["up_blocks.1"]).identity()
    assert a.identity() != FeatureExtractor(sd, timesteps=[61], taps=["up_blocks.1"]).identity()
    other = create_backbone("tiny-sd", seed=1)
    assert a.identity() != FeatureExtractor(other, timesteps=[21], taps=["up_blocks.1"]).identity()


def test_pixel_backbone_default_taps() -> None:
    fx = FeatureExtractor("tiny-pixel", timesteps=[21, 61])
    assert fx.spec.taps == ("up_blocks.*.conv2",) and fx.spec.image_size == 32
    maps = fx(torch.rand(2, 3, 64, 64))  # resized to 32
    assert [tuple(m.shape[-2:]) for m in maps[:4]] == [(16, 16), (16, 16), (32, 32), (32, 32)]


@pytest.mark.parametrize(
    ("images", "metadata", "error", "match"),
    [
        (torch.rand(2, 4, 32, 32), None, InputShapeError, "4 channels but backbone"),
        (torch.rand(3, 32, 32), None, InputShapeError, r"\(B, C, H, W\)"),
        (torch.rand(0, 3, 32, 32), None, InputError, "empty batch"),
        (torch.full((1, 3, 32, 32), math.nan), None, InputError, "NaN or Inf"),
        (torch.full((1, 3, 32, 32), math.inf), None, InputError, "NaN or Inf"),
        (torch.rand(1, 3, 32, 32) * 255, None, InputError, r"\[0, 1\] is expected"),
        (torch.rand(1, 3, 32, 32) - 0.5, None, InputError, r"\[0, 1\] is expected"),
        (torch.randint(0, 255, (1, 3, 32, 32), dtype=torch.uint8), None, InputError, "uint8"),
        (torch.rand(2, 3, 32, 32), torch.zeros(2, 6), InputError, r"\(2, 7\) is expected"),
        (torch.rand(2, 3, 32, 32), torch.zeros(3, 7), InputError, r"\(2, 7\) is expected"),
    ],
)
def test_bad_input_is_one_clear_error(
    sat: DiffusionBackbone, images: Tensor, metadata: Tensor | None, error: type, match: str
) -> None:
    fx = FeatureExtractor(sat, timesteps=[21], taps=["up_blocks.1"])
    with pytest.raises(error, match=match):
        fx(images, metadata)


def test_size_not_multiple_of_downsampling(sd: DiffusionBackbone) -> None:
    keep = FeatureExtractor(sd, timesteps=[21], taps=["up_blocks.1"], image_size=0)
    with pytest.raises(InputShapeError, match="needs multiples of 8"):
        keep(torch.rand(1, 3, 30, 32))
    with pytest.raises(ConfigError, match="image_size=30 is not a multiple of 8"):
        FeatureExtractor(sd, image_size=30)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"timesteps": [21, 21]}, "distinct"),
        ({"timesteps": [1000]}, r"\[0, 999\]"),
        ({"timesteps": []}, "non-empty"),
        ({"noise": "ddim_inversion", "ensemble": 2}, "ensemble=2"),
        ({"noise": "ddim_inversion", "timesteps": [21, 30]}, "not on one grid"),
        ({"dtype": "float64"}, "dtype='float64'"),
        ({"taps": ["nothing.here"]}, "matches no module"),
    ],
)
def test_bad_config_is_a_config_error(sd: DiffusionBackbone, kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        FeatureExtractor(sd, **kwargs)
