"""Logistic-regression probe on globally pooled cached features (the classic frozen-feature
baseline): deterministic, with the L2 strength chosen on validation accuracy."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from satdifuser.baselines.results import BaselineResult, scores
from satdifuser.errors import ConfigError


def pooled_vectors(data: Any, maps: Sequence[int] | None = None) -> tuple[Tensor, Tensor]:
    """``(x (N, sum C), y (N,))``: every map of a cached split globally average-pooled.

    Args:
        data: A split held in memory by the library's cache reader
            (:class:`~satdifuser.features.cache_memory.InMemoryFeatures`, or a
            :class:`~satdifuser.features.cache_view.FeatureRows` view of one).
        maps: Indices of the maps to pool (None: all).

    Raises:
        ConfigError: the split stores no class labels.
    """
    if "label" not in data.targets:
        raise ConfigError("the cached split stores no class labels; a probe needs 'label'")
    chosen = range(len(data.maps)) if maps is None else maps
    x = torch.cat([data.maps[i].float().mean(dim=(2, 3)) for i in chosen], dim=1)
    return x, data.targets["label"].long().reshape(-1)


def _fit_logistic(x: Tensor, y: Tensor, k: int, l2: float, max_iter: int) -> nn.Linear:
    """Multinomial logistic regression, mean cross-entropy + ``l2/2 * |W|^2``, full-batch L-BFGS."""
    lin = nn.Linear(x.shape[1], k)
    nn.init.zeros_(lin.weight)
    nn.init.zeros_(lin.bias)
    opt = torch.optim.LBFGS(
        lin.parameters(),
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=1e-5,
        tolerance_change=1e-7,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(lin(x), y) + 0.5 * l2 * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return lin


def linear_probe(
    train: tuple[Tensor, Tensor],
    val: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    class_names: Sequence[str],
    l2_grid: Sequence[float] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0),
    max_iter: int = 200,
) -> BaselineResult:
    """Logistic regression on pooled vectors; the L2 strength is chosen on ``val`` accuracy.

    Features are standardised with the training mean and std. Deterministic (zero init,
    full-batch L-BFGS), so seeds do not change it.

    Args:
        train: ``(x (N, d), y (N,))`` (see :func:`pooled_vectors`); val and test alike.
        class_names: K class names.
        l2_grid: Candidate L2 strengths (on the mean loss; sklearn's ``C = 1 / (l2 * N)``).
        max_iter: L-BFGS iterations.
    """
    t0 = time.perf_counter()
    (xtr, ytr), (xva, yva), (xte, yte) = train, val, test
    mean, std = xtr.mean(0, keepdim=True), xtr.std(0, keepdim=True).clamp_min(1e-6)

    def norm(x: Tensor) -> Tensor:
        return (x.float() - mean) / std

    xtr_n, xva_n, xte_n = norm(xtr), norm(xva), norm(xte)
    k = len(class_names)
    best: tuple[float, float, nn.Linear] | None = None
    with torch.random.fork_rng(devices=[]):
        for l2 in l2_grid:
            lin = _fit_logistic(xtr_n, ytr, k, l2, max_iter)
            with torch.no_grad():
                acc = float((lin(xva_n).argmax(1) == yva).float().mean())
            if best is None or acc > best[0]:
                best = (acc, l2, lin)
    if best is None:
        raise ConfigError("l2_grid is empty; give at least one L2 strength")
    with torch.no_grad():
        preds = best[2](xte_n).argmax(1)
    metrics, confusion = scores(preds, yte, class_names)
    return BaselineResult(
        metrics,
        confusion,
        time.perf_counter() - t0,
        val_accuracy=best[0],
        extra={"l2": best[1], "dim": int(xtr.shape[1])},
    )


__all__ = ["linear_probe", "pooled_vectors"]
