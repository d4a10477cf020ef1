"""in_memory_loader orders rows like seeded_loader: by (seed, epoch) only, set_epoch included."""

from __future__ import annotations

from itertools import islice
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from satdifuser.data.loaders import SeededOrder, seeded_loader
from satdifuser.features.cache_memory import InMemoryFeatures, in_memory_loader

ROWS = 10


class _Rows(Dataset):
    def __len__(self) -> int:
        return ROWS

    def __getitem__(self, index: int) -> int:
        return index


def _memory(rows: int = ROWS) -> InMemoryFeatures:
    """An InMemoryFeatures of ``rows`` rows whose ids are the row numbers (no cache on disk)."""
    data = InMemoryFeatures.__new__(InMemoryFeatures)
    data.feature_info = []
    data.maps = [torch.arange(rows, dtype=torch.float32).reshape(rows, 1, 1, 1)]
    data.targets = {"label": torch.arange(rows)}
    data.ids = [str(i) for i in range(rows)]
    data.output_dtype = torch.float32
    return data


def _epoch(loader: DataLoader[Any]) -> list[int]:
    """One epoch's rows, read as Lightning reads them (``len(loader)`` batches)."""
    rows: list[int] = []
    for batch in islice(loader, len(loader)):
        rows += batch["label"].tolist() if isinstance(batch, dict) else batch.tolist()
    return rows


@pytest.mark.parametrize("batch", [3, 5])  # a last partial batch, or none
def test_in_memory_order_is_fixed_by_seed_and_epoch_like_seeded_loader(batch: int) -> None:
    a, b = in_memory_loader(_memory(), batch, True, 7), in_memory_loader(_memory(), batch, True, 7)
    assert isinstance(a.sampler, SeededOrder)
    first = [_epoch(a), _epoch(a)]
    assert [_epoch(b), _epoch(b)] == first  # same seed: same order per epoch
    assert first[0] != first[1] and sorted(first[0]) == list(range(ROWS))
    reference = seeded_loader(_Rows(), batch, True, 7)
    assert [_epoch(reference), _epoch(reference)] == first  # seeded_loader's contract
    resumed = in_memory_loader(_memory(), batch, True, 7)
    resumed.sampler.set_epoch(1)  # type: ignore[attr-defined]
    assert _epoch(resumed) == first[1]  # a resumed run gets epoch 1's order directly
    assert _epoch(in_memory_loader(_memory(), batch, True, 8)) != first[0]


@pytest.mark.parametrize("batch", [3, 5])
def test_in_memory_order_keeps_the_batches_of_earlier_runs(batch: int) -> None:
    """The orders are those the plain seeded shuffled DataLoader gave before."""
    plain = DataLoader(_Rows(), batch_size=batch, shuffle=True,
                       generator=torch.Generator().manual_seed(3))  # fmt: skip
    loader = in_memory_loader(_memory(), batch, True, 3)
    assert [_epoch(loader) for _ in range(3)] == [_epoch(plain) for _ in range(3)]


def test_unshuffled_in_memory_loader_keeps_row_order() -> None:
    loader = in_memory_loader(_memory(), 4, False, 0)
    loader.sampler.set_epoch(5)  # type: ignore[attr-defined]
    assert _epoch(loader) == list(range(ROWS))
