"""Exponential moving average of model weights with a warm-up decay."""

from __future__ import annotations

import torch
from torch import nn


def ema_decay(step: int, max_decay: float) -> float:
    """Decay after optimiser step ``step`` (0-based): ``min(max_decay, (1+step)/(10+step))``.

    A fixed 0.999 over a few hundred steps would keep most of the random init; the warm-up lets
    the average follow the fast early changes.
    """
    return min(max_decay, (1.0 + step) / (10.0 + step))


class EMAWeights:
    """fp32 shadow copy of a module's floating-point parameters and buffers."""

    def __init__(self, model: nn.Module, max_decay: float):
        self.max_decay = max_decay
        self.shadow: dict[str, torch.Tensor] = {
            k: v.detach().float().clone()
            for k, v in model.state_dict().items()
            if v.is_floating_point()
        }

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> float:
        """Blend the current weights in after optimiser step ``step``; returns the decay used."""
        decay = ema_decay(step, self.max_decay)
        for k, v in model.state_dict().items():
            if k in self.shadow:
                self.shadow[k].lerp_(v.detach().float(), 1.0 - decay)
        return decay

    def copy_to(self, model: nn.Module) -> None:
        """Load the averaged weights into ``model`` (non-float entries are left as they are)."""
        state = model.state_dict()
        state.update({k: v.to(state[k].dtype) for k, v in self.shadow.items()})
        model.load_state_dict(state)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The shadow tensors (for safetensors)."""
        return self.shadow

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore shadow tensors; keys and shapes must match exactly."""
        if set(tensors) != set(self.shadow):
            missing = sorted(set(self.shadow) - set(tensors))[:3]
            extra = sorted(set(tensors) - set(self.shadow))[:3]
            raise KeyError(f"EMA keys differ (missing {missing}, unexpected {extra})")
        wrong = [k for k in self.shadow if tuple(tensors[k].shape) != tuple(self.shadow[k].shape)]
        if wrong:
            k = wrong[0]
            raise KeyError(
                f"EMA tensor {k} has shape {tuple(tensors[k].shape)}, "
                f"expected {tuple(self.shadow[k].shape)}"
            )
        self.shadow = {k: tensors[k].float().clone() for k in self.shadow}
