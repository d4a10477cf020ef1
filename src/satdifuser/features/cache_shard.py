"""Opening a feature-cache shard: checked once per process, then memory-mapped.

Every reader of a cache (``CachedFeatureDataset``, the in-memory loaders built on it, and the
builder's self-healing check) opens shards through :func:`check_shard`, which refuses, with a
one-line :class:`~satdifuser.errors.CacheCorruptError` naming the file:

- a missing shard or one whose size differs from ``index.json``;
- a header that is unparsable or inconsistent (unknown dtype, shape that does not match its byte
  span, offsets outside the file) or that does not match the tensor table of ``index.json``;
- bytes whose sha256 differs from the one recorded when the shard was written (this catches any
  flipped bit, even one that leaves a float16 value finite, and a same-size overwrite);
- NaN or Inf in a floating-point tensor.

The sha256 and the finite check cost one sequential read of the shard; they run the first time
a process opens a given file version (path, inode, size, mtime) and are remembered for the rest
of the process, so random row reads afterwards cost nothing extra. A shard written by this
process is remembered from its in-memory digest (the writer refuses non-finite features).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from satdifuser.errors import CacheCorruptError
from satdifuser.features.atomic_io import sha256_file
from satdifuser.features.cache_format import (
    INDEX_FILE,
    Layout,
    ShardEntry,
    corrupt_error,
    read_safetensors_header,
)

FileKey = tuple[str, int, int, int, int]
"""(absolute path, device, inode, size, mtime in ns): one version of a file."""

NP_DTYPES: dict[str, type[np.generic]] = {
    "F16": np.float16,
    "F32": np.float32,
    "F64": np.float64,
    "BF16": np.uint16,  # numpy has no bfloat16: read the bits, view as torch.bfloat16
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}

# (unsigned view, exponent mask): a float is NaN or Inf exactly when all its exponent bits are set
_EXPONENT = {
    "F16": (np.uint16, 0x7C00),
    "BF16": (np.uint16, 0x7F80),
    "F32": (np.uint32, 0x7F80_0000),
    "F64": (np.uint64, 0x7FF0_0000_0000_0000),
}
_CHUNK = 1 << 22  # elements per finite-check step (bounds the temporary arrays)

_CHECKED: dict[FileKey, str] = {}


def file_key(path: Path, st: os.stat_result | None = None) -> FileKey:
    """Identity of the current version of ``path``."""
    st = st if st is not None else path.stat()
    return (os.path.abspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def remember_checked(path: Path, sha256: str) -> None:
    """Record that ``path`` (as it is now) holds bytes of this digest that passed every check."""
    _CHECKED[file_key(path)] = sha256


def checked_files() -> dict[FileKey, str]:
    """The file versions this process has checked (to hand to worker processes)."""
    return dict(_CHECKED)


def adopt_checked(checked: dict[FileKey, str]) -> None:
    """Trust file versions checked by another process (the one that built a dataset)."""
    _CHECKED.update(checked)


def forget_checked() -> None:
    """Forget every check of this process (the next open re-hashes, as a new process would)."""
    _CHECKED.clear()


def check_layout(
    path: Path, header: dict[str, dict[str, object]], layout: Layout, rows: int
) -> None:
    """Refuse a shard whose tensors differ from the index's table or row count."""
    tensors = {n: t for n, t in header.items() if n != "__metadata__"}
    if set(tensors) != set(layout):
        raise corrupt_error(
            path, f"holds tensors {sorted(tensors)} but {INDEX_FILE} records {sorted(layout)}"
        )
    for name, (dtype, shape) in sorted(layout.items()):
        got = (tensors[name]["dtype"], tuple(tensors[name]["shape"]))  # type: ignore[arg-type]
        if got != (dtype, (rows, *shape)):
            raise corrupt_error(
                path,
                f"holds {name} as {got[0]} {list(got[1])} but {INDEX_FILE} records "
                f"{dtype} {[rows, *shape]}",
            )


