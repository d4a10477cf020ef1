"""Helpers of the multi-process tests: a free local port, and a folder's files as bytes (to
compare caches written by separate processes)."""

from __future__ import annotations

import socket
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (for ``--master_port``)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def folder_bytes(folder: Path) -> dict[str, bytes]:
    """``{file name: content}`` of the files directly in ``folder``, sorted by name."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
