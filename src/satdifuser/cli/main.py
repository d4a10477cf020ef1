"""Entry point of the ``satdifuser`` command.

Each subcommand lives in its own module ``satdifuser.cli.<module>`` exposing
``run(argv: list[str]) -> int``; this file only dispatches, prints errors as one line and picks
the exit code. A subcommand whose module is not built yet fails with a clear message.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from collections.abc import Sequence

from satdifuser import __version__
from satdifuser.errors import NotAvailableError, SatdifuserError

# name -> (module under satdifuser.cli, one-line help, pass the subcommand name through)
SUBCOMMANDS: dict[str, tuple[str, str, bool]] = {
    "demo": ("demo", "end-to-end demo: shipped backbone + EuroSAT, extract, train, test", False),
    "extract": ("extract", "extract features of a dataset split once into an on-disk cache", False),
    "fit": ("lightning", "train fusion + head (LightningCLI YAML: --config run.yaml)", True),
    "validate": ("lightning", "evaluate a run on the validation split", True),
    "test": ("lightning", "evaluate the best checkpoint on the test split", True),
    "pretrain": ("pretrain", "pre-train a small diffusion model on unlabeled imagery", False),
    "bench": ("bench", "benchmarks: speed, eurosat, dubai", False),
    "data": ("data", "dataset tools: data inspect PATH", False),
    "list": ("listing", "list registered backbones, fusions, heads, datasets", False),
}

USAGE = f"""usage: satdifuser [--debug] [--version] <subcommand> [args...]

satdifuser {__version__}: frozen diffusion models as geospatial feature extractors.

subcommands:
{chr(10).join(f"  {name:<10} {helptext}" for name, (_, helptext, _) in SUBCOMMANDS.items())}

Run `satdifuser <subcommand> --help` for the options of one subcommand.
--debug shows full tracebacks instead of one-line errors."""


def _load(name: str) -> object:
    module, _, _ = SUBCOMMANDS[name]
    try:
        return importlib.import_module(f"satdifuser.cli.{module}")
    except ModuleNotFoundError as exc:
        if exc.name == f"satdifuser.cli.{module}":
            raise NotAvailableError(
                f"subcommand {name!r} is not available in satdifuser {__version__} yet; "
                "run `satdifuser --help` for the subcommands that are"
            ) from None
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the exit code (also used as the console-script entry point)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = False
    while args and args[0] in {"--debug", "--version", "-V", "-h", "--help"}:
        flag = args.pop(0)
        if flag == "--debug":
            debug = True
        elif flag in {"--version", "-V"}:
            print(f"satdifuser {__version__}")
            return 0
        else:
            print(USAGE)
            return 0
    if not args:
        print(USAGE)
        return 0
    name, rest = args[0], args[1:]
    try:
        if name not in SUBCOMMANDS:
            import difflib

            close = difflib.get_close_matches(name, list(SUBCOMMANDS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise NotAvailableError(
                f"unknown subcommand {name!r}{hint}; run `satdifuser --help` for the list"
            )
        module = _load(name)
        passthrough = SUBCOMMANDS[name][2]
        return int(module.run([name, *rest] if passthrough else rest) or 0)  # type: ignore[attr-defined]
    except SatdifuserError as exc:
        if debug:
            traceback.print_exc()
        print(f"satdifuser {name}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"satdifuser {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
