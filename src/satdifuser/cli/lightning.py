"""``satdifuser fit|validate|test``: LightningCLI-style training and evaluation.

Usage::

    satdifuser fit --config configs/eurosat_tiny.yaml [--trainer.max_epochs 5] [--print_config]
    satdifuser test --config runs/eurosat_tiny/config.yaml          # uses <run>/best.safetensors
    satdifuser test --ckpt_path runs/eurosat_tiny                    # config.yaml of that run
    satdifuser validate --config run.yaml --ckpt_path path/to/best.safetensors

Options follow LightningCLI: ``--config`` (repeatable, later files win), dotted overrides
(``--model.init_args.lr 0.001``), ``--print_config``, ``--seed_everything`` (default 0), plus
satdifuser's ``--cache_dir`` and ``--overwrite``. The run directory layout is described in
:mod:`satdifuser.cli.fit`.

Errors are one line on stderr (see :mod:`satdifuser.cli.fit`); Lightning's "Seed set to 0" and its
litlogger advertisement are not printed (the seed is in ``config.yaml`` and ``env.json``).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

from satdifuser.errors import ConfigError

SUBCOMMANDS = ("fit", "validate", "test")


def _ckpt_arg(args: list[str]) -> str | None:
    for i, a in enumerate(args):
        if a == "--ckpt_path" and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--ckpt_path="):
            return a.split("=", 1)[1]
    return None


def prepare_argv(argv: list[str]) -> list[str]:
    """Check the subcommand; add ``--config <run>/config.yaml`` when only a run is given.

    Raises:
        ConfigError: no or unknown subcommand, or neither ``--config`` nor a run directory.
    """
    if not argv or argv[0] not in SUBCOMMANDS:
        got = argv[0] if argv else None
        raise ConfigError(
            f"satdifuser.cli.lightning.run needs fit, validate or test first, got {got!r}"
        )
    sub, rest = argv[0], list(argv[1:])
    has_config = any(a in ("-c", "--config") or a.startswith("--config=") for a in rest)
    wants_help = any(a in ("-h", "--help") for a in rest)
    if not has_config and not wants_help:
        ckpt = _ckpt_arg(rest) if sub != "fit" else None
        if ckpt is None:
            raise ConfigError(
                f"satdifuser {sub} needs --config run.yaml (examples under configs/); "
                f"`satdifuser {sub} --help` lists every option"
            )
        p = Path(ckpt)
        config = (p if p.is_dir() else p.parent) / "config.yaml"
        if not config.is_file():
            raise ConfigError(
                f"--ckpt_path {ckpt} has no config.yaml beside it; pass --config run.yaml too"
            )
        rest = ["--config", str(config), *rest]
    return [sub, *rest]


class _DropLitLoggerTip(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in str(record.msg)


@contextlib.contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Hide Lightning's seed message and its litlogger tip while the command runs."""
    seed_log = logging.getLogger("lightning.fabric.utilities.seed")
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level, tip = seed_log.level, _DropLitLoggerTip()
    seed_log.setLevel(logging.WARNING)
    rank_zero.addFilter(tip)
    try:
        yield
    finally:
        seed_log.setLevel(level)
        rank_zero.removeFilter(tip)


def run(argv: list[str]) -> int:
    """Entry point used by ``satdifuser.cli.main`` (``argv[0]`` is the subcommand)."""
    args = prepare_argv(list(argv))
    from satdifuser.cli.fit import SatdifuserCLI

    with warnings.catch_warnings(), _quiet_lightning():
        warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")
        warnings.filterwarnings("ignore", message=".*litlogger.*")
        warnings.filterwarnings("ignore", message="LightningCLI.s args parameter.*")
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        try:
            SatdifuserCLI(args)
        except SystemExit as exc:  # --help, --print_config, parse errors (message printed)
            code = exc.code
            return code if isinstance(code, int) else (0 if code is None else 2)
    return 0


__all__ = ["prepare_argv", "run"]
