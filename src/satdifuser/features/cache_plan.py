"""Planning a feature cache: its key, row order, shard layout, size estimate and disk check."""

from __future__ import annotations

import fnmatch
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from satdifuser.errors import ConfigError, DataFormatError, InsufficientDiskError
from satdifuser.features.cache_format import INDEX_FILE, PLAN_FILE, SHARD_PREFIX
from satdifuser.features.cache_key import (
    STORAGE_DTYPES,
    build_fingerprint,
    dataset_identity,
    describe_backbone,
    feature_info_from_rows,
    fingerprint_digest,
)
from satdifuser.features.spec import FeatureInfo

DEFAULT_SHARD_BYTES = 256 * 2**20
"""Target shard size (256 MiB) when ``shard_size`` is not given."""

MIN_SHARDS = 16
"""Auto sizing splits a split into at least this many shards (when it has as many samples), so
that ranks share the work evenly; the layout never depends on the number of ranks."""

TARGET_KEYS = ("label", "mask")
"""Sample keys stored next to the features."""

_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4}


def dataset_ids(dataset: Any) -> list[str]:
    """Sample ids in row order: ``dataset.ids`` when present (Subsets mapped), else each ``id``.

    Raises:
        DataFormatError: When a sample has no ``id`` or ids repeat.
    """
    ids: list[str] | None = None
    if isinstance(dataset, torch.utils.data.Subset):
        base = _listed_ids(dataset.dataset)
        ids = None if base is None else [base[i] for i in dataset.indices]
    else:
        ids = _listed_ids(dataset)
    if ids is None:
        ids = []
        for i in range(len(dataset)):
            sample = dataset[i]
            if "id" not in sample:
                raise DataFormatError(
                    f"sample {i} of {type(dataset).__name__} has no 'id' key; the cache keys rows "
                    "by sample id: give each sample a unique string 'id'"
                )
            ids.append(str(sample["id"]))
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dup = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
        raise DataFormatError(
            f"sample id {dup!r} occurs more than once in {type(dataset).__name__}; "
            "cache rows need unique ids: deduplicate the split"
        )
    return ids


def _listed_ids(dataset: Any) -> list[str] | None:
    """Ids without loading samples: ``dataset.ids``, or a ``files`` list matching the ids of the
    first and last sample (EuroSAT-style); None when neither applies.

    The extraction loop checks every id against the plan, so this shortcut cannot go wrong
    silently.
    """
    if hasattr(dataset, "ids"):
        return [str(i) for i in dataset.ids]
    files = getattr(dataset, "files", None)
    if not isinstance(files, list) or len(files) != len(dataset) or not files:
        return None
    if all(str(dataset[i].get("id")) == str(files[i]) for i in (0, len(files) - 1)):
        return [str(f) for f in files]
    return None


def select_taps(feature_info: Sequence[FeatureInfo], keep_taps: Sequence[str] | None) -> list[int]:
    """Indices of the maps whose tap matches one of ``keep_taps`` (fnmatch; all when None).

    Raises:
        ConfigError: When a pattern matches nothing.
    """
    if not keep_taps:
        return list(range(len(feature_info)))
    taps = list(dict.fromkeys(f.tap for f in feature_info))
    for pat in keep_taps:
        if not any(fnmatch.fnmatchcase(t, pat) for t in taps):
            raise ConfigError(
                f"--keep-taps pattern {pat!r} matches none of the extractor's taps "
                f"({', '.join(taps[:6])}{', ...' if len(taps) > 6 else ''}); use fnmatch patterns "
                "like 'up_blocks.1.*'"
            )
    return [
        i
        for i, f in enumerate(feature_info)
        if any(fnmatch.fnmatchcase(f.tap, p) for p in keep_taps)
    ]


