"""Reading a feature cache: a map-style dataset with O(1) random access through memory maps."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from satdifuser.errors import CacheMismatchError, DataFormatError
from satdifuser.features.atomic_io import sha256_file
from satdifuser.features.cache_format import (
    INDEX_FILE,
    PLAN_FILE,
    feature_key,
    read_json,
    read_safetensors_header,
)
from satdifuser.features.cache_index import mismatch_error
from satdifuser.features.cache_key import same_features
from satdifuser.features.cache_plan import CachePlan
from satdifuser.features.spec import FeatureInfo

_NP = {
    "F16": np.float16,
    "F32": np.float32,
    "F64": np.float64,
    "BF16": np.uint16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}
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
    """Check that every shard of a complete cache is present with its size (and hash if ``full``).

    Returns:
        The index.

    Raises:
        DataFormatError: On a missing, resized or (``full``) altered shard.
    """
    folder = Path(folder)
    index = load_index(folder)
    for s in index["shards"]:
        path = folder / s["file"]
        size = path.stat().st_size if path.is_file() else -1
        if size != s["bytes"] or (full and sha256_file(path) != s["sha256"]):
            what = (
                "is missing"
                if size < 0
                else ("has another size" if size != s["bytes"] else "has another sha256")
            )
            raise DataFormatError(
                f"cache shard {path} {what} than recorded in {INDEX_FILE}; "
                "rebuild the cache (--overwrite)"
            )
    return index


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
        index = verify_cache(self.folder)
        self.plan = CachePlan.from_json(index, self.folder / INDEX_FILE)
        if expected is not None and not same_features(expected.fingerprint, self.plan.fingerprint):
            raise mismatch_error(self.folder, self.plan, expected)
        if output_dtype not in _OUT:
            raise ValueError(f"output_dtype {output_dtype!r}: choose one of {sorted(_OUT)}")
        self.output_dtype = _OUT[output_dtype]
        self.files = [self.folder / s["file"] for s in index["shards"]]
        self.source = source
        self.extra_keys = tuple(extra_keys)
        if self.extra_keys and (source is None or len(source) != len(self)):
            raise ValueError(
                f"extra_keys {self.extra_keys} need the source dataset of the same {len(self)} rows"
            )
        self._maps: dict[int, dict[str, np.ndarray]] = {}
        self._pid = -1

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
        if k not in self._maps:
            path = self.files[k]
            header, offset = read_safetensors_header(path)
            raw = np.memmap(path, dtype=np.uint8, mode="r")
            arrays = {}
            for name, t in header.items():
                if name == "__metadata__":
                    continue
                begin, end = t["data_offsets"]
                arr = raw[offset + begin : offset + end].view(_NP[t["dtype"]]).reshape(t["shape"])
                arrays[name] = arr
            self._maps[k] = arrays
        return self._maps[k]

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
