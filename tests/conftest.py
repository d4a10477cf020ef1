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
