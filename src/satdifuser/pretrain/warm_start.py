"""Warm start of a new pre-training run from an export (``satdifuser pretrain --init-from``).

An export (``unet/`` + ``training.json``, see :mod:`satdifuser.pretrain.export`) keeps the EMA
weights, the step count, the images seen and the run history, but not the optimizer moments or
the RNG states. A warm start therefore continues the *cumulative* record exactly (steps, images,
wall time per hardware, runs, and the data order at that step) while the optimizer restarts,
with a fresh learning-rate warm-up counted from the warm-start step. Each warm start is recorded
in ``totals["warm_starts"]`` so the model card says so.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from satdifuser.errors import CheckpointError, ConfigError
from satdifuser.pretrain.checkpoint import read_json, read_tensors
from satdifuser.pretrain.config import PretrainConfig

TRAINING_FILE = "training.json"
WEIGHTS_FILE = Path("unet") / "diffusion_pytorch_model.safetensors"


@dataclass
class ExportedRun:
    """What an export holds: config, float32 EMA weights and the cumulative record."""

    path: Path
    config: PretrainConfig
    weights: dict[str, torch.Tensor]
    steps: int
    images_seen: int
    pool_size: int
    wall_seconds: dict[str, float]
    runs: list[dict[str, Any]]
    warm_starts: list[dict[str, Any]]
    first_loss: float | None = None


def read_export(path: Path) -> ExportedRun:
    """Read an exported model folder; a missing or damaged part is one clear error."""
    path = Path(path)
    card, weights = path / TRAINING_FILE, path / WEIGHTS_FILE
    if not card.is_file() or not weights.is_file():
        raise CheckpointError(
            f"{path} is not a `satdifuser pretrain --export` folder (needs {TRAINING_FILE} and "
            f"{WEIGHTS_FILE}); pass e.g. src/satdifuser/weights/satdifuser-eurosat-tiny"
        )
    info = read_json(card, "export file")
    tensors = {k: v.float() for k, v in read_tensors(weights, "exported weights").items()}
    try:
        return ExportedRun(
            path=path,
            config=PretrainConfig.from_dict(info["config"], source=str(card)),
            weights=tensors,
            steps=int(info["steps"]),
            images_seen=int(info["images_seen"]),
            pool_size=int(info["pool_size"]),
            wall_seconds={k: float(v) for k, v in info.get("wall_seconds", {}).items()},
            runs=list(info.get("runs", [])),
            warm_starts=list(info.get("warm_starts", [])),
            first_loss=info.get("first_loss"),
        )
    except ConfigError as exc:
        if str(card) in str(exc):
            raise
        raise ConfigError(f"{card} holds an invalid config: {exc}") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(
            f"{card} is unreadable as an export record ({type(exc).__name__}: {exc}); "
            "re-export the run or pick another folder"
        ) from None


def start_position(steps: int, pool_size: int, n: int, batch_size: int) -> tuple[int, int]:
    """``(epoch, position)`` of :class:`BatchOrder` after ``steps`` batches of a pool of ``n``."""
    if pool_size != n:
        raise ConfigError(
            f"the export was trained on a pool of {pool_size} images but {n} were given; "
            "warm-start with the same data (the data order continues from the export's step)"
        )
    per_epoch = n // batch_size
    return steps // per_epoch, (steps % per_epoch) * batch_size


def warm_totals(run: ExportedRun, at: str, new_pool: int | None = None) -> dict[str, Any]:
    """The new run's cumulative totals, continuing the export's and recording the warm start.

    ``new_pool``: the size of the new run's pool when it is other data than the export's.
    """
    note: dict[str, Any] = {
        "from": str(run.path),
        "step": run.steps,
        "at": at,
        "reset": "optimizer moments and RNG states (not in an export); LR warm-up restarted",
    }
    if new_pool is not None:
        note["data"] = f"other data: {new_pool} images (the export's pool had {run.pool_size})"
    return {
        "images_seen": run.images_seen,
        "wall_seconds": dict(run.wall_seconds),
        "runs": copy.deepcopy(run.runs),
        "warm_starts": [*copy.deepcopy(run.warm_starts), note],
        "first_loss": run.first_loss,
    }
