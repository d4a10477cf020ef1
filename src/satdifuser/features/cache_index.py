"""The completion mark of a feature cache: ``index.json``, shard digests, damage and mismatch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from satdifuser.errors import CacheMismatchError, DataFormatError
from satdifuser.features.atomic_io import atomic_write_bytes, atomic_write_json, sha256_file
from satdifuser.features.cache_format import (
    INDEX_FILE,
    digest_name,
    read_safetensors_header,
    shard_name,
)
from satdifuser.features.cache_key import fingerprint_differences
from satdifuser.features.cache_plan import CachePlan


def mismatch_error(folder: Path, cached: CachePlan, asked: CachePlan) -> CacheMismatchError:
    """The one-line error naming every field that differs between two plans."""
    diffs = fingerprint_differences(cached.fingerprint, asked.fingerprint, cached.ids, asked.ids)
    return CacheMismatchError(
        f"feature cache {folder} was built with another configuration ({'; '.join(diffs)}); "
        "choose another cache dir for this configuration or rebuild it "
        "(--overwrite / overwrite=True)"
    )


def damaged_shards(folder: Path, index: dict[str, Any]) -> list[int]:
    """Shards listed in an index that are now missing or have another size."""
    bad = []
    for k, entry in enumerate(index.get("shards", [])):
        path = folder / shard_name(k)
        if not path.is_file() or path.stat().st_size != entry.get("bytes"):
            bad.append(k)
    return bad


def shard_digest(folder: Path, k: int) -> tuple[str, int]:
    """(sha256, bytes) of shard ``k``: from its sidecar, or hashed (and the sidecar rewritten)."""
    side, path = folder / digest_name(k), folder / shard_name(k)
    size = path.stat().st_size
    try:
        sha, nbytes = side.read_text().split()
        if int(nbytes) == size and len(sha) == 64:
            return sha, size
    except (OSError, ValueError):
        pass
    sha = sha256_file(path)
    atomic_write_bytes(side, f"{sha} {size}\n".encode())
    return sha, size


def write_index(folder: Path, plan: CachePlan) -> dict[str, Any]:
    """Write ``index.json`` (the completion mark) once every shard is present.

    Raises:
        DataFormatError: When shards disagree on tensor names, shapes or dtypes.
    """
    shards, layout = [], None
    for k in range(plan.num_shards):
        header, _ = read_safetensors_header(folder / shard_name(k))
        start, stop = plan.shard_range(k)
        tensors = {n: v for n, v in header.items() if n != "__metadata__"}
        this = {n: [v["dtype"], list(v["shape"])[1:]] for n, v in sorted(tensors.items())}
        rows = {int(v["shape"][0]) for v in tensors.values()}
        if layout is None:
            layout = this
        if this != layout or rows != {stop - start}:
            raise DataFormatError(
                f"cache shard {folder / shard_name(k)} holds {this} x {rows} rows, expected "
                f"{layout} x {stop - start}; rebuild the cache with --overwrite"
            )
        sha, size = shard_digest(folder, k)
        shards.append(
            {
                "file": shard_name(k),
                "start": start,
                "count": stop - start,
                "bytes": size,
                "sha256": sha,
            }
        )
    index = {**plan.to_json(), "complete": True, "shards": shards, "tensors": layout}
    atomic_write_json(folder / INDEX_FILE, index)
    return index


__all__ = ["damaged_shards", "mismatch_error", "shard_digest", "write_index"]
