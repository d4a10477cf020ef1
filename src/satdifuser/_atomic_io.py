"""Crash-safe file writes: temporary name in the same folder, fsync, rename, fsync of the folder.

The one implementation of satdifuser's atomic writes (re-exported by
:mod:`satdifuser.features.atomic_io` and :mod:`satdifuser.viz.atomic`). A reader, or a rerun
after ``kill -9``, sees either the old file or the complete new one, never a partial file; a
raised error removes the temporary file. Temporary files carry :data:`TMP_MARK` in their name
(``index.json.tmp-host-123-9f3a``) so that a rerun can remove the leftovers of a killed writer
(:func:`remove_tmp_files`).

A library that must write to a path itself (matplotlib ``savefig``, PIL ``save``, pyarrow's
``ParquetWriter``, safetensors ``save_file``) writes to the temporary path that
:func:`atomic_path` (a ``with`` block) or :class:`PendingFile` (a writer that lives across calls)
hands out; the same fsync, rename and cleanup follow.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from satdifuser._typing import PathLike

TMP_MARK = ".tmp-"
"""Infix of temporary file names (``shard-00003.safetensors.tmp-host-123-9f3a``)."""


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
    """The temporary-name stem of ``path`` for this host and process (a sibling of ``path``)."""
    path = Path(path)
    return path.with_name(f"{path.name}{TMP_MARK}{socket.gethostname()}-{os.getpid()}")


def _open_tmp(path: Path) -> tuple[int, Path]:
    """Create a new, unique temporary sibling of ``path`` (permissions as ``open`` gives)."""
    stem = tmp_name(path)
    while True:
        tmp = stem.with_name(f"{stem.name}-{secrets.token_hex(4)}")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and durably (parent folders are created).

    Args:
        path: Final file name.
        data: File content.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


class PendingFile:
    """A new, unique temporary sibling of ``target`` that a library writes by path.

    :meth:`commit` fsyncs it and renames it to ``target`` (and fsyncs the folder); :meth:`abort`
    removes it, leaving ``target`` as it was. The temporary file exists (empty) from the start,
    which reserves its name; parent folders of ``target`` are created.

    Args:
        target: Final file name.
    """

    def __init__(self, target: PathLike) -> None:
        self.target = Path(target)
        self.target.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = _open_tmp(self.target)
        os.close(fd)

    def commit(self) -> Path:
        """Rename the written temporary file to ``target`` (removed on error); return ``target``."""
        try:
            with open(self.tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(self.tmp, self.target)
        except BaseException:
            self.abort()
            raise
        _fsync_dir(self.target.parent)
        return self.target

    def abort(self) -> None:
        """Remove the temporary file (``target`` is left untouched)."""
        self.tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(target: PathLike) -> Iterator[Path]:
    """Yield a temporary path to write ``target`` through; renamed into place when the block ends.

    Example::

        with atomic_path(out) as tmp:
            fig.savefig(tmp, format="png")  # name the format: tmp has no .png suffix

    Leaving the block by an exception removes the temporary file and keeps the old ``target``.
    """
    pending = PendingFile(target)
    try:
        yield pending.tmp
    except BaseException:
        pending.abort()
        raise
    pending.commit()


def atomic_write_text(path: PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(
    path: PathLike, obj: Any, *, sort_keys: bool = False, indent: int = 2
) -> Path:
    """Write ``obj`` as JSON atomically; non-finite floats become ``null`` (valid JSON).

    Args:
        path: Final file name.
        obj: JSON-serialisable object.
        sort_keys: Sort the keys (canonical files such as a feature cache's ``index.json``).
        indent: Indentation of the nested levels.
    """
    text = json.dumps(_finite(obj), indent=indent, sort_keys=sort_keys)
    return atomic_write_text(path, text + "\n")


def remove_tmp_files(folder: Path, prefix: str = "") -> list[Path]:
    """Delete leftovers of killed writers (names holding :data:`TMP_MARK`) starting with ``prefix``.

    Returns:
        The paths removed.
    """
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for p in sorted(folder.iterdir()):
        if p.name.startswith(prefix) and TMP_MARK in p.name and p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if obj == obj and abs(obj) != float("inf") else None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


__all__ = [
    "TMP_MARK",
    "PendingFile",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "remove_tmp_files",
    "tmp_name",
]
