"""Noising for feature extraction: the forward process, prediction conversions, DDIM inversion.

All formulas use ``alphas_cumprod`` (written a_t) of the backbone's training schedule:

- forward process: ``x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) eps`` (= diffusers' ``add_noise``);
- epsilon from the model output: epsilon as is; v: ``eps = sqrt(a_t) v + sqrt(1 - a_t) x_t``;
  sample (x0): ``eps = (x_t - sqrt(a_t) x0) / sqrt(1 - a_t)``;
- DDIM step (eta 0), either direction: ``x0 = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t)``,
  ``x_t' = sqrt(a_t') x0 + sqrt(1 - a_t') eps``.

DDIM inversion walk (:func:`inversion_schedule`): the clean latent is taken as x at t = 0; the
UNet is called at t = 0, then at every point of the grid ``offset, offset + stride, ...`` (stride =
1000 / inversion steps, offset = requested timesteps mod stride) up to the largest requested
timestep, each call's epsilon moving the latent to the next grid point. Features at t come from
the call at t on the inverted latent x_t. With the defaults (t = 21, 61, 161, 50 steps) that is
10 UNet calls at t = 0, 1, 21, ..., 161, like the SatDiFuser reference (which calls its first
step at t = -1 and treats v as epsilon; ``method.md`` section 4).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from satdifuser.errors import ConfigError


def _expand(values: Tensor, like: Tensor) -> Tensor:
    return values.to(device=like.device, dtype=torch.float32).reshape(-1, *([1] * (like.ndim - 1)))


def draw_noise(shape: Sequence[int], count: int, seed: int) -> Tensor:
    """``count`` standard-normal draws of ``shape`` from a CPU generator seeded ``seed``.

    Deterministic for a given (seed, count, shape), independent of the batch and the device.
    Returns (count, *shape) float32.
    """
    gen = torch.Generator("cpu").manual_seed(seed)
    return torch.randn((count, *shape), generator=gen, dtype=torch.float32)


def add_noise(x0: Tensor, noise: Tensor, alphas_cumprod: Tensor, timesteps: Tensor) -> Tensor:
    """Forward process ``sqrt(a_t) x0 + sqrt(1 - a_t) noise`` per sample (t: (N,) long)."""
    a = _expand(alphas_cumprod[timesteps.cpu()], x0)
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def to_epsilon(model_output: Tensor, x_t: Tensor, alpha_t: Tensor, prediction_type: str) -> Tensor:
    """Convert a model output to epsilon (``alpha_t``: a_t per sample, (N,) or scalar)."""
    out = model_output.float()
    a = _expand(torch.as_tensor(alpha_t).reshape(-1), out)
    if prediction_type == "epsilon":
        return out
    if prediction_type == "v_prediction":
        return a.sqrt() * out + (1 - a).sqrt() * x_t
    if prediction_type == "sample":
        return (x_t - a.sqrt() * out) / (1 - a).sqrt()
    raise ConfigError(
        f"unknown prediction_type {prediction_type!r}; use epsilon, v_prediction or sample"
    )


def ddim_step(x_t: Tensor, eps: Tensor, alpha_t: Tensor, alpha_next: Tensor) -> Tensor:
    """One deterministic DDIM (eta 0) move from noise level a_t to a_next (up or down)."""
    a = _expand(torch.as_tensor(alpha_t).reshape(-1), x_t)
    an = _expand(torch.as_tensor(alpha_next).reshape(-1), x_t)
    x0 = (x_t - (1 - a).sqrt() * eps) / a.sqrt()
    return an.sqrt() * x0 + (1 - an).sqrt() * eps


def inversion_schedule(
    timesteps: Sequence[int], steps: int = 50, num_train_timesteps: int = 1000
) -> list[int]:
    """UNet call timesteps of the DDIM inversion walk reaching every requested timestep.

    Args:
        timesteps: Requested timesteps; all must lie on one grid ``offset + k * stride``.
        steps: Number of inversion steps over the whole schedule (stride = 1000 // steps).
        num_train_timesteps: Length of the training schedule.

    Returns:
        Increasing call timesteps, starting at 0 and ending at ``max(timesteps)``.

    Raises:
        ConfigError: timesteps off one grid, or steps not dividing the schedule.
    """
    if steps < 1 or num_train_timesteps % steps:
        raise ConfigError(
            f"inversion_steps={steps} must divide the {num_train_timesteps}-step schedule "
            "(e.g. 50, 100, 250)"
        )
    stride = num_train_timesteps // steps
    offsets = {t % stride for t in timesteps}
    if len(offsets) != 1:
        raise ConfigError(
            f"ddim_inversion timesteps {list(timesteps)} are not on one grid of stride {stride} "
            f"(inversion_steps={steps}); choose timesteps with the same remainder mod {stride}, "
            "e.g. 21, 61, 161"
        )
    offset = offsets.pop()
    grid = list(range(offset, max(timesteps) + 1, stride))
    return grid if offset == 0 else [0, *grid]


__all__ = [
    "add_noise",
    "ddim_step",
    "draw_noise",
    "inversion_schedule",
    "to_epsilon",
]
