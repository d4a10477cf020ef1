"""Ways to damage a feature cache on disk, for the integrity tests."""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np

from satdifuser.features import cache_shard


def shard_header(path: Path) -> tuple[dict, int]:
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), 8 + n


def rewrite_shard(path: Path, edit: Callable[[bytearray, dict, int], None]) -> None:
    """Edit a shard in place (same size), then forget this process's checks (a new ``fit``)."""
    header, offset = shard_header(path)
    data = bytearray(path.read_bytes())
    edit(data, header, offset)
    path.write_bytes(bytes(data))
    cache_shard.forget_checked()


def nan_fill(data: bytearray, header: dict, offset: int) -> None:
    begin, end = header["f000"]["data_offsets"]
    data[offset + begin : offset + end] = np.full((end - begin) // 2, np.nan, np.float16).tobytes()


def flip_low_bit(data: bytearray, header: dict, offset: int) -> None:
    begin = offset + header["f000"]["data_offsets"][0]
    before = np.frombuffer(bytes(data[begin : begin + 2]), np.float16)[0]
    data[begin] ^= 0x01  # lowest mantissa bit of the first value: still finite, barely changed
    after = np.frombuffer(bytes(data[begin : begin + 2]), np.float16)[0]
    assert np.isfinite(after) and after != before and abs(float(after - before)) < 1e-2


def record_digest(folder: Path, k: int) -> None:
    """Make index.json and the sidecar agree with the shard's current bytes."""
    shard = folder / f"shard-{k:05d}.safetensors"
    sha = hashlib.sha256(shard.read_bytes()).hexdigest()
    index = json.loads((folder / "index.json").read_text())
    index["shards"][k]["sha256"] = sha
    (folder / "index.json").write_text(json.dumps(index))
    (folder / f"shard-{k:05d}.sha256").write_text(f"{sha} {shard.stat().st_size}\n")


def replace_same_length(old: bytes, new: bytes) -> Callable[[bytearray, dict, int], None]:
    def edit(data: bytearray, header: dict, offset: int) -> None:
        at = data.index(old, 8, offset)
        data[at : at + len(old)] = new

    return edit
