"""On-disk feature cache: extract once, train many epochs from memory-mapped shards.

The pieces live in their own modules (one concept each); this module is the public entry point:

- :class:`FeatureCacheBuilder` (``cache_store``): plan, size check, resumable multi-process writes.
- :class:`CachedFeatureDataset` (``cache_dataset``): random access to a complete cache.
- :func:`build_feature_cache`: both in one call (builds or verifies and reuses).
- :class:`CachedDataModule` (``cache_datamodule``, imported lazily: it needs Lightning).

Layout and guarantees: see ``cache_format`` and ``docs/cache.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from satdifuser.features.cache_dataset import CachedFeatureDataset, load_index, verify_cache
from satdifuser.features.cache_plan import CachePlan, human_bytes, make_plan
from satdifuser.features.cache_store import BuildReport, FeatureCacheBuilder

if TYPE_CHECKING:
    from satdifuser.features.cache_datamodule import CachedDataModule


def build_feature_cache(
    dataset: Any,
    extractor: Any,
    folder: str | Path,
    *,
    dtype: str = "float16",
    keep_taps: Sequence[str] | None = None,
    batch_size: int = 8,
    shard_size: int | None = None,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    max_gb: float | None = None,
    overwrite: bool = False,
    progress: bool = False,
    output_dtype: str = "float32",
) -> CachedFeatureDataset:
    """Build (or resume, or verify and reuse) the cache of ``dataset`` and open it.

    With a ``torch.distributed`` process group, every rank must call this: each extracts its
    shards and all return the complete cache.

    Args:
        dataset: Map-style dataset of sample dicts with ``image``, ``id`` (and ``label``/``mask``).
        extractor: ``FeatureExtractor`` (or any module with ``feature_info``, ``spec``,
            ``identity()``).
        folder: Cache folder of this split.
        dtype: Storage dtype: ``float16`` (default), ``bfloat16`` or ``float32``.
        keep_taps: fnmatch patterns of the taps to keep (all when None).
        batch_size: Extraction batch size.
        shard_size: Rows per shard (auto: about 256 MiB).
        num_workers: DataLoader workers for reading images.
        device: Extraction device (default: the extractor's).
        max_gb: Refuse when the estimated size exceeds this many GB (1e9 bytes).
        overwrite: Delete a cache of another configuration in ``folder`` and rebuild.
        progress: Show a tqdm bar (images per second).
        output_dtype: Dtype of the served features.

    Returns:
        The complete cache as a dataset.

    Raises:
        CacheMismatchError: ``folder`` holds a cache of another configuration.
        InsufficientDiskError: The estimate exceeds ``max_gb`` or the free disk.
    """
    builder = FeatureCacheBuilder(
        dataset,
        extractor,
        folder,
        dtype=dtype,
        keep_taps=keep_taps,
        batch_size=batch_size,
        shard_size=shard_size,
        num_workers=num_workers,
        device=device,
    )
    builder.prepare(overwrite=overwrite, max_gb=max_gb)
    builder.run(progress=progress)
    return CachedFeatureDataset(folder, expected=builder.plan, output_dtype=output_dtype)


def __getattr__(name: str) -> Any:
    if name == "CachedDataModule":  # lazy: importing Lightning costs seconds
        from satdifuser.features.cache_datamodule import CachedDataModule

        return CachedDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BuildReport",
    "CachePlan",
    "CachedDataModule",
    "CachedFeatureDataset",
    "FeatureCacheBuilder",
    "build_feature_cache",
    "human_bytes",
    "load_index",
    "make_plan",
    "verify_cache",
]
