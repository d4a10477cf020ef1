"""Mixture-of-experts joint fusion (MoE), with a load-balancing loss that is actually used.

Per scale, the taps of one timestep are concatenated along channels (``C_s`` channels) and routed
to ``num_experts`` bottleneck experts; the outputs are averaged over timesteps (method.md 6.4).
Differences from the reference, on purpose: the warm-up counter is a persistent buffer that
advances once per *training* forward (eval forwards and timesteps do not count), and the
balancing loss has the sign that balances routing and is returned by :meth:`MoEFusion.aux_loss`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from satdifuser.errors import ConfigError
from satdifuser.features.spec import FeatureInfo
from satdifuser.fusion.base import FUSIONS, BaseFusion
from satdifuser.fusion.projection import BottleneckBlock


def load_balancing_loss(
    probs: Tensor, gates: Tensor, kind: Literal["kl", "switch"] = "kl"
) -> Tensor:
    """Load-balancing loss of one router over a batch of samples.

    Args:
        probs: Router probabilities ``(N, E)`` (softmax over experts, before top-k).
        gates: Weights actually used ``(N, E)`` (zeros for unselected experts).
        kind: ``kl``: ``KL(u || uniform) = Σ_e u_e log(E·u_e)`` with ``u`` the mean probability,
            0 exactly at uniform usage and positive otherwise. ``switch``: Switch-Transformer
            ``E·Σ_e f_e·P_e`` (``f_e`` share of assignments, ``P_e`` mean probability), 1 at
            uniform usage and larger when routing collapses onto favoured experts.

    Returns:
        A differentiable scalar (gradients reach the router through ``probs``).
    """
    num_experts = probs.shape[1]
    mean_prob = probs.mean(dim=0)
    if kind == "kl":
        return (mean_prob * torch.log(mean_prob.clamp_min(1e-12) * num_experts)).sum()
    if kind == "switch":
        chosen = (gates > 0).to(probs.dtype)
        share = chosen.sum(dim=0) / chosen.sum().clamp_min(1.0)
        return num_experts * (share.detach() * mean_prob).sum()
    raise ConfigError(f"balance_loss={kind!r} is unknown; expected 'kl' or 'switch'")


@FUSIONS.register("moe")
class MoEFusion(BaseFusion):
    """Joint fusion of each scale's taps by a routed mixture of bottleneck experts.

    For scale s and timestep t, ``X_{t,s}`` is the channel concatenation of the scale's taps.

    - Router: ``Conv2d(C_s, E, k, pad k//2)`` -> global average pool -> logits ``/ τ_s``
      (learnable temperature per scale, initialised to ``temperature_init``, clamped at 1e-3).
    - Warm-up (first ``warmup_steps`` training forwards): dense, ``Σ_e softmax(logits)_e f_e(X)``.
    - Afterwards: the ``top_k`` largest logits per sample, softmax over those (renormalisation),
      and only the selected experts run on their samples.
    - ``X_s = (1/T) Σ_t Y_{t,s}``; all timesteps are routed in one batch of ``B·T`` samples.
    - Balancing: :func:`load_balancing_loss` per scale over all ``B·T`` samples, averaged over
      scales and times ``balance_coef``, exposed by :meth:`aux_loss` after each training forward.

    SD 2.1 default (C_s = 1920, 3840, 7680, 3840): 71,494,692 parameters.

    Notes: ``switch`` balancing has no gradient during the dense warm-up (every expert is used,
    so its ``f`` is uniform); ``kl`` acts from the first step. After warm-up, experts that no
    sample selected get no gradient in that step: under DDP use ``find_unused_parameters=True``.

    Args:
        feature_info: The extractor's feature_info.
        projection_dim: Output channels of every scale (and of every expert).
        bottleneck_dim: Inner width of the experts.
        num_groups: GroupNorm groups (largest divisor of the width if it does not divide).
        num_experts: Experts per scale, E.
        top_k: Experts used per sample after warm-up.
        warmup_steps: Training forwards with dense routing (300 for classification in the
            reference, 500 for segmentation).
        balance_coef: Weight of the balancing loss in :meth:`aux_loss` (0 disables it).
        balance_loss: ``kl`` (KL to uniform, 0 when balanced) or ``switch``.
        router_kernel_size: Kernel of the router convolution (odd).
        temperature_init: Initial router temperature.
    """

    def __init__(
        self,
        feature_info: Sequence[FeatureInfo],
        *,
        projection_dim: int = 384,
        bottleneck_dim: int = 96,
        num_groups: int = 32,
        num_experts: int = 8,
        top_k: int = 2,
        warmup_steps: int = 300,
        balance_coef: float = 0.01,
        balance_loss: Literal["kl", "switch"] = "kl",
        router_kernel_size: int = 3,
        temperature_init: float = 1.0,
    ) -> None:
        super().__init__(feature_info)
        if num_experts < 1 or not 1 <= top_k <= num_experts:
            raise ConfigError(
                f"MoEFusion needs 1 <= top_k <= num_experts, got top_k={top_k}, "
                f"num_experts={num_experts}; lower top_k or add experts"
            )
        if warmup_steps < 0 or balance_coef < 0:
            raise ConfigError(
                f"MoEFusion warmup_steps={warmup_steps} and balance_coef={balance_coef} "
                "must be >= 0"
            )
        if balance_loss not in ("kl", "switch"):
            raise ConfigError(f"MoEFusion balance_loss={balance_loss!r}; expected 'kl' or 'switch'")
        if router_kernel_size < 1 or router_kernel_size % 2 == 0:
            raise ConfigError(
                f"MoEFusion router_kernel_size={router_kernel_size} must be odd and >= 1 (e.g. 3)"
            )
        if not temperature_init > 0:
            raise ConfigError(f"MoEFusion temperature_init={temperature_init} must be > 0")
        self.num_experts = num_experts
        self.top_k = top_k
        self.warmup_steps = warmup_steps
        self.balance_coef = float(balance_coef)
        self.balance_loss = balance_loss
        self.scale_channels = [sum(self.tap_channels[li] for li in t) for t in self.scale_taps]
        self.experts = nn.ModuleList(
            nn.ModuleList(
                BottleneckBlock(c, projection_dim, bottleneck_dim, num_groups)
                for _ in range(num_experts)
            )
            for c in self.scale_channels
        )
        self.routers = nn.ModuleList(
            nn.Conv2d(c, num_experts, router_kernel_size, padding=router_kernel_size // 2)
            for c in self.scale_channels
        )
        self.temperatures = nn.Parameter(torch.full((len(self.scale_channels),), temperature_init))
        self.out_channels = [projection_dim] * len(self.out_reductions)
        self.register_buffer("num_train_steps", torch.zeros((), dtype=torch.long))
        n = len(self.scale_channels)
        self.register_buffer("last_usage", torch.zeros(n, num_experts), persistent=False)
        self.register_buffer("last_selection", torch.zeros(n, num_experts), persistent=False)
        self._aux: Tensor | None = None
        self._last_gates: list[Tensor] = []

    @property
    def in_warmup(self) -> bool:
        """True while routing is dense (``num_train_steps < warmup_steps``)."""
        return int(self.num_train_steps) < self.warmup_steps

    def _route(self, s: int, x: Tensor, dense: bool) -> tuple[Tensor, Tensor]:
        """Router probabilities and the gates used, both ``(N, E)``."""
        temp = self.temperatures[s].clamp_min(1e-3)
        logits = self.routers[s](x).mean(dim=(2, 3)) / temp
        probs = logits.softmax(dim=1)
        if dense:
            return probs, probs
        top_logits, top_idx = logits.topk(self.top_k, dim=1)
        gates = torch.zeros_like(probs).scatter(1, top_idx, top_logits.softmax(dim=1))
        return probs, gates

    def _mix(self, s: int, x: Tensor, gates: Tensor, dense: bool) -> Tensor:
        """``Σ_e gates[:, e] · f_e(x)``, running each expert only on its samples when sparse."""
        out: Tensor | None = None
        for e, expert in enumerate(self.experts[s]):
            if dense:
                term = gates[:, e].view(-1, 1, 1, 1) * expert(x)
                out = term if out is None else out + term
                continue
            idx = (gates[:, e] > 0).nonzero(as_tuple=True)[0]
            if idx.numel() == 0:
                continue
            y = gates[idx, e].view(-1, 1, 1, 1) * expert(x.index_select(0, idx))
            if out is None:
                out = y.new_zeros((x.shape[0], *y.shape[1:]))
            out = out.index_add(0, idx, y)
        assert out is not None  # top_k >= 1: every sample selects at least one expert
        return out

    def forward(self, features: list[Tensor]) -> list[Tensor]:
        """Fuse ``feature_info``-ordered maps into one map per scale, finest first.

        A training-mode call advances ``num_train_steps`` by one and stores the scaled balancing
        loss for :meth:`aux_loss`; eval calls change neither.
        """
        grid = self._grid(features)
        dense = self.in_warmup
        batch = grid[0][0].shape[0]
        outs: list[Tensor] = []
        losses: list[Tensor] = []
        self._last_gates = []
        for s, taps in enumerate(self.scale_taps):
            x = torch.cat([torch.cat([row[li] for li in taps], dim=1) for row in grid], dim=0)
            probs, gates = self._route(s, x, dense)
            y = self._mix(s, x, gates, dense)
            outs.append(y.view(self.num_timesteps, batch, *y.shape[1:]).mean(dim=0))
            losses.append(load_balancing_loss(probs, gates, self.balance_loss))
            with torch.no_grad():
                self._last_gates.append(gates.detach())
                self.last_usage[s] = gates.mean(dim=0).to(self.last_usage.dtype)
                self.last_selection[s] = (gates > 0).float().mean(dim=0)
        if self.training:
            self._aux = self.balance_coef * torch.stack(losses).mean()
            self.num_train_steps += 1
        return outs

    def __getstate__(self) -> dict[str, object]:
        # The stored loss is a graph node; deepcopy/pickle of such a tensor fails, so drop it.
        state = self.__dict__.copy()
        state["_aux"] = None
        return state

    def aux_loss(self) -> Tensor:
        """``balance_coef`` x balancing loss of the last training forward (0 before the first)."""
        if self._aux is None:
            return super().aux_loss()
        return self._aux

    def last_gates(self) -> list[Tensor]:
        """Gates of the last forward per scale, ``(T·B, E)`` (timestep-major), detached."""
        return list(self._last_gates)

    def interpretable_weights(self) -> dict[str, Tensor]:
        """``expert_usage``: mean gate per (scale, expert) in the last forward (rows sum to 1);
        ``expert_selection``: share of samples that used each expert."""
        return {
            "expert_usage": self.last_usage.detach().cpu().clone(),
            "expert_selection": self.last_selection.detach().cpu().clone(),
        }

    def weight_axes(self) -> dict[str, tuple[list[str], list[str]]]:
        """Rows are scales (``1/8``...), columns experts (``e0``...)."""
        rows = [f"1/{r}" for r in self.out_reductions]
        cols = [f"e{e}" for e in range(self.num_experts)]
        return {"expert_usage": (rows, cols), "expert_selection": (rows, cols)}


__all__ = ["MoEFusion", "load_balancing_loss"]
