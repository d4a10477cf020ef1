"""The paper's learning-rate schedule: linear warm-up, then cosine decay, stepped once per epoch.

SatDiFuser's ``WarmupCosineDecayScheduler`` (method.md section 9): epoch 0 runs at
``warmup_start_lr`` (2e-5), the rate rises linearly to the base rate (1e-2) reached at epoch
``warmup_epochs`` (5), then follows a half cosine down to ``min_lr`` (1e-5) at epoch
``max_epochs`` (40) and stays there.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from satdifuser.errors import ConfigError


def warmup_cosine_lr(
    epoch: int,
    base_lr: float,
    warmup_epochs: int = 5,
    warmup_start_lr: float = 2e-5,
    max_epochs: int = 40,
    min_lr: float = 1e-5,
) -> float:
    """Learning rate of (0-based) ``epoch``.

    Args:
        epoch: Epoch index, 0 for the first epoch.
        base_lr: Peak rate, reached at ``epoch == warmup_epochs``.
        warmup_epochs: Length of the linear warm-up (0 for none).
        warmup_start_lr: Rate of epoch 0 when warming up.
        max_epochs: Epoch at which the cosine reaches ``min_lr``.
        min_lr: Final rate.
    """
    if epoch < warmup_epochs:
        return warmup_start_lr + (base_lr - warmup_start_lr) * epoch / warmup_epochs
    span = max_epochs - warmup_epochs
    if span <= 0:
        return base_lr
    progress = min(1.0, (epoch - warmup_epochs) / span)
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def check_schedule(
    base_lr: float, warmup_epochs: int, warmup_start_lr: float, max_epochs: int, min_lr: float
) -> None:
    """Validate schedule arguments.

    Raises:
        ConfigError: a non-positive rate, negative epochs, or ``min_lr``/``warmup_start_lr`` above
            ``base_lr``.
    """
    if base_lr <= 0:
        raise ConfigError(f"lr={base_lr} must be > 0; the paper uses lr: 0.01")
    if warmup_epochs < 0 or max_epochs < 1:
        raise ConfigError(
            f"warmup_epochs={warmup_epochs} must be >= 0 and max_epochs={max_epochs} >= 1 "
            "(the paper: 5 and 40)"
        )
    for name, value in (("warmup_start_lr", warmup_start_lr), ("min_lr", min_lr)):
        if value < 0 or value > base_lr:
            raise ConfigError(
                f"{name}={value} must lie in [0, lr={base_lr}]; the paper uses 2e-5 and 1e-5"
            )


def warmup_cosine_scheduler(
    optimizer: Optimizer,
    warmup_epochs: int = 5,
    warmup_start_lr: float = 2e-5,
    max_epochs: int = 40,
    min_lr: float = 1e-5,
) -> LambdaLR:
    """A ``LambdaLR`` applying :func:`warmup_cosine_lr` to each group's initial rate.

    Step it once per epoch (Lightning: ``interval: "epoch"``).
    """
    base = [g["lr"] for g in optimizer.param_groups]
    for lr in base:
        check_schedule(lr, warmup_epochs, warmup_start_lr, max_epochs, min_lr)

    def factor(group: int) -> object:
        return lambda epoch: (
            warmup_cosine_lr(epoch, base[group], warmup_epochs, warmup_start_lr, max_epochs, min_lr)
            / base[group]
        )

    return LambdaLR(optimizer, [factor(i) for i in range(len(base))])  # type: ignore[arg-type]


__all__ = ["check_schedule", "warmup_cosine_lr", "warmup_cosine_scheduler"]
