"""The reference's feature pipeline as a baseline: per-batch recomputation, full maps.

The reference implementation (``method.md`` sections 1, 4, 11) extracts features inside the
training loop: every batch of every epoch, training and validation alike, encodes its images
(VAE posterior *sample*) and runs 10 full DDIM-inversion UNet passes at t = -1, 1, 21, ..., 161,
reading the taps at 21/61/161. Nothing is cached and the maps are never pooled.

- :class:`ReferenceStyleExtractor` is that per-batch extraction with the taps, working size and
  output order of a :class:`~satdifuser.features.FeatureExtractor`, so the same fusion and head
  consume either.
- :func:`reference_probe` is the reference's training protocol around it: one fusion + head
  (a task's, with its optimiser and warm-up/cosine schedule), features recomputed in every
  batch of every epoch, validated every epoch. It is a training loop of its own on purpose: it
  *is* the baseline that ``satdifuser bench probe_speed`` times against the library path
  (extract once into the cache, train with ``tasks.fit_and_test``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from satdifuser.errors import ConfigError
from satdifuser.features.extractor import FeatureExtractor
from satdifuser.features.taps import installed_taps, latent_sizes, to_map

REFERENCE_CALLS = (-1, 1, 21, 41, 61, 81, 101, 121, 141, 161)
"""UNet calls of the reference's DDIM inversion (``method.md`` section 4)."""

REFERENCE_TIMESTEPS = (21, 61, 161)
"""Timesteps whose taps the reference reads."""


class ReferenceStyleExtractor(nn.Module):
    """The reference's per-batch extraction with a :class:`FeatureExtractor`'s taps and order.

    Args:
        fx: The extractor whose backbone, taps, working size, prompt and ``feature_info`` are
            reused; its timesteps must be among :data:`REFERENCE_CALLS` (the reference reads
            21, 61 and 161). Its ``pool`` is ignored: the reference keeps full maps.
        seed: Seed of the VAE posterior sample.

    Raises:
        ConfigError: A timestep of ``fx`` is not one the inversion visits.

    .. versionadded:: 0.2
    """

    def __init__(self, fx: FeatureExtractor, seed: int = 42) -> None:
        super().__init__()
        missing = sorted({f.timestep for f in fx.feature_info} - set(REFERENCE_CALLS))
        if missing:
            raise ConfigError(
                f"the reference's inversion visits t = {list(REFERENCE_CALLS)}; the extractor's "
                f"timesteps {missing} are not among them "
                f"(use timesteps={list(REFERENCE_TIMESTEPS)})"
            )
        self._fx = (fx,)  # not a submodule: frozen, and kept out of state_dict
        self.seed = seed
        self.feature_info = list(fx.feature_info)

    @property
    def fx(self) -> FeatureExtractor:
        """The wrapped extractor."""
        return self._fx[0]

    def forward(self, images: Tensor, meta: Tensor | None = None) -> list[Tensor]:
        """(B, 3, H, W) in [0, 1] -> full maps in ``feature_info`` order (10 UNet passes)."""
        fx = self.fx
        bb = fx.backbone
        wanted = {f.timestep for f in self.feature_info}
        with torch.inference_mode():
            x = bb.encode(fx.prepare(images), "sample", self.seed).float()
            sizes = latent_sizes(x.shape[-2], x.shape[-1], len(bb.unet.down_blocks))  # type: ignore[arg-type]
            n = x.shape[0]
            cond = fx._prompt
            ehs = None if cond is None else cond.expand(n, -1, -1)
            labels = bb.metadata_labels(None, n, use_metadata=False)
            alphas = bb.alphas_cumprod.float()
            found: dict[int, dict[str, Tensor]] = {}
            for i, t in enumerate(REFERENCE_CALLS):
                taps = fx.tap_names if t in wanted else []
                with installed_taps(bb.unet, taps) as store:
                    eps = bb.unet_forward(x, torch.full((n,), t), ehs, labels).float()
                if t in wanted:
                    found[t] = {k: to_map(v.float(), sizes) for k, v in store.items()}
                t_next = REFERENCE_CALLS[i + 1] if i + 1 < len(REFERENCE_CALLS) else t + 20
                a = alphas[t] if t >= 0 else torch.tensor(1.0)
                a_next = alphas[t_next]
                x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
                x = a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps
        return [found[f.timestep][f.tap].clone() for f in self.feature_info]