@dataclass(frozen=True)
class CachePlan:
    """Everything decided before extraction starts; saved as ``plan.json``.

    Args:
        fingerprint: Flat description of what the features depend on (see ``cache_key``).
        ids: Sample ids in row order.
        kept: Indices into the extractor's output of the maps stored.
        shard_size: Rows per shard (the last shard may be shorter).
        batch_size: Extraction batch size (part of the layout: batches never cross shards).
        bytes_per_sample: Estimated stored bytes per sample.
        targets: Sample keys stored next to the features (``label``, ``mask``).
    """

    fingerprint: dict[str, Any]
    ids: list[str]
    kept: list[int]
    shard_size: int
    batch_size: int
    bytes_per_sample: int
    targets: list[str]

    @property
    def key(self) -> str:
        """Short hash of the fingerprint."""
        return fingerprint_digest(self.fingerprint)

    @property
    def feature_info(self) -> list[FeatureInfo]:
        """The stored maps."""
        return feature_info_from_rows(self.fingerprint["feature_info"])

    @property
    def storage_dtype(self) -> str:
        """Dtype the features are stored in."""
        return str(self.fingerprint["storage_dtype"])

    @property
    def num_samples(self) -> int:
        """Rows in the cache."""
        return len(self.ids)

    @property
    def num_shards(self) -> int:
        """Number of shard files."""
        return max(1, math.ceil(self.num_samples / self.shard_size))

    def shard_range(self, k: int) -> tuple[int, int]:
        """Rows ``[start, stop)`` of shard ``k``."""
        start = k * self.shard_size
        return start, min(start + self.shard_size, self.num_samples)

    def batches(self, k: int) -> list[list[int]]:
        """Row batches of shard ``k`` (``batch_size`` each, never crossing the shard end)."""
        start, stop = self.shard_range(k)
        return [
            list(range(s, min(s + self.batch_size, stop)))
            for s in range(start, stop, self.batch_size)
        ]

    @property
    def estimated_bytes(self) -> int:
        """Estimated size of the whole cache."""
        return self.bytes_per_sample * self.num_samples

    def to_json(self) -> dict[str, Any]:
        """JSON form (deterministic: depends only on the configuration)."""
        return {
            "key": self.key,
            "fingerprint": self.fingerprint,
            "ids": self.ids,
            "kept": self.kept,
            "shard_size": self.shard_size,
            "batch_size": self.batch_size,
            "bytes_per_sample": self.bytes_per_sample,
            "targets": self.targets,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], path: Path) -> CachePlan:
        """Inverse of :meth:`to_json`."""
        try:
            return cls(
                fingerprint=dict(data["fingerprint"]),
                ids=[str(i) for i in data["ids"]],
                kept=[int(i) for i in data["kept"]],
                shard_size=int(data["shard_size"]),
                batch_size=int(data["batch_size"]),
                bytes_per_sample=int(data["bytes_per_sample"]),
                targets=[str(t) for t in data["targets"]],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataFormatError(
                f"cache file {path} lacks or mangles field {exc}; "
                "rebuild the cache with --overwrite"
            ) from None


def make_plan(
    dataset: Any,
    extractor: Any,
    *,
    dtype: str = "float16",
    keep_taps: Sequence[str] | None = None,
    batch_size: int = 8,
    shard_size: int | None = None,
) -> CachePlan:
    """Plan the cache of ``dataset`` under ``extractor`` (reads one sample for the image size).

    Raises:
        ConfigError: For a bad dtype, batch or shard size, or keep-taps pattern.
        DataFormatError: For an empty dataset or bad sample ids.
    """
    if dtype not in STORAGE_DTYPES:
        raise ConfigError(
            f"--dtype {dtype!r} is not a storage dtype; choose one of {STORAGE_DTYPES}"
        )
    if batch_size < 1 or (shard_size is not None and shard_size < 1):
        raise ConfigError(
            f"batch_size={batch_size}, shard_size={shard_size}: both must be >= 1; "
            "pass positive values"
        )
    if len(dataset) == 0:
        raise DataFormatError(
            f"{type(dataset).__name__} is empty: nothing to extract; check the split and --limit"
        )
    info = list(extractor.feature_info)
    kept = select_taps(info, keep_taps)
    kept_info = [info[i] for i in kept]
    ids = dataset_ids(dataset)
    spec = extractor.spec
    fingerprint = build_fingerprint(
        extractor_identity=str(extractor.identity()),
        backbone=describe_backbone(extractor),
        spec=spec.to_dict(),
        feature_info=kept_info,
        keep_taps=keep_taps if keep_taps else None,
        storage_dtype=dtype,
        ids=ids,
        dataset=dataset_identity(dataset),
    )
    sample = dataset[0]
    size = spec.image_size or int(sample["image"].shape[-1])
    per = sum(f.channels * math.ceil(size / f.reduction) ** 2 for f in kept_info) * _BYTES[dtype]
    targets = [k for k in TARGET_KEYS if k in sample]
    for k in targets:
        t = torch.as_tensor(sample[k])
        per += t.numel() * t.element_size()
    if shard_size is None:
        by_bytes = DEFAULT_SHARD_BYTES // max(1, per)
        shard_size = max(1, min(by_bytes, math.ceil(len(ids) / MIN_SHARDS)))
    shard_size = min(shard_size, len(ids))
    return CachePlan(
        fingerprint=fingerprint,
        ids=ids,
        kept=kept,
        shard_size=shard_size,
        batch_size=batch_size,
        bytes_per_sample=per,
        targets=targets,
    )


def split_folder(root: str | Path, split: str, plan: CachePlan) -> Path:
    """Folder of a split in the content-addressed layout: ``<root>/<split>-<key>``.

    The key (:attr:`CachePlan.key`) covers everything that changes stored features or labels,
    so two configurations never share a folder and a rerun of the same one reuses it.
    """
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(split)) or "split"
    return Path(root) / f"{name}-{plan.key}"


