"""The predict tests run on one torch thread; fakes live in predict_fakes.py."""

from one_thread import _one_thread  # noqa: F401 (autouse fixture)
