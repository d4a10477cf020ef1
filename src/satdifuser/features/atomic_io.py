"""Crash-safe file writes: temporary name, fsync, rename, fsync of the folder.

A reader (or a rerun after ``kill -9``) sees either the old file or the complete new one, never
a partial file. Temporary files carry :data:`TMP_MARK` in their name so that a rerun can remove
the leftovers of a killed writer. :func:`check_writable_folder` refuses an unusable output folder
before a long job starts, so that its results are never lost at the first write.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path

from satdifuser.errors import ConfigError

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


def check_writable_folder(
    path: Path, key: str, fix: str | None = None, *, create: bool = False
) -> None:
    """Raise :class:`ConfigError` unless ``path`` is, or can be created as, a writable folder.

    Args:
        path: The folder the command will write into (it may not exist yet).
        key: The config key or option that chose ``path`` (named in the message).
        fix: What to do when the folder is read-only (default: choose another ``key``).
        create: Also create ``path`` (with its parents) once the checks pass.

    Raises:
        ConfigError: ``path`` or one of its parents is a file or a broken symbolic link, the
            deepest existing folder is not writable, or (``create``) making the folder failed.
    """
    path = Path(path)
    existing = path
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():
            raise ConfigError(
                f"{key}={str(path)!r}: {existing} is a broken symbolic link; "
                f"remove it or choose another {key}"
            )
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(
            f"{key}={str(path)!r}: {existing} is a file, not a folder; choose a folder path "
            f"for {key}"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{key}={str(path)!r}: folder {existing} is not writable (read-only or owned by "
            f"another user); {fix or f'choose a writable {key} or fix its permissions'}"
        )
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a full disk, a race with another writer
            raise ConfigError(
                f"{key}={str(path)!r}: cannot create the folder ({exc.strerror}); "
                f"choose a writable {key}"
            ) from None


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
    "check_writable_folder",
    "remove_tmp_files",
    "sha256_file",
    "tmp_name",
]
