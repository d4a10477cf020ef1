"""Fit then test a task in Python: the code path of ``satdifuser fit`` + ``test`` without YAML.

``demo`` and the benchmarks call :func:`fit_and_test`; it builds a Lightning ``Trainer`` with
the defaults of the CLI (no pickled checkpoints: the best epoch is kept as ``best.safetensors``
and as the :class:`~satdifuser.model.SatDiFuserModel` folder ``model/``), trains, reloads the best
epoch and tests it. There is no second training loop: the task, its model and the data module
are the same objects the CLI instantiates from a config.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from satdifuser.tasks.base import BaseTask
from satdifuser.tasks.checkpoint import BEST_NAME, load_trainable


@dataclass
class RunResult:
    """What one fit + test produced."""

    test: dict[str, float | None]
    val: dict[str, float | None]
    confusion: Tensor | None
    best_epoch: int | None
    seconds: dict[str, float] = field(default_factory=dict)
    model_dir: Path | None = None


def fit_and_test(
    task: BaseTask,
    datamodule: Any,
    out: str | Path,
    *,
    max_epochs: int,
    check_val_every_n_epoch: int = 1,
    seed: int = 0,
    progress: bool = True,
    test: bool = True,
) -> RunResult:
    """Train ``task`` on ``datamodule``, keep the best validation epoch, test it.

    Args:
        task: A satdifuser task (its fusion, head and standardiser train).
        datamodule: A data module with ``train``/``val``/``test`` (e.g. a ``CachedDataModule``).
        out: Run folder: ``best.safetensors``, ``best.json`` and ``model/`` are written there.
        max_epochs: Training epochs.
        check_val_every_n_epoch: Validation period (the last epoch is always validated).
        seed: ``seed_everything`` seed (initialisation and batch order).
        progress: Show Lightning's progress bar.
        test: Also test the best epoch.
    """
    out = Path(out)
    with _quiet_lightning():
        return _fit_and_test(task, datamodule, out, max_epochs, check_val_every_n_epoch, seed,
                             progress, test)  # fmt: skip


def score_fitted(task: BaseTask, datamodule: Any) -> None:
    """Test a task that :func:`fit_and_test` trained (``fit_and_test(..., test=False)``) on its
    trainer, as quietly as the fit: results land in ``task.results["test"]`` and
    ``task.confusion["test"]``."""
    with _quiet_lightning():
        _test(task, datamodule)


def _test(task: BaseTask, datamodule: Any) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*LeafSpec.*")
        task.trainer.test(task, datamodule=datamodule, verbose=False)


def seed_init(seed: int) -> None:
    """Seed every RNG before a task is built, as ``satdifuser fit`` does (``seed_everything``),
    so that the seed decides the initialisation of fusion and head, not only the batch order."""
    from lightning.pytorch import seed_everything

    with _quiet_lightning():
        seed_everything(seed, workers=True, verbose=False)


@contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Lightning's INFO lines (GPU available: False, tips) are noise in a CPU demo."""
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _fit_and_test(task: BaseTask, datamodule: Any, out: Path, max_epochs: int,
                  check_val_every_n_epoch: int, seed: int, progress: bool, test: bool
                  ) -> RunResult:  # fmt: skip
    from lightning.pytorch import Trainer, seed_everything

    seed_everything(seed, workers=True, verbose=False)
    trainer = Trainer(
        max_epochs=max_epochs,
        default_root_dir=str(out),
        enable_checkpointing=False,
        logger=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        check_val_every_n_epoch=check_val_every_n_epoch,
        num_sanity_val_steps=0,
        accelerator="cpu",
        devices=1,
    )
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*in eval mode.*")
        warnings.filterwarnings("ignore", ".*LeafSpec.*")
        trainer.fit(task, datamodule=datamodule)
    seconds["fit"] = time.perf_counter() - t0
    best = out / BEST_NAME
    meta = load_trainable(task, best) if best.is_file() else {}
    val = dict(task.results.get("val", {}))
    result = RunResult({}, val, None, int(meta["epoch"]) + 1 if "epoch" in meta else None,
                       seconds, out / "model" if (out / "model").is_dir() else None)  # fmt: skip
    if test:
        t0 = time.perf_counter()
        _test(task, datamodule)
        seconds["test"] = time.perf_counter() - t0
        result.test = dict(task.results.get("test", {}))
        result.confusion = task.confusion.get("test")
    return result


__all__ = ["RunResult", "fit_and_test", "score_fitted", "seed_init"]
