"""The CPU-sized training recipe of the benchmarks and the demo, as a satdifuser task.

There is no training loop here: :func:`classification_task` configures a
:class:`~satdifuser.tasks.ClassificationTask` (standardiser + fusion + linear head on a frozen
extractor) and :func:`fit_task` trains and tests it with ``tasks.fit_and_test`` (the code path of
``satdifuser fit`` / ``test``), validating every epoch and testing the best one.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from torch import nn

from satdifuser.baselines.cnn_training import epochs_for
from satdifuser.errors import ConfigError


@dataclass(frozen=True)
class ProbeConfig:
    """Training recipe of fusion + linear head on cached features.

    Defaults are sized for 2 CPU cores, smaller than the paper's (projection 384, bottleneck 96,
    32 groups, 40 epochs, 8 experts): ``projection_dim`` 64, ``bottleneck_dim`` 32, 8 groups,
    30 epochs (at least ``min_steps`` optimiser steps for small label budgets), MoE with 4
    experts (top 2) and a dense warm-up of a third of the steps (at most 300, the paper's).
    The model is validated every epoch and the best epoch on validation accuracy is tested.

    Args:
        fusion: Registry name: ``concat``, ``global_weighted``, ``local_weighted``, ``moe``.
        projection_dim: Output channels of the fuser (D).
        bottleneck_dim: Inner width of the projection blocks (b).
        num_groups: GroupNorm groups.
        epochs: Training epochs (before ``min_steps``).
        min_steps: Lower bound on optimiser steps (small budgets get more epochs).
        batch_size: Samples per step.
        lr: Peak Adam learning rate (the paper: 1e-2).
        min_lr: Final rate of the cosine.
        warmup_epochs: Linear warm-up epochs from 2e-5 (None: an eighth of the epochs).
        weight_decay: Adam weight decay.
        num_experts: MoE experts per scale.
        top_k: MoE experts per sample after the warm-up.
        standardize: Standardise every input channel with the mean and std of the labelled
            training rows (the task's ``standardize`` option). Raw diffusion maps differ in scale
            by orders of magnitude between taps; without it the fusers train poorly in few
            epochs.
    """

    fusion: str = "global_weighted"
    projection_dim: int = 64
    bottleneck_dim: int = 32
    num_groups: int = 8
    epochs: int = 30
    min_steps: int = 150
    batch_size: int = 64
    lr: float = 1e-2
    min_lr: float = 1e-5
    warmup_epochs: int | None = None
    weight_decay: float = 0.0
    num_experts: int = 4
    top_k: int = 2
    standardize: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for result files)."""
        return asdict(self)


def fusion_args(cfg: ProbeConfig, total_steps: int) -> dict[str, Any]:
    """Constructor arguments of the fuser named by ``cfg.fusion``."""
    if cfg.fusion == "concat":
        return {"projection_dim": cfg.projection_dim, "num_groups": cfg.num_groups}
    kw: dict[str, Any] = {
        "projection_dim": cfg.projection_dim,
        "bottleneck_dim": cfg.bottleneck_dim,
        "num_groups": cfg.num_groups,
    }
    if cfg.fusion == "moe":
        kw.update(
            num_experts=cfg.num_experts,
            top_k=min(cfg.top_k, cfg.num_experts),
            warmup_steps=min(300, total_steps // 3),
        )
    return kw


def classification_task(
    extractor: nn.Module, cfg: ProbeConfig, num_classes: int, n_train: int
) -> tuple[Any, int]:
    """The task of ``cfg`` on ``extractor`` for ``n_train`` labelled samples, and its epochs.

    Raises:
        ConfigError: epochs or batch size below 1.
    """
    from satdifuser.tasks import ClassificationTask

    if cfg.epochs < 1 or cfg.batch_size < 1:
        raise ConfigError(f"epochs={cfg.epochs}, batch_size={cfg.batch_size} must be >= 1")
    epochs = epochs_for(n_train, cfg.epochs, cfg.batch_size, cfg.min_steps)
    steps = epochs * math.ceil(n_train / cfg.batch_size)
    warmup = cfg.warmup_epochs if cfg.warmup_epochs is not None else max(1, epochs // 8)
    task = ClassificationTask(
        extractor, num_classes, fusion=cfg.fusion, fusion_args=fusion_args(cfg, steps),
        head="linear", lr=cfg.lr, min_lr=cfg.min_lr, weight_decay=cfg.weight_decay,
        warmup_epochs=min(warmup, max(0, epochs - 1)), warmup_start_lr=min(2e-5, cfg.lr),
        early_stopping_patience=None, standardize=cfg.standardize,
    )  # fmt: skip
    task.hparams["max_epochs"] = epochs
    return task, epochs


def fit_task(task: Any, data: Any, out: Path, epochs: int, seed: int) -> dict[str, Any]:
    """Train ``task`` on ``data`` (validated every epoch), test the best epoch; the row fields.

    The run folder ``out`` keeps ``best.safetensors``, ``best.json`` and the saved model
    (``out/model``, loadable by ``SatDiFuserModel.from_pretrained`` for FeatureExtractor models).
    """
    import time

    from satdifuser.tasks import fit_and_test

    t0 = time.perf_counter()
    result = fit_and_test(task, data, out, max_epochs=epochs, seed=seed, progress=False)
    best = out / "best.json"
    val = json.loads(best.read_text()).get("score") if best.is_file() else None
    return {
        "overall_accuracy": float(result.test.get("test/overall_accuracy") or 0.0),
        "f1_macro": float(result.test.get("test/f1_macro") or 0.0),
        "val_accuracy": None if val is None else float(val),
        "best_epoch": result.best_epoch if result.best_epoch is not None else -1,
        "seconds": time.perf_counter() - t0,
        "epochs": epochs,
        "model_dir": str(result.model_dir) if result.model_dir else None,
    }


__all__ = ["ProbeConfig", "classification_task", "epochs_for", "fit_task", "fusion_args"]
