"""Task tests run single-threaded (the machine is shared)."""

from one_thread import _one_thread  # noqa: F401 (autouse fixture)
