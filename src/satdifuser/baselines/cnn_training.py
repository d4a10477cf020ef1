"""Training of the small CNN from scratch (the "no pre-training at all" baseline).

Images are held in memory as uint8 (EuroSAT: 64 px RGB), flipped at random, and the best
validation epoch is tested, with the metric definitions of ``satdifuser.tasks.metrics``.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from satdifuser.baselines.results import BaselineResult, scores
from satdifuser.baselines.small_cnn import SmallCNN

Progress = Callable[[int, int], None] | None
"""Optional callback ``(done, total)`` of training epochs."""


@dataclass(frozen=True)
class CNNConfig:
    """Recipe of the small CNN trained from scratch (random h/v flips, Adam, cosine).

    Args:
        width: Channels of the first stage of :class:`~satdifuser.baselines.SmallCNN`.
        epochs: Training epochs (before ``min_steps``).
        min_steps: Lower bound on optimiser steps (small budgets get more epochs).
        batch_size: Images per step.
        lr: Peak Adam learning rate.
        weight_decay: Adam weight decay.
        eval_every: Validate every this many epochs (and after the last).
    """

    width: int = 16
    epochs: int = 15
    min_steps: int = 150
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 5e-4
    eval_every: int = 5

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for result files)."""
        return asdict(self)


def epochs_for(n: int, epochs: int, batch_size: int, min_steps: int) -> int:
    """``epochs``, raised so that training on ``n`` samples makes at least ``min_steps`` steps."""
    steps = max(1, math.ceil(n / batch_size))
    return max(epochs, math.ceil(min_steps / steps))


def load_images(dataset: Any, batch_size: int = 256) -> tuple[Tensor, Tensor]:
    """All images of a classification dataset as uint8 ``(N, 3, H, W)`` and labels ``(N,)``."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    xs, ys = [], []
    for batch in loader:
        xs.append((batch["image"] * 255).round().clamp(0, 255).to(torch.uint8))
        ys.append(batch["label"].long().reshape(-1))
    return torch.cat(xs), torch.cat(ys)


def _flip(x: Tensor, gen: torch.Generator) -> Tensor:
    n = x.shape[0]
    h = torch.rand(n, generator=gen) < 0.5
    v = torch.rand(n, generator=gen) < 0.5
    x = torch.where(h.view(-1, 1, 1, 1), x.flip(-1), x)
    return torch.where(v.view(-1, 1, 1, 1), x.flip(-2), x)


@torch.no_grad()
def _predict_images(model: nn.Module, images: Tensor, batch: int = 256) -> Tensor:
    model.eval()
    return torch.cat([model(x.float() / 255).argmax(1) for x in images.split(batch)])


def train_small_cnn(
    train: tuple[Tensor, Tensor],
    val: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    cfg: CNNConfig,
    seed: int,
    class_names: Sequence[str],
    progress: Progress = None,
) -> BaselineResult:
    """Train :class:`~satdifuser.baselines.SmallCNN` from scratch on uint8 images (N, 3, H, W).

    Selects the best validation epoch (checked every ``eval_every`` epochs) and tests it.
    ``seed`` sets the initialisation, flips and batch order (the global RNG is left untouched).
    """
    t0 = time.perf_counter()
    (xtr, ytr), (xva, yva), (xte, yte) = train, val, test
    epochs = epochs_for(len(ytr), cfg.epochs, cfg.batch_size, cfg.min_steps)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SmallCNN(len(class_names), width=cfg.width)
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
        best, best_acc, best_epoch = None, -1.0, -1
        for epoch in range(epochs):
            model.train()
            for idx in torch.randperm(len(ytr), generator=gen).split(cfg.batch_size):
                x = _flip(xtr[idx].float() / 255, gen)
                loss = F.cross_entropy(model(x), ytr[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            sched.step()
            if (epoch + 1) % cfg.eval_every == 0 or epoch == epochs - 1:
                acc = float((_predict_images(model, xva) == yva).float().mean())
                if acc > best_acc:
                    best_acc, best_epoch, best = acc, epoch, copy.deepcopy(model.state_dict())
            if progress is not None:
                progress(epoch + 1, epochs)
        if best is not None:
            model.load_state_dict(best)
        preds = _predict_images(model, xte)
    metrics, confusion = scores(preds, yte, class_names)
    return BaselineResult(
        metrics,
        confusion,
        time.perf_counter() - t0,
        best_epoch=best_epoch + 1,
        val_accuracy=best_acc,
        extra={"epochs": epochs, "params": sum(p.numel() for p in model.parameters())},
    )


__all__ = ["CNNConfig", "epochs_for", "load_images", "train_small_cnn"]