@dataclass
class ReferenceProbeResult:
    """Wall and process-CPU seconds of :func:`reference_probe`, summed over its epochs.

    ``epoch_s`` holds each epoch's wall seconds (training + validation); ``val_accuracy`` each
    epoch's validation accuracy.
    """

    train_s: float = 0.0
    val_s: float = 0.0
    train_cpu_s: float = 0.0
    val_cpu_s: float = 0.0
    epoch_s: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)

    @property
    def wall_s(self) -> float:
        """Training + validation wall seconds."""
        return self.train_s + self.val_s

    @property
    def cpu_s(self) -> float:
        """Training + validation process CPU seconds."""
        return self.train_cpu_s + self.val_cpu_s


def _batches(loader: Iterable[Any]) -> Iterable[tuple[Tensor, Tensor]]:
    for batch in loader:
        if isinstance(batch, dict):
            yield batch["image"], batch["label"]
        else:
            yield batch[0], batch[1]


def reference_probe(
    task: Any,
    extractor: Callable[[Tensor], list[Tensor]],
    train: Iterable[Any],
    val: Iterable[Any],
    epochs: int,
    on_epoch: Callable[[int, ReferenceProbeResult], None] | None = None,
) -> ReferenceProbeResult:
    """Train ``task``'s fusion + head the reference's way: features recomputed in every batch.

    Each epoch runs ``extractor`` on every training batch (then one optimiser step) and on every
    validation batch (then the accuracy). The optimiser and per-epoch learning rates are the
    task's own (``configure_optimizers``: Adam, warm-up + cosine over ``epochs``), so the model
    and recipe match a ``tasks.fit_and_test`` run of the same task; the task's standardiser is
    applied as configured (the reference has none: build the task with ``standardize=False``).

    Args:
        task: A :class:`~satdifuser.tasks.ClassificationTask` (its ``forward_features``,
            ``loss_fn``, ``trainable_parameters`` and ``configure_optimizers`` are used).
        extractor: Images -> maps in the task's ``feature_info`` order, e.g.
            :class:`ReferenceStyleExtractor`.
        train: Batches of ``{"image", "label"}`` dicts or ``(image, label)`` pairs.
        val: Validation batches, same form.
        epochs: Epochs to run (and length of the learning-rate schedule).
        on_epoch: Called after each epoch with its index and the running totals (progress,
            estimates of the remaining time).

    Raises:
        ConfigError: ``epochs`` below 1 or a standardiser that is on but not fitted.
    """
    if epochs < 1:
        raise ConfigError(f"epochs={epochs} must be >= 1")
    std = getattr(task, "standardizer", None)
    if std is not None and std.enabled and not std.is_fitted:
        raise ConfigError(
            "the task standardises its inputs but the standardiser is not fitted; the reference "
            "protocol has no standardiser: build the task with standardize=False"
        )
    if task.hparams.get("schedule_epochs") is None:
        task.hparams["schedule_epochs"] = epochs
    conf = task.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    out = ReferenceProbeResult()
    for epoch in range(epochs):
        start, cpu = time.perf_counter(), time.process_time()
        task.fusion.train()
        task.head.train()
        for images, y in _batches(train):
            logits = task.forward_features(extractor(images))
            loss = task.loss_fn(logits.float(), y.long())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
        mid, mid_cpu = time.perf_counter(), time.process_time()
        out.train_s += mid - start
        out.train_cpu_s += mid_cpu - cpu
        task.fusion.eval()
        task.head.eval()
        right = total = 0
        with torch.no_grad():
            for images, y in _batches(val):
                pred = task.forward_features(extractor(images)).argmax(1)
                right += int((pred == y.long()).sum())
                total += len(y)
        out.val_s += time.perf_counter() - mid
        out.val_cpu_s += time.process_time() - mid_cpu
        out.epoch_s.append(time.perf_counter() - start)
        out.val_accuracy.append(right / max(total, 1))
        if on_epoch is not None:
            on_epoch(epoch, out)
    return out


__all__ = [
    "REFERENCE_CALLS",
    "REFERENCE_TIMESTEPS",
    "ReferenceProbeResult",
    "ReferenceStyleExtractor",
    "reference_probe",
]
