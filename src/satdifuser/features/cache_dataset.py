"""Reading a feature cache: a map-style dataset with O(1) random access through memory maps.

Every shard is checked before it is read (``cache_shard``: size, header, sha256, finite values,
once per process), so a damaged cache is refused with one line naming the file instead of being
trained on.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from satdifuser.errors import CacheMismatchError
from satdifuser.features.cache_format import INDEX_FILE, PLAN_FILE, feature_key, read_json
from satdifuser.features.cache_index import mismatch_error, parse_index
from satdifuser.features.cache_key import same_features
from satdifuser.features.cache_plan import CachePlan
from satdifuser.features.cache_shard import adopt_checked, check_shards, checked_files, open_shard
from satdifuser.features.spec import FeatureInfo

_OUT = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "stored": None,
}


def load_index(folder: str | Path) -> dict[str, Any]:
    """The ``index.json`` of a complete cache.

    Raises:
        FileNotFoundError (DatasetNotFoundError): When the cache is missing or incomplete.
    """
    folder = Path(folder)
    path = folder / INDEX_FILE
    if not path.is_file():
        from satdifuser.errors import DatasetNotFoundError

        state = (
            "incomplete (plan.json but no index.json)"
            if (folder / PLAN_FILE).is_file()
            else "absent"
        )
        raise DatasetNotFoundError(
            f"no complete feature cache in {folder} ({state}); build or resume it with "
            f"`satdifuser extract ... --cache-dir {folder.parent}`"
        )
    return read_json(path)


def verify_cache(folder: str | Path, *, full: bool = False) -> dict[str, Any]:
    """Check every shard of a complete cache against its index (see ``cache_shard``).

    Args:
        folder: Cache folder of one split.
        full: Re-hash every shard even if this process has checked it already
            (``satdifuser extract --verify``); otherwise each file version is hashed once per
            process.

    Returns:
        The index.

    Raises:
        CacheCorruptError: On a malformed index, or a missing, resized, altered or non-finite
            shard (the first one, by shard number).
    """
    folder = Path(folder)
    index = load_index(folder)
    _, entries, layout = parse_index(folder, index)
    _raise_first(check_shards(folder, entries, layout, fresh=full))
    return index


def _raise_first(errors: Sequence[Exception | None]) -> None:
    for error in errors:
        if error is not None:
            raise error


class CachedFeatureDataset(Dataset):
    """Samples of a complete feature cache: ``{"features": [(C, H, W)...], "label"/"mask", "id"}``.

    Args:
        folder: Cache folder of one split (holds ``index.json``).
        expected: The plan the caller would build; a different fingerprint raises
            :class:`CacheMismatchError` naming the fields that differ.
        output_dtype: Dtype of the served features (``float32`` by default, ``stored`` keeps
            the storage dtype).
        source: The original dataset, to serve ``extra_keys`` (e.g. ``image`` for plots) from it.
        extra_keys: Keys copied from ``source[i]`` into each sample.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        expected: CachePlan | None = None,
        output_dtype: str = "float32",
        source: Any = None,
        extra_keys: Sequence[str] = (),
    ) -> None:
        self.folder = Path(folder)
        self.plan, self.entries, self.layout = parse_index(self.folder, load_index(self.folder))
        if expected is not None and not same_features(expected.fingerprint, self.plan.fingerprint):
            raise mismatch_error(self.folder, self.plan, expected)
        if output_dtype not in _OUT:
            raise ValueError(f"output_dtype {output_dtype!r}: choose one of {sorted(_OUT)}")
        self.output_dtype = _OUT[output_dtype]
        # every shard is checked (hashed once per process) before any row is served
        _raise_first(check_shards(self.folder, self.entries, self.layout))
        self.files = [self.folder / e.file for e in self.entries]
        mine = {os.path.abspath(f) for f in self.files}
        self._checked = {k: v for k, v in checked_files().items() if k[0] in mine}  # for workers
        self.source = source
        self.extra_keys = tuple(extra_keys)
        if self.extra_keys and (source is None or len(source) != len(self)):
            raise ValueError(
                f"extra_keys {self.extra_keys} need the source dataset of the same {len(self)} rows"
            )
        self._maps: dict[int, dict[str, np.ndarray]] = {}
        self._pid = os.getpid()

    @property
    def feature_info(self) -> list[FeatureInfo]:
        """The stored maps, in the order of ``sample["features"]``."""
        return self.plan.feature_info

    @property
    def ids(self) -> list[str]:
        """Sample ids in row order."""
        return self.plan.ids

    def __len__(self) -> int:
        return self.plan.num_samples

    def _shard(self, k: int) -> dict[str, np.ndarray]:
        if self._pid != os.getpid():  # memory maps are opened per process (DataLoader workers)
            self._maps, self._pid = {}, os.getpid()
            adopt_checked(self._checked)
        if k not in self._maps:
            self._maps[k] = open_shard(self.folder, self.entries[k], self.layout)
        return self._maps[k]

    def shard_tensors(self, k: int) -> dict[str, torch.Tensor]:
        """Every tensor of shard ``k``, checked and copied into memory (storage dtype).

        Returns:
            ``{"f000": (n, C, H, W), ..., "label"/"mask": (n, ...)}`` for the shard's ``n`` rows.
        """
        arrays = self._shard(k)
        return {name: self._tensor(a, self.layout[name][0] == "BF16") for name, a in arrays.items()}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_maps"], state["_pid"] = {}, -1  # workers map the shards themselves
        return state

    def _tensor(self, arr: np.ndarray, bf16: bool) -> torch.Tensor:
        t = torch.from_numpy(np.array(arr))  # copy out of the read-only map
        return t.view(torch.bfloat16) if bf16 else t

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"row {index} out of range for a cache of {len(self)} samples")
        index %= len(self)
        k, off = divmod(index, self.plan.shard_size)
        arrays = self._shard(k)
        bf16 = self.plan.storage_dtype == "bfloat16"
        feats = []
        for i in range(len(self.plan.kept)):
            t = self._tensor(arrays[feature_key(i)][off], bf16)
            feats.append(t.to(self.output_dtype) if self.output_dtype is not None else t)
        sample: dict[str, Any] = {"features": feats, "id": self.plan.ids[index]}
        for key in self.plan.targets:
            value = self._tensor(arrays[key][off], False)
            sample[key] = value
        if self.extra_keys:
            src = self.source[index]
            if str(src.get("id")) != sample["id"]:
                raise CacheMismatchError(
                    f"source row {index} has id {src.get('id')!r} but the cache row has "
                    f"{sample['id']!r}; pass the same dataset (same order) the cache was built from"
                )
            for key in self.extra_keys:
                sample[key] = src[key]
        return sample


__all__ = ["CachedFeatureDataset", "load_index", "verify_cache"]
