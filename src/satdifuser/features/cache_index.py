"""The completion mark of a feature cache: ``index.json``, shard digests, damage and mismatch."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from satdifuser.errors import CacheCorruptError, CacheMismatchError, DataFormatError
from satdifuser.features.atomic_io import atomic_write_bytes, atomic_write_json, sha256_file
from satdifuser.features.cache_format import (
    INDEX_FILE,
    STORAGE_CODES,
    Layout,
    ShardEntry,
    corrupt_error,
    digest_name,
    feature_key,
    read_safetensors_header,
    shard_name,
)
from satdifuser.features.cache_key import fingerprint_differences
from satdifuser.features.cache_plan import CachePlan
from satdifuser.features.cache_shard import check_shards


def mismatch_error(folder: Path, cached: CachePlan, asked: CachePlan) -> CacheMismatchError:
    """The one-line error naming every field that differs between two plans."""
    diffs = fingerprint_differences(cached.fingerprint, asked.fingerprint, cached.ids, asked.ids)
    return CacheMismatchError(
        f"feature cache {folder} was built with another configuration ({'; '.join(diffs)}); "
        "choose another cache dir for this configuration or rebuild it "
        "(--overwrite / overwrite=True)"
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_index(folder: Path, index: dict[str, Any]) -> tuple[CachePlan, list[ShardEntry], Layout]:
    """The plan, shard entries and tensor table of an ``index.json``, every field type-checked.

    Raises:
        CacheCorruptError: For a missing or mistyped field, or shards that do not tile the plan.
    """
    path = folder / INDEX_FILE

    def bad(field: str, value: object, expected: str) -> CacheCorruptError:
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        return corrupt_error(
            path, f"has {field} = {shown} ({type(value).__name__}), expected {expected}"
        )

    try:
        plan = CachePlan.from_json(index, path)
        info = plan.feature_info
    except DataFormatError as exc:
        raise CacheCorruptError(str(exc)) from None
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise bad(
            "fingerprint.feature_info", exc, "rows [tap, timestep, channels, stride]"
        ) from None
    if index.get("complete") is not True:
        raise bad("complete", index.get("complete"), "true")
    shards = index.get("shards")
    if not isinstance(shards, list) or len(shards) != plan.num_shards:
        raise bad("shards", shards, f"a list of {plan.num_shards} shard entries")
    entries = []
    for k, e in enumerate(shards):
        start, stop = plan.shard_range(k)
        if not isinstance(e, dict):
            raise bad(f"shards[{k}]", e, "an object")
        want = {"file": shard_name(k), "start": start, "count": stop - start}
        for name, value in want.items():
            if e.get(name) != value or type(e.get(name)) is not type(value):
                raise bad(f"shards[{k}].{name}", e.get(name), repr(value))
        if not _is_int(e.get("bytes")) or e["bytes"] <= 0:
            raise bad(f"shards[{k}].bytes", e.get("bytes"), "a positive integer")
        sha = e.get("sha256")
        if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise bad(f"shards[{k}].sha256", sha, "64 hex digits")
        entries.append(ShardEntry(e["file"], start, stop - start, e["bytes"], sha))
    layout = _parse_layout(index.get("tensors"), bad)
    names = {feature_key(i) for i in range(len(info))} | set(plan.targets)
    if set(layout) != names:
        raise bad("tensors", sorted(layout), f"the tensors {sorted(names)}")
    code = STORAGE_CODES.get(plan.storage_dtype)
    for i in range(len(info)):
        if layout[feature_key(i)][0] != code:
            raise bad(f"tensors.{feature_key(i)}", layout[feature_key(i)][0], repr(code))
    return plan, entries, layout


def _parse_layout(tensors: object, bad: Any) -> Layout:
    if not isinstance(tensors, dict):
        raise bad("tensors", tensors, "an object {name: [dtype, shape]}")
    layout: Layout = {}
    for name, v in tensors.items():
        if (
            not isinstance(v, list)
            or len(v) != 2
            or not isinstance(v[0], str)
            or not isinstance(v[1], list)
            or not all(_is_int(d) and d >= 0 for d in v[1])
        ):
            raise bad(f"tensors.{name}", v, "[dtype, shape without rows]")
        layout[name] = (v[0], tuple(v[1]))
    return layout


def damaged_shards(folder: Path, index: dict[str, Any]) -> list[tuple[int, CacheCorruptError]]:
    """Shards of a complete cache that are missing or altered since ``index.json`` was written.

    Each shard gets the readers' check (size, header, sha256, finite values; hashed once per
    process), so a rebuild re-extracts exactly the shards a reader would refuse.

    Raises:
        CacheCorruptError: When ``index.json`` itself is malformed.
    """
    _, entries, layout = parse_index(folder, index)
    errors = check_shards(folder, entries, layout)
    return [(k, e) for k, e in enumerate(errors) if e is not None]


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
    atomic_write_json(folder / INDEX_FILE, index, sort_keys=True, indent=1)
    return index


__all__ = ["damaged_shards", "mismatch_error", "parse_index", "shard_digest", "write_index"]
