"""Error classes of satdifuser.

Every error subclasses :class:`SatdifuserError` and the matching built-in, so callers can catch
either. Messages are one line: what is wrong (naming the file, argument or key and the value
received), what was expected, and one way to fix it.
"""

from __future__ import annotations


class SatdifuserError(Exception):
    """Base class of all satdifuser errors; the CLI prints these as one line, no traceback."""


class ConfigError(SatdifuserError, ValueError):
    """A configuration value or argument is invalid."""


class UnknownNameError(SatdifuserError, ValueError):
    """A registry lookup found no entry of that name."""


class InputError(SatdifuserError, ValueError):
    """Input tensors or arrays have the wrong shape, dtype or values."""


class InputShapeError(InputError):
    """Input has a shape the model cannot take."""


class DatasetNotFoundError(SatdifuserError, FileNotFoundError):
    """A dataset root or one of its files is missing."""


class DataFormatError(SatdifuserError, ValueError):
    """A data file exists but its content is malformed, truncated or inconsistent."""


class CheckpointError(SatdifuserError, FileNotFoundError):
    """A model checkpoint is missing parts or holds unexpected keys."""


class UnsafePickleError(SatdifuserError, ValueError):
    """A pickle names a class or function outside the allow-list."""


class CacheMismatchError(SatdifuserError, ValueError):
    """A feature cache was built with another configuration than the one asked for."""


class CacheCorruptError(DataFormatError):
    """A feature-cache file is damaged (digest, header, index field or non-finite values)."""


class InsufficientDiskError(SatdifuserError, OSError):
    """The estimated output size exceeds the free disk or the given budget."""


class DependencyNotFoundError(SatdifuserError, ImportError):
    """An optional dependency is missing; the message gives the pip install line."""


class NotAvailableError(SatdifuserError, NotImplementedError):
    """A feature or subcommand is not built in this version."""


class UnsupportedArchitectureError(SatdifuserError, ValueError):
    """A model config describes an architecture satdifuser cannot run (e.g. SDXL conditioning)."""


class RunInterruptedError(SatdifuserError, RuntimeError):
    """A run was stopped by a signal before it finished; the CLI exits with ``exit_code``.

    Args:
        message: What stopped and what was kept.
        exit_code: Process exit status (``128 + signal number`` by convention: 143 for SIGTERM).
    """

    def __init__(self, message: str, exit_code: int = 143) -> None:
        super().__init__(message)
        self.exit_code = exit_code


__all__ = [
    "CacheCorruptError",
    "CacheMismatchError",
    "CheckpointError",
    "ConfigError",
    "DataFormatError",
    "DatasetNotFoundError",
    "DependencyNotFoundError",
    "InputError",
    "InputShapeError",
    "InsufficientDiskError",
    "NotAvailableError",
    "RunInterruptedError",
    "SatdifuserError",
    "UnknownNameError",
    "UnsafePickleError",
    "UnsupportedArchitectureError",
]
