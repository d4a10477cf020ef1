from __future__ import annotations

import copy

import pytest
import torch
from fusion_helpers import SMALL, TINY_TAPS, build_features, build_info

from satdifuser.errors import ConfigError, InputShapeError, UnknownNameError
from satdifuser.features.spec import FeatureInfo
from satdifuser.fusion import (
    FUSIONS,
    BaseFusion,
    ConcatFusion,
    GlobalWeightedFusion,
    LocalWeightedFusion,
    MoEFusion,
    create_fusion,
    group_count,
    short_tap_label,
)

NAMES = ["concat", "global_weighted", "local_weighted", "moe"]


def small_kwargs(name: str) -> dict[str, object]:
    if name == "concat":
        return {"projection_dim": 32}
    if name == "moe":
        return {**SMALL, "num_experts": 3, "top_k": 2, "warmup_steps": 1}
    return dict(SMALL)


def test_registry_names() -> None:
    assert FUSIONS.names() == sorted(NAMES)
    classes = {n: FUSIONS.get(n) for n in NAMES}
    assert classes == {
        "concat": ConcatFusion,
        "global_weighted": GlobalWeightedFusion,
        "local_weighted": LocalWeightedFusion,
        "moe": MoEFusion,
    }


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("timesteps", "batch"), [((21,), 1), ((21, 61, 161), 1), ((5, 9, 40), 2)])
def test_output_shapes(name: str, timesteps: tuple[int, ...], batch: int) -> None:
    info = build_info(timesteps)
    fusion = create_fusion(name, info, **small_kwargs(name))
    assert isinstance(fusion, BaseFusion)
    assert fusion.out_reductions == [8, 16, 32]
    assert fusion.out_channels == [32, 32, 32]
    fusion.train()
    for _ in range(2):  # MoE: the second call is past its one warm-up step (sparse routing)
        outs = fusion(build_features(info, batch=batch, image_size=64))
    shapes = [tuple(o.shape) for o in outs]
    assert shapes == [(batch, 32, 8, 8), (batch, 32, 4, 4), (batch, 32, 2, 2)]
    assert all(o.dtype == torch.float32 and torch.isfinite(o).all() for o in outs)
    fusion.eval()
    with torch.no_grad():
        outs = fusion(build_features(info, batch=batch, image_size=128))
    assert [o.shape[-1] for o in outs] == [16, 8, 4]


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter_but_not_the_inputs(name: str) -> None:
    info = build_info((21, 61))
    fusion = create_fusion(name, info, **{**small_kwargs(name), "warmup_steps": 10}
                           if name == "moe" else small_kwargs(name))
    fusion.train()
    feats = build_features(info, batch=2)
    outs = fusion(feats)
    (sum(o.square().mean() for o in outs) + fusion.aux_loss()).backward()
    missing = [n for n, p in fusion.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []
    assert all(f.grad is None for f in feats)


def test_inference_mode_and_half_inputs_are_accepted() -> None:
    info = build_info((21,))
    fusion = GlobalWeightedFusion(info, **SMALL)
    with torch.inference_mode():
        feats = [f.to(torch.bfloat16) for f in build_features(info, batch=2)]
    outs = fusion(feats)
    sum(o.sum() for o in outs).backward()
    assert outs[0].dtype == torch.float32
    assert fusion.mixing_logits.grad is not None


def test_default_sizes_build_on_narrow_taps() -> None:
    # 32-channel taps with projection 384, bottleneck 96, 32 groups (the defaults).
    info = build_info((21,))
    fusion = LocalWeightedFusion(info)
    outs = fusion(build_features(info, batch=1))
    assert [o.shape[1] for o in outs] == [384, 384, 384]
    assert group_count(96, 32) == 32
    assert group_count(24, 32) == 24
    assert group_count(40, 32) == 20
    assert group_count(7, 32) == 7


def test_gw_weights_start_equal_and_sum_to_one() -> None:
    info = build_info((21, 61, 161))
    fusion = GlobalWeightedFusion(info, **SMALL)
    w = fusion.interpretable_weights()["weights"]
    assert w.shape == (3, len(TINY_TAPS))
    assert torch.allclose(w, torch.full_like(w, 1 / w.numel()))
    with torch.no_grad():
        fusion.mixing_logits.normal_()
    w = fusion.interpretable_weights()["weights"]
    assert torch.isclose(w.sum(), torch.tensor(1.0))
    assert w.std() > 0


def test_gw_routes_each_weight_to_its_timestep_and_tap() -> None:
    info = build_info((21, 61))
    fusion = GlobalWeightedFusion(info, **SMALL).eval()
    feats = build_features(info, batch=1)
    tap_idx, t_idx = 2, 1  # up_blocks.1.resnets.0.conv2 at t=61 (scale of reduction 16)
    with torch.no_grad():
        fusion.mixing_logits.fill_(-1e4)
        fusion.mixing_logits[t_idx, tap_idx] = 0.0
        outs = fusion(feats)
        position = info.index(FeatureInfo(TINY_TAPS[tap_idx][0], 61, 64, 16))
        expected = fusion.projections[tap_idx](feats[position])
    assert torch.allclose(outs[1], expected, atol=1e-5)
    assert outs[0].abs().max() < 1e-3 and outs[2].abs().max() < 1e-3


def test_lw_mean_gate_per_timestep_and_tap() -> None:
    info = build_info((21, 61, 161))
    fusion = LocalWeightedFusion(info, **SMALL)
    fusion(build_features(info, batch=2))
    gate = fusion.interpretable_weights()["mean_gate"]
    assert gate.shape == (3, len(TINY_TAPS))
    for taps in fusion.scale_taps:  # softmax within a scale: its block sums to 1
        assert torch.isclose(gate[:, taps].sum(), torch.tensor(1.0), atol=1e-5)
    assert fusion.weight_axes()["mean_gate"][0] == ["t=21", "t=61", "t=161"]


def test_weight_labels_and_short_tap_names() -> None:
    fusion = GlobalWeightedFusion(build_info((21, 61)), **SMALL)
    labels = fusion.weight_labels()
    assert labels["timesteps"] == ["t=21", "t=61"]
    assert labels["taps"][:2] == ["u0.r0.conv2", "u1.a0.attn1"]
    long_name = "up_blocks.1.attentions.2.transformer_blocks.1.attn1"
    assert short_tap_label(long_name) == "u1.a2.tb1.attn1"
    assert short_tap_label("mid_block.resnets.0.conv2") == "m.r0.conv2"
    assert short_tap_label("blocks.3") == "blocks.3"


@pytest.mark.parametrize("name", NAMES)
def test_bad_features_raise_input_shape_error(name: str) -> None:
    info = build_info((21,))
    fusion = create_fusion(name, info, **small_kwargs(name))
    feats = build_features(info, batch=1)
    with pytest.raises(InputShapeError, match="got 4 feature maps"):
        fusion(feats[:-1])
    bad = list(feats)
    bad[0] = torch.randn(1, 7, 2, 2)
    with pytest.raises(InputShapeError, match="expected \\(B, 64, H, W\\)"):
        fusion(bad)
    bad = list(feats)
    bad[1] = torch.randn(1, 64, 5, 5)  # same scale as bad[2] but another size
    with pytest.raises(InputShapeError, match="size"):
        fusion(bad)
    with pytest.raises(InputShapeError, match="list"):
        fusion(feats[0])


def test_inconsistent_feature_info_raises_config_error() -> None:
    info = build_info((21, 61))
    with pytest.raises(ConfigError, match="empty"):
        GlobalWeightedFusion([])
    with pytest.raises(ConfigError, match="every timestep must carry the same taps"):
        GlobalWeightedFusion(info[:-1])
    with pytest.raises(ConfigError, match="twice"):
        GlobalWeightedFusion([*info, info[0]])
    changed = [*info[:-1], FeatureInfo(info[-1].tap, 61, 99, info[-1].reduction)]
    with pytest.raises(ConfigError, match="must keep its shape"):
        GlobalWeightedFusion(changed)


def test_unknown_name_and_keyword() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'global_weighted'"):
        create_fusion("global_weigted", build_info((21,)))
    with pytest.raises(ConfigError, match="takes no argument 'num_experts'"):
        create_fusion("global_weighted", build_info((21,)), num_experts=3)


def test_state_dict_round_trip_keeps_outputs() -> None:
    info = build_info((21, 61))
    a = LocalWeightedFusion(info, **SMALL).eval()
    b = LocalWeightedFusion(info, **SMALL).eval()
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    feats = build_features(info, batch=1)
    with torch.no_grad():
        assert all(torch.equal(x, y) for x, y in zip(a(feats), b(feats), strict=True))
