"""seeded_loader: the same seed gives the same batches, whatever ``num_workers`` is."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.utils.data import Dataset

from satdifuser.data import seeded_loader


class _Ids(Dataset):
    """Sample ``i`` is ``i``: the batches show the shuffle order."""

    def __len__(self) -> int:
        return 12

    def __getitem__(self, index: int) -> int:
        return index


def _epochs(loader: Any, n: int = 2) -> list[list[int]]:
    return [[int(i) for batch in loader for i in batch] for _ in range(n)]


def test_shuffle_order_of_every_epoch_is_the_same_with_and_without_workers() -> None:
    single = _epochs(seeded_loader(_Ids(), 4, True, seed=3, num_workers=0))
    workers = seeded_loader(_Ids(), 4, True, seed=3, num_workers=2)
    assert workers.persistent_workers
    assert _epochs(workers) == single
    assert single[0] != single[1] and sorted(single[1]) == list(range(12))


class _RandomCrops(Dataset):
    """Sample ``i`` is ``(i, draw)``, the draw from the generator :meth:`reseed` sets (like a
    random crop position of MaskFolder)."""

    def __init__(self) -> None:
        self.classes = ["a", "b"]
        self.generator: torch.Generator | None = None

    def reseed(self, seed: int) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return 12

    def __getitem__(self, index: int) -> tuple[int, int]:
        return index, int(torch.randint(0, 2**31, (1,), generator=self.generator))


def _samples(loader: Any, n: int = 2) -> list[list[tuple[int, int]]]:
    return [
        [(int(i), int(d)) for batch in loader for i, d in zip(*batch, strict=True)]
        for _ in range(n)
    ]


def test_random_draws_of_every_epoch_are_the_same_with_and_without_workers() -> None:
    single = _samples(seeded_loader(_RandomCrops(), 4, True, seed=3, num_workers=0))
    assert _samples(seeded_loader(_RandomCrops(), 4, True, seed=3, num_workers=2)) == single
    draws = [dict(epoch) for epoch in single]
    assert draws[0] != draws[1]  # the same sample is cropped elsewhere in the next epoch
    other = dict(_samples(seeded_loader(_RandomCrops(), 4, True, seed=4), 1)[0])
    assert other != draws[0]
    # unshuffled loaders serve the same draws per (epoch, index) as well
    plain = _samples(seeded_loader(_RandomCrops(), 5, False, seed=3, num_workers=2))
    assert [dict(epoch) for epoch in plain] == draws


def test_set_epoch_serves_that_epoch_and_the_dataset_keeps_its_attributes() -> None:
    loader = seeded_loader(_RandomCrops(), 4, True, seed=3)
    epochs = _samples(loader, 3)
    again = seeded_loader(_RandomCrops(), 4, True, seed=3)
    assert again.dataset.classes == ["a", "b"]
    for epoch in (2, 0, 1):  # what Lightning does before each epoch (and on resume)
        again.sampler.set_epoch(epoch)
        assert _samples(again, 1)[0] == epochs[epoch]


@pytest.mark.parametrize(("batch", "drop_last"), [(4, False), (5, False), (5, True)])
def test_shuffle_order_is_the_one_of_runs_made_before(batch: int, drop_last: bool) -> None:
    # Lightning runs without workers used a plain seeded DataLoader and took len(loader)
    # batches per epoch: they keep their batches
    plain = torch.utils.data.DataLoader(
        _Ids(), batch, shuffle=True, drop_last=drop_last, generator=torch.Generator().manual_seed(3)
    )
    lightning = [
        [int(i) for _, batch in zip(range(len(plain)), plain, strict=False) for i in batch]
        for _ in range(3)
    ]
    assert _epochs(seeded_loader(_Ids(), batch, True, 3, drop_last=drop_last), 3) == lightning
