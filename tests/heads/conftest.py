"""Run these tiny-model tests on one thread (2 threads on a busy 2-core machine: ~20x slower)."""

from one_thread import _one_thread  # noqa: F401 (autouse fixture)