def plan_protects_nothing(folder: Path) -> bool:
    """True when ``folder`` holds a ``plan.json`` but no index and no shard (finished or in flight).

    Such a plan was left by a run that failed before its first shard (a bad device, a sample that
    does not load); it protects no work, so a rerun of another configuration may replace it. A
    plan with any shard written keeps refusing other configurations.
    """
    if not (folder / PLAN_FILE).is_file() or (folder / INDEX_FILE).exists():
        return False
    return not any(p.name.startswith(SHARD_PREFIX) for p in folder.iterdir())


def check_deterministic(dataset: Any, split: str) -> None:
    """Refuse splits whose samples change between reads (augmentation, random crops).

    Raises:
        ConfigError: When sample 0 gives two different images.
    """
    if len(dataset) == 0:
        return
    a, b = dataset[0]["image"], dataset[0]["image"]
    if not torch.equal(torch.as_tensor(a), torch.as_tensor(b)):
        raise ConfigError(
            f"the {split} split returns a different image each time sample 0 is read (random "
            "augmentation or crops), but a feature cache stores one fixed view; turn augmentation "
            "off (augment: false, deterministic tiling) or train without the cache"
        )


def human_bytes(n: float) -> str:
    """``1.23 GB`` style (decimal units, as ``--max-gb``)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.2f} TB"  # pragma: no cover


def check_disk(folder: Path, plan: CachePlan, remaining_bytes: int, max_gb: float | None) -> None:
    """Refuse when the cache would not fit.

    Raises:
        InsufficientDiskError: When the whole cache exceeds ``max_gb`` or the part still to
            write exceeds the free space of the filesystem holding ``folder``.
    """
    total = plan.estimated_bytes
    if max_gb is not None and not (math.isfinite(max_gb) and max_gb > 0):
        raise ConfigError(f"--max-gb {max_gb} must be a finite number > 0 (gigabytes, 1e9 B)")
    fix = "keep fewer maps (--keep-taps), store float16 (--dtype) or use fewer samples (--limit)"
    if max_gb is not None and total > max_gb * 1e9:
        raise InsufficientDiskError(
            f"estimated cache size {human_bytes(total)} ({plan.num_samples} samples x "
            f"{human_bytes(plan.bytes_per_sample)}) exceeds --max-gb {max_gb:g}; "
            f"{fix}, or raise --max-gb"
        )
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if remaining_bytes > free:
        raise InsufficientDiskError(
            f"estimated cache size {human_bytes(remaining_bytes)} still to write exceeds the "
            f"{human_bytes(free)} free on the disk holding {folder}; "
            f"{fix}, or choose another --cache-dir"
        )


__all__ = [
    "DEFAULT_SHARD_BYTES",
    "TARGET_KEYS",
    "CachePlan",
    "check_deterministic",
    "check_disk",
    "dataset_ids",
    "human_bytes",
    "make_plan",
    "plan_protects_nothing",
    "select_taps",
    "split_folder",
]
