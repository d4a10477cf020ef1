"""A complete feature cache held in memory, served a whole batch per index list.

Pooled classification features are small (EuroSAT, 4 x 4 maps: a few MB per thousand images),
so reading them once and slicing tensors per batch removes the per-sample overhead of the
memory-mapped reader: this is the fast path of ``fit`` on 2 CPU cores. It is a data source, not a
model: the same task and model train on it as on the on-disk cache or on images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from satdifuser.data.loaders import SeededOrder
from satdifuser.features.cache_dataset import CachedFeatureDataset
from satdifuser.features.cache_format import feature_key
from satdifuser.features.spec import FeatureInfo


class InMemoryFeatures(Dataset):
    """Every row of a :class:`CachedFeatureDataset` in memory (storage dtype kept).

    ``ds[i]`` is one sample dict like the on-disk reader's; ``ds.__getitems__(rows)`` (what a
    DataLoader calls with a batch of indices) returns the batch dict directly:
    ``features`` (list of ``(B, C, h, w)`` float32), ``label``/``mask`` and ``id``.

    Args:
        cache: A complete, checked cache (its shards are verified when read).
        output_dtype: Dtype of the served features.
    """

    def __init__(self, cache: CachedFeatureDataset, output_dtype: torch.dtype = torch.float32):
        parts = [cache.shard_tensors(k) for k in range(len(cache.files))]
        n_maps = len(cache.feature_info)
        self.feature_info: list[FeatureInfo] = list(cache.feature_info)
        self.maps: list[Tensor] = [torch.cat([p[feature_key(i)] for p in parts])
                                   for i in range(n_maps)]  # fmt: skip
        self.targets: dict[str, Tensor] = {
            key: torch.cat([p[key] for p in parts]) for key in cache.plan.targets
        }
        self.ids: list[str] = list(cache.ids)
        self.output_dtype = output_dtype

    def __len__(self) -> int:
        return len(self.ids)

    def nbytes(self) -> int:
        """Bytes held."""
        tensors = [*self.maps, *self.targets.values()]
        return sum(t.numel() * t.element_size() for t in tensors)

    def __getitems__(self, rows: Sequence[int]) -> dict[str, Any]:
        idx = torch.as_tensor(list(rows), dtype=torch.long)
        batch: dict[str, Any] = {
            "features": [m[idx].to(self.output_dtype) for m in self.maps],
            "id": [self.ids[i] for i in idx.tolist()],
        }
        for key, value in self.targets.items():
            batch[key] = value[idx]
        return batch

    def __getitem__(self, index: int) -> dict[str, Any]:
        batch = self.__getitems__([int(index)])
        out = {k: v[0] for k, v in batch.items() if k != "features"}
        out["features"] = [f[0] for f in batch["features"]]
        return out


def _batch_as_is(batch: Any) -> Any:
    return batch


def in_memory_loader(
    data: InMemoryFeatures, batch_size: int, shuffle: bool, seed: int
) -> DataLoader[Any]:
    """Batches of ``data``, one tensor slice per batch.

    The row order is :func:`~satdifuser.data.loaders.seeded_loader`'s: its ``sampler`` is a
    :class:`~satdifuser.data.loaders.SeededOrder`, so each epoch's order (shuffled when
    ``shuffle``) depends on ``(seed, epoch)`` only and :meth:`set_epoch` (which Lightning calls
    before every epoch, e.g. on resume) picks the epoch.
    """
    drains = len(data) % batch_size != 0  # the last partial batch is kept, as in seeded_loader
    return DataLoader(
        data,
        batch_size=batch_size,
        sampler=SeededOrder(len(data), seed, shuffle, drains=drains),
        generator=torch.Generator().manual_seed(seed),
        collate_fn=_batch_as_is,
    )


__all__ = ["InMemoryFeatures", "in_memory_loader"]
