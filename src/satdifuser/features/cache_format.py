"""On-disk layout of a feature cache folder (one dataset split, one extractor configuration).

::

    <folder>/plan.json                 written first: fingerprint, sample ids, shard layout
    <folder>/shard-00000.safetensors   rows [0, shard_size): f000..fNNN (n, C, H, W) + label/mask
    <folder>/shard-00000.sha256        "<sha256> <bytes>" of the shard, written right after it
    ...
    <folder>/index.json                written last: plan + shard list + shapes; its presence
                                       means the cache is complete

Every file is written to a temporary name, fsynced and renamed, so a reader never sees a partial
file. Shard ``k`` always holds the same rows whatever the number of processes, and every file's
content depends only on the configuration (no times, hosts or process counts), so an interrupted,
resumed or multi-process build gives byte-identical files.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import torch

from satdifuser.errors import CacheCorruptError, DataFormatError

PLAN_FILE = "plan.json"
INDEX_FILE = "index.json"
SHARD_PREFIX = "shard-"


def shard_name(k: int) -> str:
    """File name of shard ``k``."""
    return f"{SHARD_PREFIX}{k:05d}.safetensors"


def digest_name(k: int) -> str:
    """File name of the sidecar holding shard ``k``'s sha256 and size."""
    return f"{SHARD_PREFIX}{k:05d}.sha256"


def feature_key(i: int) -> str:
    """Tensor name of the ``i``-th stored feature map inside a shard."""
    return f"f{i:03d}"


def read_json(path: Path) -> dict[str, object]:
    """Load a cache JSON file, with a one-line error when it is unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataFormatError(
            f"cache file {path} is unreadable ({exc.__class__.__name__}: {exc}); "
            "delete the cache folder or rebuild it with --overwrite"
        ) from None
    if not isinstance(data, dict):
        raise DataFormatError(
            f"cache file {path} holds {type(data).__name__}, expected a JSON object; "
            "rebuild the cache with --overwrite"
        )
    return data


@dataclass(frozen=True)
class ShardEntry:
    """One shard as ``index.json`` records it (rows ``[start, start + count)``)."""

    file: str
    start: int
    count: int
    bytes: int
    sha256: str


Layout = dict[str, tuple[str, tuple[int, ...]]]
"""Tensor name -> (safetensors dtype code, shape without the row axis), as in ``index.json``."""


def corrupt_error(path: Path, what: str) -> CacheCorruptError:
    """The one-line error for a damaged cache file: the file, what is wrong, and the fix.

    The error keeps ``path`` and ``what`` as attributes (for the builder's self-heal warning).
    """
    error = CacheCorruptError(
        f"cache file {path} {what}; the feature cache {path.parent} is damaged: delete that "
        "folder and rerun `satdifuser extract` (or fit) to rebuild it"
    )
    error.path, error.what = path, what  # type: ignore[attr-defined]
    return error


ST_ITEMSIZE = {
    "F16": 2, "BF16": 2, "F32": 4, "F64": 8, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
    "BOOL": 1,
}  # fmt: skip
"""Bytes per element of each safetensors dtype code a cache may hold."""

STORAGE_CODES = {"float16": "F16", "bfloat16": "BF16", "float32": "F32"}
"""Safetensors dtype code of each feature storage dtype."""

_ST_DTYPES = {
    torch.float16: "F16", torch.bfloat16: "BF16", torch.float32: "F32", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}  # fmt: skip


def safetensors_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """Serialise ``tensors`` in the safetensors format, byte-for-byte deterministically.

    ``safetensors.torch.save`` orders the header's JSON keys arbitrarily (a hash map), so two
    identical shards could differ in bytes; here keys are sorted and tensors laid out by name.

    Raises:
        ValueError: For a dtype safetensors cannot hold.
    """
    header: dict[str, object] = {"__metadata__": dict(sorted(metadata.items()))}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype not in _ST_DTYPES:
            raise ValueError(f"tensor {name!r} has dtype {t.dtype}, which safetensors cannot store")
        blob = t.reshape(-1).view(torch.uint8).numpy().tobytes()
        header[name] = {
            "dtype": _ST_DTYPES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # data section 8-byte aligned, as safetensors writes it
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_safetensors_header(path: Path) -> tuple[dict[str, dict[str, object]], int]:
    """Tensor table and data offset of a safetensors file, checked, without reading the data.

    Every tensor entry is checked: a known dtype, a shape of non-negative integers, and
    ``data_offsets`` that lie inside the file and span exactly ``prod(shape) * itemsize`` bytes,
    so a memory map built from the table never reads outside its tensor.

    Returns:
        (``{name: {"dtype", "shape", "data_offsets"}}`` plus ``__metadata__``, byte offset
        where the data section starts).

    Raises:
        CacheCorruptError: For a truncated, unparsable or inconsistent header.
    """
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(8)
            if len(head) < 8:
                raise ValueError(f"the file is {size} bytes, too short for a header")
            (n,) = struct.unpack("<Q", head)
            if n > min(100_000_000, size - 8):
                raise ValueError(f"header length {n} is implausible for a file of {size} bytes")
            header = json.loads(fh.read(n))
    except (OSError, ValueError, struct.error) as exc:
        raise corrupt_error(path, f"has no valid safetensors header ({exc})") from None
    _check_header(path, header, size - 8 - n)
    return header, 8 + n


def _check_header(path: Path, header: object, data_len: int) -> None:
    if not isinstance(header, dict):
        raise corrupt_error(path, f"has a {type(header).__name__} header, expected a JSON object")
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise corrupt_error(path, f"has header __metadata__ {meta!r}, expected strings")
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(t, dict):
            raise corrupt_error(path, f"has header entry {name!r} = {t!r}, expected an object")
        dtype, shape, offsets = t.get("dtype"), t.get("shape"), t.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in ST_ITEMSIZE:
            raise corrupt_error(
                path,
                f"has tensor {name!r} of unknown dtype {dtype!r} (known: {sorted(ST_ITEMSIZE)})",
            )
        if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
            raise corrupt_error(
                path, f"has tensor {name!r} of shape {shape!r}, expected non-negative integers"
            )
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_is_int(o) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_len
        ):
            raise corrupt_error(
                path,
                f"has tensor {name!r} with data_offsets {offsets!r}, expected [begin, end] "
                f"within its {data_len}-byte data section",
            )
        need = math.prod(shape) * ST_ITEMSIZE[dtype]
        if offsets[1] - offsets[0] != need:
            raise corrupt_error(
                path,
                f"has tensor {name!r} of shape {shape} {dtype} ({need} bytes) but data_offsets "
                f"{offsets} span {offsets[1] - offsets[0]} bytes",
            )


__all__ = [
    "INDEX_FILE",
    "PLAN_FILE",
    "SHARD_PREFIX",
    "STORAGE_CODES",
    "ST_ITEMSIZE",
    "Layout",
    "ShardEntry",
    "corrupt_error",
    "digest_name",
    "feature_key",
    "read_json",
    "read_safetensors_header",
    "safetensors_bytes",
    "shard_name",
]
