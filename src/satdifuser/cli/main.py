"""Entry point of the ``satdifuser`` command.

Each subcommand lives in its own module ``satdifuser.cli.<module>`` exposing
``run(argv: list[str]) -> int``; this file only dispatches, prints errors as one line and picks
the exit code. A subcommand whose module is not built yet fails with a clear message.

Errors, for every subcommand: a :class:`~satdifuser.errors.SatdifuserError` (also one found in the
``__cause__``/``__context__`` chain of a library error, e.g. raised inside a class that jsonargparse
builds) prints ``satdifuser <cmd>: error: <Type>: <message>`` and exits 2 (or the error's
``exit_code``); any other exception prints the same line plus ``rerun with --debug for the
traceback`` and exits 1. ``--debug`` (before or after the subcommand) prints the traceback too.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from satdifuser import __version__
from satdifuser.errors import SatdifuserError, UnknownNameError

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
    "predict": ("predict", "apply a trained model to images, folders and GeoTIFF scenes", False),
    "embed": ("embed", "pooled embeddings of a dataset or images as (Geo)Parquet", False),
}

USAGE = f"""usage: satdifuser [--debug] [--version] <subcommand> [args...]

satdifuser {__version__}: frozen diffusion models as geospatial feature extractors.

subcommands:
{chr(10).join(f"  {name:<10} {helptext}" for name, (_, helptext, _) in SUBCOMMANDS.items())}

Run `satdifuser <subcommand> --help` for the options of one subcommand.
--debug shows full tracebacks instead of one-line errors."""


def _load(name: str) -> object:
    module, _, _ = SUBCOMMANDS[name]
    return importlib.import_module(f"satdifuser.cli.{module}")


def own_error(exc: BaseException) -> SatdifuserError | None:
    """The first :class:`SatdifuserError` in ``exc``'s ``__cause__``/``__context__`` chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, SatdifuserError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def one_line(text: str, limit: int | None = None) -> str:
    """``text`` with every run of whitespace (newlines included) collapsed to one space."""
    flat = " ".join(text.split())
    if limit is not None and len(flat) > limit:
        flat = flat[: limit - 3] + "..."
    return flat


def error_line(command: str, exc: BaseException) -> tuple[str, int]:
    """The one-line message for ``exc`` raised by ``command`` and the exit code to return."""
    own = own_error(exc)
    if own is not None:
        line = f"satdifuser {command}: error: {type(own).__name__}: {one_line(str(own))}"
        return line, int(getattr(own, "exit_code", 2))
    message = one_line(str(exc), limit=500) or repr(exc)
    return (
        f"satdifuser {command}: error: {type(exc).__name__}: {message}; "
        "rerun with --debug for the traceback",
        1,
    )


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
    if "--debug" in rest:  # the error line says "rerun with --debug": accept it after the name
        debug = True
        rest = [a for a in rest if a != "--debug"]
    try:
        if name not in SUBCOMMANDS:
            import difflib

            close = difflib.get_close_matches(name, list(SUBCOMMANDS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UnknownNameError(
                f"unknown subcommand {name!r}{hint}; run `satdifuser --help` for the list"
            )
        module = _load(name)
        passthrough = SUBCOMMANDS[name][2]
        return int(module.run([name, *rest] if passthrough else rest) or 0)  # type: ignore[attr-defined]
    except KeyboardInterrupt:
        print(f"satdifuser {name}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `satdifuser list | head`: the reader left; not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:
        if debug:
            traceback.print_exc()
        line, code = error_line(name, exc)
        print(line, file=sys.stderr)
        return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
