"""Shared pieces of the benchmarks: in-memory feature sets from the on-disk cache, timers.

Features are extracted ONCE per (extractor, split) into the feature cache (``features.cache``)
and then held in memory as float16 tensors, so fusion + head can be trained many times (fusions,
label budgets, seeds) without touching the backbone again.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from satdifuser.errors import ConfigError, InputError
from satdifuser.features.spec import FeatureInfo

CACHE_ENV = "SATDIFUSER_CACHE"
"""Environment variable naming the feature-cache folder of ``demo`` and ``bench``."""


def default_cache_root() -> Path:
    """``$SATDIFUSER_CACHE``, else ``$XDG_CACHE_HOME/satdifuser/features`` (``~/.cache/...``)."""
    env = os.environ.get(CACHE_ENV, "")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "satdifuser" / "features"


@dataclass
class FeatureSet:
    """Extracted features of one dataset split, in memory.

    Args:
        feature_info: One entry per map, in the order of ``maps``.
        maps: ``(N, C, h, w)`` tensors (float16 as stored, cast per batch when training).
        labels: ``(N,)`` int64 class ids.
        ids: Sample ids in row order.
    """

    feature_info: list[FeatureInfo]
    maps: list[Tensor]
    labels: Tensor
    ids: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def rows(self, index: Tensor | Sequence[int]) -> FeatureSet:
        """The rows ``index`` (in that order)."""
        idx = torch.as_tensor(index, dtype=torch.long)
        return FeatureSet(
            self.feature_info,
            [m[idx] for m in self.maps],
            self.labels[idx],
            [self.ids[i] for i in idx.tolist()] if self.ids else [],
        )

    def batch(self, index: Tensor, dtype: torch.dtype = torch.float32) -> list[Tensor]:
        """Maps of rows ``index`` cast to ``dtype`` (a training batch)."""
        return [m[index].to(dtype) for m in self.maps]

    def select(
        self,
        taps: Sequence[str] | None = None,
        timesteps: Sequence[int] | None = None,
    ) -> FeatureSet:
        """Keep the maps whose tap matches one of ``taps`` (fnmatch) and whose timestep is listed.

        Raises:
            ConfigError: nothing is left.
        """
        keep = [
            i
            for i, f in enumerate(self.feature_info)
            if (taps is None or any(fnmatch.fnmatchcase(f.tap, p) for p in taps))
            and (timesteps is None or f.timestep in timesteps)
        ]
        if not keep:
            have = sorted({f.tap for f in self.feature_info})
            raise ConfigError(
                f"no feature map matches taps={list(taps or [])} timesteps="
                f"{list(timesteps or [])}; available taps: {', '.join(have[:8])}"
            )
        return FeatureSet(
            [self.feature_info[i] for i in keep],
            [self.maps[i] for i in keep],
            self.labels,
            self.ids,
        )

    def pooled(self) -> Tensor:
        """``(N, sum C)`` float32: every map globally average-pooled, concatenated."""
        return torch.cat([m.float().mean(dim=(2, 3)) for m in self.maps], dim=1)

    @staticmethod
    def combine(sets: Sequence[FeatureSet]) -> FeatureSet:
        """Concatenate the maps of several sets of the same rows (e.g. one set per timestep).

        Raises:
            InputError: the sets hold different rows or labels.
        """
        if not sets:
            raise InputError("FeatureSet.combine got no sets; pass at least one")
        first = sets[0]
        for s in sets[1:]:
            if s.ids != first.ids or not torch.equal(s.labels, first.labels):
                raise InputError(
                    "FeatureSet.combine got sets of different rows; extract every timestep for "
                    "the same dataset split"
                )
        return FeatureSet(
            [f for s in sets for f in s.feature_info],
            [m for s in sets for m in s.maps],
            first.labels,
            first.ids,
        )


def ids_tag(ids: Sequence[str]) -> str:
    """Short digest of sample ids (names cache folders of dataset subsets)."""
    h = hashlib.sha256("\n".join(ids).encode()).hexdigest()
    return h[:10]


def load_cache(folder: Path) -> FeatureSet:
    """Load a complete feature cache folder into memory (storage dtype kept)."""
    from satdifuser.features.cache import CachedFeatureDataset
    from satdifuser.features.cache_format import feature_key

    ds = CachedFeatureDataset(folder, output_dtype="stored")
    parts = [ds.shard_tensors(k) for k in range(len(ds.files))]  # checked shard reads
    n = len(ds.feature_info)
    maps = [torch.cat([p[feature_key(i)] for p in parts]) for i in range(n)]
    if "label" not in parts[0]:
        raise InputError(f"feature cache {folder} stores no labels; it was built without 'label'")
    labels = torch.cat([p["label"] for p in parts]).long().reshape(-1)
    return FeatureSet(list(ds.feature_info), maps, labels, list(ds.ids))


def cached_features(
    extractor: nn.Module,
    dataset: Any,
    cache_root: Path,
    split: str,
    *,
    batch_size: int = 32,
    progress: bool = True,
) -> FeatureSet:
    """Extract ``dataset`` with ``extractor`` into the cache (or reuse it) and load it.

    The folder is ``cache_root/<extractor identity>/<split>-<ids digest>``, so every extractor
    configuration and every subset of a split gets its own cache and reruns reuse it.
    """
    from satdifuser.features.cache import build_feature_cache
    from satdifuser.features.cache_plan import dataset_ids

    ids = dataset_ids(dataset)
    folder = Path(cache_root) / str(extractor.identity()) / f"{split}-{ids_tag(ids)}"
    build_feature_cache(
        dataset, extractor, folder, dtype="float16", batch_size=batch_size, progress=progress
    )
    return load_cache(folder)


def budget_rows(labels: Tensor, budget: int | None) -> Tensor:
    """Row indices of the first ``budget`` samples of each class, in row order (None: all).

    This is the fixed split's rule (the first k entries of each class block of ``train``).

    Raises:
        ConfigError: a class has fewer than ``budget`` samples.
    """
    if budget is None:
        return torch.arange(len(labels))
    counts: dict[int, int] = {}
    keep = []
    for i, y in enumerate(labels.tolist()):
        if counts.get(y, 0) < budget:
            keep.append(i)
        counts[y] = counts.get(y, 0) + 1
    short = {c: n for c, n in counts.items() if n < budget}
    if short:
        raise ConfigError(
            f"label budget {budget} per class but the train split has fewer for classes {short}; "
            "lower --budgets"
        )
    return torch.tensor(keep, dtype=torch.long)


@dataclass
class Timer:
    """Wall-clock and process CPU seconds per named part (``with timer("extract"): ...``).

    CPU seconds (all threads of this process) do not grow when other jobs share the machine, so
    they show the cost of a part even when wall-clock times are inflated by contention.
    """

    seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    on_done: Callable[[str, float, float], None] | None = None

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            self.seconds[name] = self.seconds.get(name, 0.0) + dt
            self.cpu_seconds[name] = self.cpu_seconds.get(name, 0.0) + dc
            if self.on_done is not None:
                self.on_done(name, dt, dc)


def cpu_description() -> dict[str, Any]:
    """CPU model, logical cores and torch threads of this machine (for result files)."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        import platform

        model = platform.processor() or "unknown"
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


__all__ = [
    "CACHE_ENV",
    "FeatureSet",
    "Timer",
    "budget_rows",
    "cached_features",
    "cpu_description",
    "default_cache_root",
    "ids_tag",
    "load_cache",
]
