"""Output-folder checks and file digests for the feature cache, plus its crash-safe writes.

The atomic writes (temporary name, fsync, rename, fsync of the folder; :data:`TMP_MARK` in the
temporary names) are :mod:`satdifuser._atomic_io`'s, re-exported here. :func:`check_writable_folder`
refuses an unusable output folder before a long job starts, so that its results are never lost at
the first write.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from satdifuser._atomic_io import (
    TMP_MARK,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    remove_tmp_files,
    tmp_name,
)
from satdifuser.errors import ConfigError


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
    "atomic_write_text",
    "check_writable_folder",
    "remove_tmp_files",
    "sha256_file",
    "tmp_name",
]
