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
import struct
from pathlib import Path

import torch

from satdifuser.errors import DataFormatError

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


def read_safetensors_header(path: Path) -> tuple[dict[str, dict[str, object]], int]:
    """Tensor table and data offset of a safetensors file, without reading the data.

    Returns:
        (``{name: {"dtype", "shape", "data_offsets"}}`` plus ``__metadata__``, byte offset
        where the data section starts).
    """
    try:
        with open(path, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            if n > 100_000_000:
                raise ValueError(f"header length {n} is implausible")
            header = json.loads(fh.read(n))
    except (OSError, ValueError, struct.error) as exc:
        raise DataFormatError(
            f"cache shard {path} has no valid safetensors header ({exc}); "
            "rebuild the cache with --overwrite"
        ) from None
    return header, 8 + n


__all__ = [
    "INDEX_FILE",
    "PLAN_FILE",
    "SHARD_PREFIX",
    "digest_name",
    "feature_key",
    "read_json",
    "read_safetensors_header",
    "safetensors_bytes",
    "shard_name",
]
