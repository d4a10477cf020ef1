"""Deterministic, seeded data loaders.

:func:`seeded_loader` gives the same batches for the same ``seed``, whatever ``num_workers`` is
(workers are persistent, so this is not automatic):

- **Order.** :class:`SeededOrder` computes each epoch's order in the main process from
  ``(seed, epoch)`` alone. Epochs count up by one per pass over the loader; :meth:`set_epoch`
  (which Lightning calls before every epoch) picks one, e.g. when a run resumes. The orders are
  those Lightning got from the plain seeded ``DataLoader`` used before, without workers, so
  such runs keep their batches.
- **Random crops and augmentations** drawn from the generators a dataset's ``reseed`` sets
  (:func:`reseed_dataset`: every random part of satdifuser's datasets and transforms) are a
  pure function of ``(seed, epoch, index)``: the dataset is reseeded with :func:`sample_seed`
  right before each sample is read (:class:`ReseededSamples`), in whichever process reads it.
- Randomness a dataset draws from the global RNGs instead (torch, numpy, ``random``; e.g.
  torchvision's random transforms) is seeded per worker (:func:`seed_worker`): it repeats for
  the same ``seed`` and ``num_workers`` only. Reseeding the global RNGs per sample would cost
  more than reading most samples.
"""

from __future__ import annotations

import hashlib
import random
import struct
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info


def reseed_dataset(dataset: Any, seed: int) -> None:
    """Call ``dataset.reseed(seed)`` or ``dataset.transforms.reseed(seed)`` when present."""
    if hasattr(dataset, "reseed"):
        dataset.reseed(seed)
    elif hasattr(getattr(dataset, "transforms", None), "reseed"):
        dataset.transforms.reseed(seed)


def reseedable(dataset: Any) -> bool:
    """Whether :func:`reseed_dataset` has something to reseed in ``dataset``."""
    return hasattr(dataset, "reseed") or hasattr(getattr(dataset, "transforms", None), "reseed")


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of sample ``index`` in ``epoch`` of a loader seeded with ``seed`` (63 bits)."""
    key = struct.pack("<3Q", int(seed) % 2**64, int(epoch) % 2**64, int(index) % 2**64)
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") % 2**63


def seed_worker(worker_id: int) -> None:
    """Worker init: seed numpy, ``random`` and the worker's dataset from torch's worker seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    info = get_worker_info()
    if info is not None:
        reseed_dataset(info.dataset, seed)


class SeededOrder(Sampler[Any]):
    """Indices ``0 .. size-1`` of one epoch, shuffled or not, fixed by ``(seed, epoch)``.

    The order is computed in the main process, so it does not depend on the loader's workers.
    Shuffled epoch ``e`` is the ``e``-th order Lightning got from a plain ``DataLoader(
    shuffle=True, generator=torch.Generator().manual_seed(seed))`` without workers (Lightning
    takes ``len(loader)`` batches per epoch): each epoch draws the iterator's base seed, then the
    permutation, from that generator; after a jump back (:meth:`set_epoch`) the earlier epochs
    are replayed.

    Args:
        size: Number of samples.
        seed: Seed of the shuffle (and of :func:`sample_seed` in ``keys``).
        shuffle: Shuffle each epoch (else ``0 .. size-1``).
        keys: Yield ``(epoch, index)`` keys for :class:`ReseededSamples` instead of indices.
        drains: Each epoch also draws the permutation a plain loader's ``RandomSampler`` drew
            when its order was read to the end (a last partial batch kept: :func:`seeded_loader`
            sets it), so that the orders stay those of runs made before.

    The epoch is the one :meth:`set_epoch` gives (Lightning calls it before every epoch);
    without it, each pass counts as the next epoch.
    """

    def __init__(
        self, size: int, seed: int, shuffle: bool = True, keys: bool = False, drains: bool = False
    ) -> None:
        self.size, self.seed, self.shuffle, self.keys = int(size), int(seed), shuffle, keys
        self.drains = drains
        self.epoch = 0
        self._generator: torch.Generator | None = None
        self._done = 0  # epochs whose permutations self._generator has drawn

    def set_epoch(self, epoch: int) -> None:
        """Serve ``epoch`` on the next pass."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.size

    def order(self, epoch: int) -> list[int]:
        """The indices of ``epoch`` in order."""
        if not self.shuffle:
            return list(range(self.size))
        if self._generator is None or self._done > epoch:
            self._generator, self._done = torch.Generator().manual_seed(self.seed), 0
        while True:  # replays earlier epochs only after a jump back (set_epoch)
            torch.empty((), dtype=torch.int64).random_(generator=self._generator)
            perm = torch.randperm(self.size, generator=self._generator)
            if self.drains:
                torch.randperm(self.size, generator=self._generator)
            self._done += 1
            if self._done > epoch:
                return perm.tolist()

    def __iter__(self) -> Iterator[Any]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        for index in self.order(epoch):
            yield (epoch, index) if self.keys else index


class ReseededSamples(Dataset[Any]):
    """``base`` read by the ``(epoch, index)`` keys of :class:`SeededOrder`: ``base`` is reseeded
    with :func:`sample_seed` before each read, so its random crops and augmentations depend on
    ``(seed, epoch, index)`` only. A plain index reads ``base[index]`` as it is.

    Other attributes are ``base``'s (``loader.dataset.classes`` keeps working).
    """

    def __init__(self, base: Dataset[Any], seed: int) -> None:
        self.base, self.seed = base, int(seed)

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, tuple):
            epoch, index = key
            reseed_dataset(self.base, sample_seed(self.seed, epoch, index))
            return self.base[index]
        return self.base[key]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("base", "seed"):
            raise AttributeError(name)
        return getattr(self.base, name)


def seeded_loader(
    dataset: Dataset[Any],
    batch_size: int,
    shuffle: bool,
    seed: int,
    num_workers: int = 0,
    drop_last: bool = False,
) -> DataLoader[Any]:
    """A DataLoader whose batches depend only on ``seed`` and the epoch, not on
    ``num_workers`` (see the module docstring for what that covers).

    Its ``sampler`` is a :class:`SeededOrder` (``set_epoch``); a dataset with something to
    reseed (:func:`reseedable`) is served through :class:`ReseededSamples`.
    """
    size, keyed = len(dataset), reseedable(dataset)  # type: ignore[arg-type]
    drains = size % batch_size != 0 and not drop_last
    return DataLoader(
        ReseededSamples(dataset, seed) if keyed else dataset,
        batch_size=batch_size,
        sampler=SeededOrder(size, seed, shuffle, keys=keyed, drains=drains),
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed),  # worker seeds (global RNGs)
        worker_init_fn=seed_worker,
        persistent_workers=num_workers > 0,
        drop_last=drop_last,
    )


__all__ = [
    "ReseededSamples",
    "SeededOrder",
    "reseed_dataset",
    "reseedable",
    "sample_seed",
    "seed_worker",
    "seeded_loader",
]
