"""Test-wide settings: no network, no hub, headless plots, paths to shared real data."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch

# One intra-op thread: tiny tensors gain nothing from more, and the 2-core machines are shared.
torch.set_num_threads(int(os.environ.get("SATDIFUSER_TEST_THREADS", "1")))

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


class _NoNetwork(socket.socket):
    def connect(self, address):  # type: ignore[override]
        if isinstance(address, tuple) and address[0] not in {"127.0.0.1", "localhost", "::1"}:
            raise RuntimeError(f"tests must not use the network (tried {address!r})")
        return super().connect(address)


socket.socket = _NoNetwork  # type: ignore[misc]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder ``../shared/data``; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (it sits beside the project in CI)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def fs_events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, object]]:
    """Record every ``os.fsync`` (fd) and ``os.replace`` ((src, dst) paths), in order; both still
    run, so a test can check that an atomic writer fsyncs before it renames."""
    import os

    events: list[tuple[str, object]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", fd))
        real_fsync(fd)

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        events.append(("replace", (Path(src), Path(dst))))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


@pytest.fixture
def disk_full_on_rename(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every ``os.replace`` fail as on a full disk (``OSError`` 28, "No space left")."""
    import os

    def replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", replace)
