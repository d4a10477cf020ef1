"""Deterministic, seeded data loaders.

Same ``seed`` -> same shuffle order, same random crops and augmentations, for any
``num_workers``: the loader's generator is seeded, each worker reseeds numpy, ``random``, and
the dataset's own generators (``reseed``) from torch's per-worker seed, and with
``num_workers=0`` the dataset is reseeded from ``seed`` when the loader is built.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info


def reseed_dataset(dataset: Any, seed: int) -> None:
    """Call ``dataset.reseed(seed)`` or ``dataset.transforms.reseed(seed)`` when present."""
    if hasattr(dataset, "reseed"):
        dataset.reseed(seed)
    elif hasattr(getattr(dataset, "transforms", None), "reseed"):
        dataset.transforms.reseed(seed)


def seed_worker(worker_id: int) -> None:
    """Worker init: seed numpy, ``random`` and the worker's dataset from torch's worker seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    info = get_worker_info()
    if info is not None:
        reseed_dataset(info.dataset, seed)


def seeded_loader(
    dataset: Dataset[Any],
    batch_size: int,
    shuffle: bool,
    seed: int,
    num_workers: int = 0,
    drop_last: bool = False,
) -> DataLoader[Any]:
    """A DataLoader whose order and randomness depend only on ``seed``."""
    if num_workers == 0:
        reseed_dataset(dataset, seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed),
        worker_init_fn=seed_worker,
        persistent_workers=num_workers > 0,
        drop_last=drop_last,
    )


__all__ = ["reseed_dataset", "seed_worker", "seeded_loader"]