def _check_finite(
    path: Path, header: dict[str, dict[str, object]], offset: int, first_row: int
) -> None:
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    for name, t in sorted(header.items()):
        if name == "__metadata__" or t["dtype"] not in _EXPONENT:
            continue
        utype, mask = _EXPONENT[str(t["dtype"])]
        begin, end = t["data_offsets"]  # type: ignore[misc]
        bits = raw[offset + begin : offset + end].view(utype)
        for i in range(0, len(bits), _CHUNK):
            bad = np.bitwise_and(bits[i : i + _CHUNK], mask) == mask
            if bad.any():
                shape = list(t["shape"])  # type: ignore[call-overload]
                per_row = max(1, int(np.prod(shape[1:])))
                row = first_row + (i + int(bad.argmax())) // per_row
                raise corrupt_error(path, f"holds NaN or Inf in {name} (cache row {row})")


def check_shard(
    folder: Path, entry: ShardEntry, layout: Layout, *, fresh: bool = False
) -> tuple[dict[str, dict[str, object]], int]:
    """Check one shard against its index entry (digest and finite check once per process).

    Args:
        folder: Cache folder.
        entry: The shard's entry in ``index.json``.
        layout: The tensor table of ``index.json``.
        fresh: Re-hash even when this process has checked the file already.

    Returns:
        The shard's checked header and the offset of its data section.

    Raises:
        CacheCorruptError: For a missing, resized, altered or non-finite shard, or a bad header.
    """
    path = folder / entry.file
    try:
        st = path.stat()
    except OSError:
        raise corrupt_error(path, f"is missing (listed in {INDEX_FILE})") from None
    if st.st_size != entry.bytes:
        raise corrupt_error(path, f"is {st.st_size} bytes but {INDEX_FILE} records {entry.bytes}")
    header, offset = read_safetensors_header(path)
    check_layout(path, header, layout, entry.count)
    key = file_key(path, st)
    sha = None if fresh else _CHECKED.get(key)
    if sha is None:
        sha = sha256_file(path)
        if sha == entry.sha256:
            _check_finite(path, header, offset, entry.start)
            _CHECKED[key] = sha
    if sha != entry.sha256:
        raise corrupt_error(
            path,
            f"has another sha256 ({sha[:12]}...) than recorded in {INDEX_FILE} "
            f"({entry.sha256[:12]}...): its bytes changed after it was written",
        )
    return header, offset


def check_shards(
    folder: Path, entries: Sequence[ShardEntry], layout: Layout, *, fresh: bool = False
) -> list[CacheCorruptError | None]:
    """:func:`check_shard` on every shard, a few in parallel (hashing releases the GIL).

    Returns:
        Per shard, its error or None.
    """

    def one(entry: ShardEntry) -> CacheCorruptError | None:
        try:
            check_shard(folder, entry, layout, fresh=fresh)
        except CacheCorruptError as exc:
            return exc
        return None

    if len(entries) <= 1:
        return [one(e) for e in entries]
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1, len(entries))) as pool:
        return list(pool.map(one, entries))


def open_shard(folder: Path, entry: ShardEntry, layout: Layout) -> dict[str, np.ndarray]:
    """Check a shard (see :func:`check_shard`) and memory-map its tensors (read-only).

    Returns:
        ``{name: array}`` with the stored shapes; bfloat16 tensors as their uint16 bits.
    """
    header, offset = check_shard(folder, entry, layout)
    raw = np.memmap(folder / entry.file, dtype=np.uint8, mode="r")
    arrays = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        begin, end = t["data_offsets"]  # type: ignore[misc]
        dtype = NP_DTYPES[str(t["dtype"])]
        arrays[name] = raw[offset + begin : offset + end].view(dtype).reshape(t["shape"])  # type: ignore[call-overload]
    return arrays


__all__ = [
    "NP_DTYPES",
    "FileKey",
    "adopt_checked",
    "check_layout",
    "check_shard",
    "check_shards",
    "checked_files",
    "file_key",
    "forget_checked",
    "open_shard",
    "remember_checked",
]
