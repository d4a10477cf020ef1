"""Crash-safe file writes: temporary name, fsync, rename, fsync of the folder.

A reader (or a rerun after ``kill -9``) sees either the old file or the complete new one, never
a partial file. Temporary files carry :data:`TMP_MARK` in their name so that a rerun can remove
the leftovers of a killed writer.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path

TMP_MARK = ".tmp-"
"""Infix of temporary file names (``shard-00003.safetensors.tmp-host-123``)."""


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def tmp_name(path: Path) -> Path:
    """A temporary sibling of ``path`` unique to this host and process."""
    return path.with_name(f"{path.name}{TMP_MARK}{socket.gethostname()}-{os.getpid()}")


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> str:
    """Write ``data`` to ``path`` atomically and durably.

    Args:
        path: Final file name; its folder must exist.
        data: File content.

    Returns:
        The sha256 hex digest of ``data``.
    """
    path = Path(path)
    tmp = tmp_name(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return hashlib.sha256(data).hexdigest()


def atomic_write_json(path: str | os.PathLike[str], obj: object) -> None:
    """Write ``obj`` as canonical JSON (sorted keys, 1-space indent) atomically."""
    text = json.dumps(obj, sort_keys=True, indent=1) + "\n"
    atomic_write_bytes(path, text.encode())


def remove_tmp_files(folder: Path, prefix: str = "") -> list[Path]:
    """Delete leftovers of killed writers (names holding :data:`TMP_MARK`) starting with ``prefix``.

    Returns:
        The paths removed.
    """
    removed = []
    if not folder.is_dir():
        return removed
    for p in sorted(folder.iterdir()):
        if p.name.startswith(prefix) and TMP_MARK in p.name and p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 22) -> str:
    """sha256 hex digest of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


__all__ = [
    "TMP_MARK",
    "atomic_write_bytes",
    "atomic_write_json",
    "remove_tmp_files",
    "sha256_file",
    "tmp_name",
]
