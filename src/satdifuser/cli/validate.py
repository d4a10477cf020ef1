"""Checks of command-line values shared by satdifuser's argparse subcommands.

:class:`OneLineArgumentParser` turns every argparse error (unknown option, bad value) into a
one-line :class:`~satdifuser.errors.ConfigError`, which ``satdifuser.cli.main`` prints without
usage text or traceback. The ``type=`` callables below reject values that argparse's plain
``int``/``float`` accept but that make no sense (``--threads -1``, ``--max-gb nan``), so a
command fails before it creates any file.
"""

from __future__ import annotations

import argparse
import math
import re
from typing import NoReturn

from satdifuser.errors import ConfigError


class OneLineArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one-line :class:`ConfigError`\\ s."""

    def error(self, message: str) -> NoReturn:
        """Raise instead of printing the usage and exiting."""
        raise ConfigError(f"{message}; run `{self.prog} --help` for the options")


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def positive_int(text: str) -> int:
    """An integer >= 1 (sizes, counts, threads)."""
    value = _int(text, "an integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be a positive integer (>= 1)")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0 (worker counts, ranks, seeds)."""
    value = _int(text, "an integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be an integer >= 0")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (size limits, durations); ``nan`` and ``inf`` are refused."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number > 0")
    return value


def int_list(text: str) -> list[int]:
    """A comma list of integers >= 0 (``21,61,161``); one ``nargs='+'`` item."""
    parts = [p for p in text.split(",") if p.strip()]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of integers (e.g. 21 61 161 or 21,61,161)"
        ) from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r} must list integers >= 0")
    return values


_DEVICE = re.compile(r"^(cpu|auto|mps|cuda)(?::(\d+))?$")


def device(text: str) -> str:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``, checked against this machine."""
    match = _DEVICE.match(text)
    if match is None or (match[2] is not None and match[1] != "cuda"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a device; use auto, cpu, cuda or cuda:N (N = GPU index)"
        )
    if match[1] == "cuda":
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise argparse.ArgumentTypeError(
                f"{text!r} asks for a GPU but torch sees none on this machine; use cpu or auto"
            )
        if match[2] is not None and int(match[2]) >= count:
            raise argparse.ArgumentTypeError(
                f"{text!r}: this machine has {count} GPU(s), cuda:0 to cuda:{count - 1}"
            )
    if match[1] == "mps":
        import torch

        if not torch.backends.mps.is_available():
            raise argparse.ArgumentTypeError("'mps' is not available on this machine; use cpu")
    return text


__all__ = [
    "OneLineArgumentParser",
    "device",
    "int_list",
    "non_negative_int",
    "positive_float",
    "positive_int",
]
