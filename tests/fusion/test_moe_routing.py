from __future__ import annotations

import copy

import pytest
import torch
from fusion_helpers import SMALL, build_features, build_info

from satdifuser.errors import ConfigError
from satdifuser.fusion import MoEFusion, load_balancing_loss


def make_moe(warmup_steps: int, **kwargs: object) -> tuple[MoEFusion, list]:
    info = build_info((21, 61, 161))
    moe = MoEFusion(info, **SMALL, num_experts=4, top_k=2, warmup_steps=warmup_steps, **kwargs)
    return moe, info


def test_dense_during_warmup_then_exactly_top_k() -> None:
    moe, info = make_moe(warmup_steps=2)
    moe.train()
    for step in range(2):
        assert moe.in_warmup
        moe(build_features(info, batch=3))
        for gates in moe.last_gates():
            assert gates.shape == (9, 4)  # T*B samples, timestep-major
            assert (gates > 0).all(), f"warm-up step {step} must use every expert"
            assert torch.allclose(gates.sum(1), torch.ones(9))
    assert not moe.in_warmup
    moe(build_features(info, batch=3))
    for gates in moe.last_gates():
        assert ((gates > 0).sum(1) == 2).all()
        assert torch.allclose(gates.sum(1), torch.ones(9))
    moe.eval()
    with torch.no_grad():
        moe(build_features(info, batch=1))
    assert all(((g > 0).sum(1) == 2).all() for g in moe.last_gates())


def test_warmup_counts_training_forwards_only() -> None:
    moe, info = make_moe(warmup_steps=5)
    feats = build_features(info, batch=2)
    moe.eval()
    with torch.no_grad():
        for _ in range(4):
            moe(feats)
    assert int(moe.num_train_steps) == 0
    moe.train()
    moe(feats)  # one batch with T = 3 timesteps and 3 scales: one step
    assert int(moe.num_train_steps) == 1
    assert "num_train_steps" in moe.state_dict()  # persistent, survives checkpoints
    restored, _ = make_moe(warmup_steps=5)
    restored.load_state_dict(moe.state_dict())
    assert int(restored.num_train_steps) == 1


def test_sparse_mixing_equals_weighted_sum_of_all_experts() -> None:
    moe, _ = make_moe(warmup_steps=0)
    x = torch.randn(5, moe.scale_channels[0], 8, 8)
    probs, gates = moe._route(0, x, dense=False)
    sparse = moe._mix(0, x, gates, dense=False)
    full = moe._mix(0, x, gates, dense=True)  # runs every expert, zero weight where unselected
    assert torch.allclose(sparse, full, atol=1e-5)
    top = probs.topk(2, dim=1)
    renormalised = top.values / top.values.sum(1, keepdim=True)
    assert torch.allclose(gates.gather(1, top.indices), renormalised)


def test_balance_loss_is_zero_at_uniform_and_positive_when_skewed() -> None:
    uniform = torch.full((6, 4), 0.25)
    assert load_balancing_loss(uniform, uniform, "kl").item() == pytest.approx(0.0, abs=1e-7)
    assert load_balancing_loss(uniform, uniform, "switch").item() == pytest.approx(1.0)
    skewed = torch.tensor([[0.7, 0.1, 0.1, 0.1]]).repeat(6, 1)
    top2 = torch.zeros_like(skewed)
    top2[:, :2] = 0.5
    assert load_balancing_loss(skewed, top2, "kl") > 0.1
    assert load_balancing_loss(skewed, top2, "switch") > 1.2
    # per-sample confident but balanced over the batch: no penalty
    balanced = torch.eye(4).repeat(2, 1)
    assert load_balancing_loss(balanced, balanced, "kl").item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ConfigError, match="balance_loss"):
        load_balancing_loss(uniform, uniform, "entropy")  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["kl", "switch"])
def test_aux_loss_reaches_the_router_through_the_task_loss(kind: str) -> None:
    moe, info = make_moe(warmup_steps=0, balance_coef=0.5, balance_loss=kind)
    assert moe.aux_loss().item() == 0.0  # nothing before the first training forward
    feats = build_features(info, batch=2)
    moe.train()
    outs = moe(feats)
    task = sum(o.mean() for o in outs)
    aux = moe.aux_loss()
    assert aux.ndim == 0 and aux.requires_grad and aux.item() > 0
    router_w = moe.routers[0].weight
    (g_aux,) = torch.autograd.grad(aux, router_w, retain_graph=True)
    assert g_aux.abs().sum() > 0
    (g_task,) = torch.autograd.grad(task, router_w, retain_graph=True)
    (g_total,) = torch.autograd.grad(task + aux, router_w)
    assert torch.allclose(g_total, g_task + g_aux, atol=1e-6)
    moe.eval()
    with torch.no_grad():
        moe(feats)
    assert moe.aux_loss() is aux  # eval forwards keep the last training loss


def test_minimising_balance_loss_balances_routing() -> None:
    moe, _ = make_moe(warmup_steps=0, balance_coef=1.0)
    with torch.no_grad():  # start collapsed: expert 0 favoured at every scale
        for router in moe.routers:
            router.bias.copy_(torch.tensor([4.0, 0.0, 0.0, 0.0]))
    xs = [torch.randn(4, c, 4, 4) for c in moe.scale_channels]

    def loss() -> torch.Tensor:  # what aux_loss holds, without running the experts
        terms = [load_balancing_loss(*moe._route(s, x, dense=False)) for s, x in enumerate(xs)]
        return torch.stack(terms).mean()

    opt = torch.optim.SGD([p for r in moe.routers for p in r.parameters()], lr=1.0)
    first = loss().item()
    for _ in range(20):
        opt.zero_grad()
        loss().backward()
        opt.step()
    assert loss().item() < 0.5 * first


def test_expert_usage_and_deepcopy_after_training_forward() -> None:
    moe, info = make_moe(warmup_steps=0)
    moe.train()
    moe(build_features(info, batch=2))
    weights = moe.interpretable_weights()
    usage = weights["expert_usage"]
    assert usage.shape == (3, 4)
    assert torch.allclose(usage.sum(1), torch.ones(3), atol=1e-5)
    assert torch.allclose(weights["expert_selection"].sum(1), torch.full((3,), 2.0))
    assert moe.weight_axes()["expert_usage"] == (["1/8", "1/16", "1/32"], ["e0", "e1", "e2", "e3"])
    clone = copy.deepcopy(moe)
    assert clone.aux_loss().item() == 0.0


def test_bad_moe_settings() -> None:
    info = build_info((21,))
    with pytest.raises(ConfigError, match="top_k"):
        MoEFusion(info, num_experts=2, top_k=3)
    with pytest.raises(ConfigError, match="router_kernel_size"):
        MoEFusion(info, router_kernel_size=2)
