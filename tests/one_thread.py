"""The ``_one_thread`` autouse fixture: each test runs on one torch thread (2 threads on a busy
2-core machine: ~20x slower for tiny models), and the previous count is restored afterwards.

A folder opts in by importing it into its ``conftest.py`` (or a test module)::

    from one_thread import _one_thread  # noqa: F401 (autouse fixture)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
