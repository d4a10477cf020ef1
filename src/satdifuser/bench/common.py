"""Shared pieces of the benchmarks' orchestration: timers and the machine description."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from satdifuser._system import cpu_model


@dataclass
class Timer:
    """Wall-clock and process CPU seconds per named part (``with timer("extract"): ...``).

    CPU seconds (all threads of this process) do not grow when other jobs share the machine, so
    they show the cost of a part even when wall-clock times are inflated by contention.
    """

    seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    on_done: Callable[[str, float, float], None] | None = None

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            self.seconds[name] = self.seconds.get(name, 0.0) + dt
            self.cpu_seconds[name] = self.cpu_seconds.get(name, 0.0) + dc
            if self.on_done is not None:
                self.on_done(name, dt, dc)


def cpu_description() -> dict[str, Any]:
    """CPU model, logical cores and torch threads of this machine (for result files)."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


__all__ = ["Timer", "cpu_description"]
