"""Building a feature cache: resumable, crash-safe, shared among processes.

Shard ``k`` (rows ``[k*shard_size, (k+1)*shard_size)``) is extracted by rank ``k % world_size``
and written atomically; a rerun skips the shards already on disk, so ``kill -9`` at any moment
costs at most the shards in flight. The index is written last, by rank 0 after a barrier (or,
without a process group, by whichever rank finds every shard present).
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from satdifuser.errors import CacheMismatchError, ConfigError, DataFormatError, SatdifuserError
from satdifuser.features.atomic_io import (
    TMP_MARK,
    atomic_write_bytes,
    atomic_write_json,
)
from satdifuser.features.cache_format import (
    INDEX_FILE,
    PLAN_FILE,
    SHARD_PREFIX,
    digest_name,
    feature_key,
    read_json,
    safetensors_bytes,
    shard_name,
)
from satdifuser.features.cache_index import damaged_shards, mismatch_error, write_index
from satdifuser.features.cache_key import same_features
from satdifuser.features.cache_plan import CachePlan, check_disk, make_plan, plan_protects_nothing
from satdifuser.features.cache_shard import remember_checked
from satdifuser.features.distributed import RankInfo, all_ok, barrier, current_rank

_TORCH_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


@dataclass
class BuildReport:
    """What :meth:`FeatureCacheBuilder.run` did on this rank."""

    folder: Path
    reused: bool
    shards_written: int
    samples_extracted: int
    seconds: float


class FeatureCacheBuilder:
    """Plans, checks and writes the feature cache of one dataset split.

    Args:
        dataset: Map-style dataset of sample dicts (``image``, ``meta``, ``id``, and
            ``label`` or ``mask``).
        extractor: A ``FeatureExtractor`` (``feature_info``, ``spec``, ``identity()``, forward).
        folder: Cache folder of this split.
        dtype: Storage dtype (``float16``, ``bfloat16``, ``float32``).
        keep_taps: fnmatch patterns of the taps to store (all when None).
        batch_size: Extraction batch size.
        shard_size: Rows per shard (auto: about 256 MiB per shard).
        num_workers: DataLoader workers reading images.
        device: Device to extract on (default: the extractor's own).
        rank: This process's rank when no process group is initialised.
        world_size: Number of processes when no process group is initialised.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
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
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        self.dataset = dataset
        self.extractor = extractor
        self.folder = Path(folder)
        self.num_workers = num_workers
        self.device = device
        self.ranks: RankInfo = current_rank(rank, world_size)
        self.asked = make_plan(
            dataset,
            extractor,
            dtype=dtype,
            keep_taps=keep_taps,
            batch_size=batch_size,
            shard_size=shard_size,
        )
        self.plan = self.asked
        self.complete = False
        self.layout_adopted = False
        self.replace_plan = False
        self.damaged: list[int] = []

    # -- inspection ---------------------------------------------------------------------------
    def _adopt_existing(self) -> None:
        """Compare with an existing index/plan; adopt its layout (raises on mismatch)."""
        for name in (INDEX_FILE, PLAN_FILE):
            path = self.folder / name
            if path.is_file():
                data = read_json(path)
                existing = CachePlan.from_json(data, path)
                if not same_features(existing.fingerprint, self.asked.fingerprint):
                    if name == PLAN_FILE and plan_protects_nothing(self.folder):
                        self.replace_plan = True  # left by a run that failed before any shard
                        return
                    raise mismatch_error(self.folder, existing, self.asked)
                self.complete = name == INDEX_FILE
                if self.complete:  # self-heal: shards deleted or altered since the index
                    found = damaged_shards(self.folder, data)
                    self.damaged = [k for k, _ in found]
                    self.complete = not self.damaged
                    if found:
                        k, error = found[0]
                        why = f"{shard_name(k)} {getattr(error, 'what', error)}"
                        warnings.warn(
                            f"re-extracting shards {self.damaged} of the complete cache "
                            f"{self.folder}, damaged since it was written ({why})",
                            stacklevel=3,
                        )
                self.layout_adopted = (existing.shard_size, existing.batch_size) != (
                    self.asked.shard_size,
                    self.asked.batch_size,
                )
                self.plan = existing
                return
        strays = (
            sorted(self.folder.glob(f"{SHARD_PREFIX}*.safetensors")) if self.folder.is_dir() else []
        )
        if strays:
            raise CacheMismatchError(
                f"{self.folder} holds {len(strays)} shard files but no {PLAN_FILE}, so their "
                "configuration is unknown; choose another cache dir or rebuild it (--overwrite)"
            )

    def done_shards(self) -> list[int]:
        """Shards already on disk (complete: they were renamed into place)."""
        return [k for k in range(self.plan.num_shards) if (self.folder / shard_name(k)).is_file()]

    def remaining_bytes(self) -> int:
        """Estimated bytes still to write (all ranks)."""
        done = set(self.done_shards())
        rows = sum(
            self.plan.shard_range(k)[1] - self.plan.shard_range(k)[0]
            for k in range(self.plan.num_shards)
            if k not in done
        )
        return rows * self.plan.bytes_per_sample

    def prepare(self, *, overwrite: bool = False, max_gb: float | None = None) -> CachePlan:
        """Check the folder, write ``plan.json``; all ranks agree or all raise.

        Raises:
            CacheMismatchError: The folder holds a cache of another configuration.
            InsufficientDiskError: The estimate exceeds ``max_gb`` or the free disk.
        """
        error: SatdifuserError | None = None
        try:
            if overwrite:
                if self.ranks.world_size > 1 and not self.ranks.collective:
                    raise ConfigError(
                        "overwrite with several ranks needs a torch.distributed process group; "
                        "delete the cache folder once, then start the ranks without --overwrite"
                    )
                if self.ranks.rank == 0:
                    self._remove_cache_files()
                barrier(self.ranks)
            self._adopt_existing()
            if not self.complete:
                check_disk(self.folder, self.plan, self.remaining_bytes(), max_gb)
        except SatdifuserError as exc:
            error = exc
        if not all_ok(self.ranks, error is None):
            raise error or CacheMismatchError(
                f"another extraction rank refused the cache {self.folder}; see its error message"
            )
        if not self.complete and self.ranks.rank == 0:
            self.folder.mkdir(parents=True, exist_ok=True)
            if self.replace_plan or not (self.folder / PLAN_FILE).is_file():
                atomic_write_json(
                    self.folder / PLAN_FILE, self.plan.to_json(), sort_keys=True, indent=1
                )
        barrier(self.ranks)
        return self.plan

    def _remove_cache_files(self) -> None:
        if not self.folder.is_dir():
            return
        for p in self.folder.iterdir():
            ours = p.name in (INDEX_FILE, PLAN_FILE) or p.name.startswith(SHARD_PREFIX)
            if p.is_file() and (
                ours
                or (TMP_MARK in p.name and p.name.split(TMP_MARK)[0] in (INDEX_FILE, PLAN_FILE))
            ):
                p.unlink()

    # -- extraction ---------------------------------------------------------------------------
    def run(self, *, progress: bool = False) -> BuildReport:
        """Extract this rank's missing shards, then write the index (call :meth:`prepare` first)."""
        t0 = time.perf_counter()
        if self.complete:
            return BuildReport(self.folder, True, 0, 0, 0.0)
        self.folder.mkdir(parents=True, exist_ok=True)
        if not (self.folder / PLAN_FILE).is_file():
            atomic_write_json(
                self.folder / PLAN_FILE, self.plan.to_json(), sort_keys=True, indent=1
            )
        mine = [k for k in range(self.plan.num_shards) if self.ranks.owns(k)]
        for k in self.damaged:
            if self.ranks.owns(k):
                (self.folder / shard_name(k)).unlink(missing_ok=True)
        for k in mine:  # leftovers of a killed writer of a shard this rank owns
            for p in self.folder.glob(f"{SHARD_PREFIX}{k:05d}.*{TMP_MARK}*"):
                p.unlink(missing_ok=True)
        pending = [k for k in mine if not (self.folder / shard_name(k)).is_file()]
        n_rows = sum(len(b) for k in pending for b in self.plan.batches(k))
        error: BaseException | None = None
        try:
            if pending:
                self._extract(pending, n_rows, progress)
        except SatdifuserError as exc:
            error = exc
        if not all_ok(self.ranks, error is None):
            raise error or DataFormatError(
                f"another extraction rank failed while writing {self.folder}; see its error message"
            )
        barrier(self.ranks)
        if self.ranks.rank == 0 or not self.ranks.collective:
            if len(self.done_shards()) == self.plan.num_shards:
                write_index(self.folder, self.plan)
        barrier(self.ranks)
        self.complete = (self.folder / INDEX_FILE).is_file()
        return BuildReport(self.folder, False, len(pending), n_rows, time.perf_counter() - t0)

    def _extract(self, pending: list[int], n_rows: int, progress: bool) -> None:
        from tqdm.auto import tqdm

        plan, extractor = self.plan, self.extractor
        batches = [b for k in pending for b in plan.batches(k)]
        loader = DataLoader(self.dataset, batch_sampler=batches, num_workers=self.num_workers)
        device = torch.device(self.device) if self.device is not None else _module_device(extractor)
        moved_from = _module_device(extractor)
        extractor.to(device)
        was_training = extractor.training
        extractor.eval()
        dtype = _TORCH_DTYPES[plan.storage_dtype]
        desc = f"extract {self.folder.name}" + (
            f" [rank {self.ranks.rank}/{self.ranks.world_size}]"
            if self.ranks.world_size > 1
            else ""
        )
        bar = tqdm(total=n_rows, unit="img", desc=desc, disable=not progress, dynamic_ncols=True)
        shards = iter(pending)
        k = next(shards)
        start, stop = plan.shard_range(k)
        buffer: dict[str, torch.Tensor] = {}
        try:
            for rows, batch in zip(batches, loader, strict=True):
                ids = [str(i) for i in batch["id"]]
                if ids != [plan.ids[r] for r in rows]:
                    raise DataFormatError(
                        f"rows {rows[0]}..{rows[-1]} of the dataset have ids {ids[:2]}... but "
                        f"the cache plan expects {[plan.ids[r] for r in rows[:2]]}...; the "
                        "dataset order must be deterministic"
                    )
                images = batch["image"].to(device)
                meta = batch.get("meta")
                with torch.inference_mode():
                    out = extractor(images, meta.to(device) if meta is not None else None)
                maps = [out[i] for i in plan.kept]
                if rows[0] == start:
                    buffer = {}
                _fill(buffer, maps, batch, plan, rows[0] - start, stop - start, dtype)
                bar.update(len(rows))
                if rows[-1] + 1 == stop:
                    self._write_shard(k, buffer)
                    k = next(shards, -1)
                    if k >= 0:
                        start, stop = plan.shard_range(k)
        finally:
            bar.close()
            extractor.to(moved_from)
            extractor.train(was_training)

    def _write_shard(self, k: int, tensors: dict[str, torch.Tensor]) -> None:
        start, stop = self.plan.shard_range(k)
        meta = {
            "key": self.plan.key,
            "shard": str(k),
            "start": str(start),
            "count": str(stop - start),
        }
        data = safetensors_bytes(tensors, meta)
        digest = hashlib.sha256(data).hexdigest()
        atomic_write_bytes(self.folder / shard_name(k), data)
        atomic_write_bytes(self.folder / digest_name(k), f"{digest} {len(data)}\n".encode())
        remember_checked(self.folder / shard_name(k), digest)  # its features are finite (_fill)


def _module_device(module: Any) -> torch.device:
    device = getattr(module, "device", None)  # FeatureExtractor: its (unregistered) backbone's
    if isinstance(device, torch.device):
        return device
    for p in module.parameters():
        return p.device
    for b in module.buffers():
        return b.device
    return torch.device("cpu")


def _fill(
    buffer: dict[str, torch.Tensor],
    maps: list[torch.Tensor],
    batch: dict[str, Any],
    plan: CachePlan,
    offset: int,
    rows: int,
    dtype: torch.dtype,
) -> None:
    info = plan.feature_info
    for i, m in enumerate(maps):
        name = feature_key(i)
        if not torch.isfinite(m).all():
            ids = [str(i) for i in batch["id"]]
            raise ConfigError(
                f"feature map {info[i].tap}@t={info[i].timestep} of samples {ids[:3]}"
                f"{'...' if len(ids) > 3 else ''} holds NaN or Inf: the extractor's output is not "
                "finite and is not cached; extract with --compute-dtype float32 or check the "
                "backbone weights"
            )
        stored = m.detach().to("cpu", dtype)
        if not torch.isfinite(stored).all():
            raise ConfigError(
                f"feature map {info[i].tap}@t={info[i].timestep} exceeds the "
                f"{plan.storage_dtype} range (max |x| = {m.abs().max().item():.3g}); "
                "store it with --dtype bfloat16 or float32"
            )
        if name not in buffer:
            buffer[name] = torch.empty((rows, *stored.shape[1:]), dtype=dtype)
        buffer[name][offset : offset + len(stored)] = stored
    for key in plan.targets:
        value = torch.as_tensor(batch[key])
        if key not in buffer:
            buffer[key] = torch.empty((rows, *value.shape[1:]), dtype=value.dtype)
        buffer[key][offset : offset + len(value)] = value


__all__ = ["BuildReport", "FeatureCacheBuilder"]
