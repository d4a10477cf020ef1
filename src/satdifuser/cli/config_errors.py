"""One-line messages for the errors of LightningCLI's parser and of ``Trainer(...)``.

jsonargparse reports a bad value as a nested tree (``Parser key "model": Does not validate against
any of the Union subtypes ... Errors: - Problem with given class_path ...: Parser key "lr": ...``)
and argparse prints the whole usage before it. :func:`parser_error_message` keeps what matters:
the dotted key (``model.init_args.lr``), what was wrong with it, and how to fix it.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from satdifuser.cli.main import one_line

_KEY = re.compile(r'^(?:- )?Parser key "([^"]+)":?\s*(.*)$')
_CLASS_PATH = re.compile(r"^(?:- )?Problem with given class_path '([^']+)':?\s*(.*)$")
_EXPECTED = re.compile(r"^(?:- )?Expected a (?:<class '([\w.]+)'>|(.+?))\.?(?: Got value: (.*))?$")
_NOT_ACCEPTED = re.compile(r"Option '(\w+)' is not accepted")
_SKIP = (
    "Does not validate against any of the Union subtypes",
    "Subtypes:",
    "Errors:",
    "Given value type:",
)
OPTION_ALIASES: dict[str, str] = {
    "--device": "--trainer.accelerator cpu|gpu and --trainer.devices N",
    "--devices": "--trainer.devices N",
    "--accelerator": "--trainer.accelerator cpu|gpu",
    "--gpus": "--trainer.accelerator gpu --trainer.devices N",
    "--threads": "the OMP_NUM_THREADS environment variable (fit has no --threads)",
    "--num-workers": "--data.init_args.num_workers N",
    "--num_workers": "--data.init_args.num_workers N",
    "--batch-size": "--data.init_args.batch_size N",
    "--batch_size": "--data.init_args.batch_size N",
    "--max-epochs": "--trainer.max_epochs N",
    "--max_epochs": "--trainer.max_epochs N",
    "--root": "--data.init_args.root DIR",
    "--out": "--trainer.default_root_dir DIR",
    "--output": "--trainer.default_root_dir DIR",
    "--cache-dir": "--cache_dir DIR",
    "--lr": "--model.init_args.lr X",
}
"""Options of other satdifuser commands (or common guesses) -> the LightningCLI spelling."""


def config_files(argv: Sequence[str]) -> list[str]:
    """The values of every ``-c``/``--config`` in ``argv``."""
    files = []
    for i, arg in enumerate(argv):
        if arg in ("-c", "--config") and i + 1 < len(argv):
            files.append(argv[i + 1])
        elif arg.startswith("--config="):
            files.append(arg.split("=", 1)[1])
    return files


def config_file_problem(argv: Sequence[str]) -> str | None:
    """Why the first unusable ``--config`` file cannot be used (missing, not YAML, no mapping)."""
    for name in config_files(argv):
        path = Path(name)
        if not path.is_file():
            what = "is a folder" if path.is_dir() else "does not exist"
            return f"--config {name} {what}; pass a YAML file (examples under configs/)"
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or type(exc).__name__
            return f"--config {name} is not valid YAML ({problem}{where}); fix the syntax there"
        except (OSError, UnicodeDecodeError) as exc:
            return f"--config {name} cannot be read ({exc}); pass a readable YAML file"
        if data is None:
            return (
                f"--config {name} is empty; it needs at least model: and data: "
                "(examples under configs/)"
            )
        if not isinstance(data, dict):
            return (
                f"--config {name} holds a {type(data).__name__}, not a mapping of keys "
                "(model:, data:, trainer:); start from an example under configs/"
            )
    return None


def _close_init_args(class_path: str, name: str) -> str:
    try:
        module, _, attr = class_path.rpartition(".")
        cls = getattr(importlib.import_module(module), attr)
        params = [p for p in inspect.signature(cls).parameters if p not in ("self", "args")]
    except Exception:  # suggestions are a courtesy; never fail the error message itself
        return ""
    close = difflib.get_close_matches(name, params, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unrecognized(message: str, subcommand: str, options: Iterable[str]) -> str:
    tokens = message.split(":", 1)[1].split()
    unknown = [t for t in tokens if t.startswith("-")] or [t for t in tokens if t != subcommand]
    first = unknown[0].split("=", 1)[0] if unknown else "?"
    if first in OPTION_ALIASES:
        hint = f"use {OPTION_ALIASES[first]}"
    else:
        groups = [o for o in options if not first.startswith(f"{o}.")]  # not "--trainer"
        close = difflib.get_close_matches(first, groups, n=2, cutoff=0.6)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        hint += f"`satdifuser {subcommand} --help` lists the options"
    return f"unrecognized option {first!r} for satdifuser {subcommand}; {hint}"


def parser_error_message(
    message: str, subcommand: str, argv: Sequence[str], options: Iterable[str] = ()
) -> str:
    """One line for a jsonargparse parse error: the dotted key, what is wrong, how to fix it.

    Args:
        message: ``str()`` of jsonargparse's ``ArgumentError`` (may span many lines).
        subcommand: ``fit``, ``validate`` or ``test`` (named in the hint).
        argv: The arguments parsed (to find the ``--config`` file an error is about).
        options: Option strings of the subcommand (close matches for an unknown option).
    """
    text = message.strip()
    if text.startswith("unrecognized arguments"):
        return _unrecognized(text, subcommand, options)
    if text.startswith(("Unexpected config", "Problems parsing config")):
        return config_file_problem(argv) or (
            f"a --config file is not a YAML mapping ({' '.join(text.split())[:200]}); "
            "start from an example under configs/"
        )
    key: list[str] = []
    class_path: str | None = None
    details: list[str] = []
    expected: list[str] = []
    got: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(_SKIP):
            continue
        if m := _KEY.match(line):
            if class_path is not None and key:
                key.append("init_args")
            key.append(m.group(1))
            class_path, details, expected, got = None, [], [], None
            if m.group(2):
                details.append(m.group(2))
        elif m := _CLASS_PATH.match(line):
            class_path, details, expected, got = m.group(1), [], [], None
            if m.group(2):
                details.append(m.group(2))
        elif line.startswith("Given value:"):
            got = got if got is not None else line.split(":", 1)[1].strip()
        elif m := _EXPECTED.match(line):
            kind = m.group(1) or m.group(2)
            if kind not in ("NoneType", "None"):
                expected.append(kind)
            if m.group(3) is not None:
                got = m.group(3)
        else:
            details.append(line.removeprefix("- "))
    dotted = ".".join(key) or "config"
    detail = "; ".join(details)
    if class_path is not None and (m := _NOT_ACCEPTED.search(detail)):
        name = m.group(1)
        return (
            f"{dotted}.init_args.{name}: {class_path} takes no argument {name!r}"
            f"{_close_init_args(class_path, name)}; fix or remove that key"
        )
    if expected and not detail:
        detail = f"expected {' or '.join(dict.fromkeys(expected))}"
        if got is not None:
            detail += f", got {got!r}"
    elif class_path is not None:
        return (
            f"{dotted}.class_path={class_path!r}: {detail}; use an importable class "
            "(the examples under configs/ show the class paths)"
        )
    if dotted == "config":
        return f"--config: {detail}; pass an existing YAML file (examples under configs/)"
    flag = f"--{dotted}"
    return (
        f"{dotted}: {detail or 'invalid value'}; fix it in the YAML or pass {flag} VALUE "
        f"(`satdifuser {subcommand} --help` lists the options)"
    )


def trainer_error_message(exc: BaseException, parameters: Iterable[str]) -> str:
    """One line for an error raised by ``Trainer(...)``, naming ``trainer.<argument>``.

    Lightning's messages quote the argument in backticks (```max_epochs` must be ...``,
    ```accelerator='banana'```); the first quoted name that is a ``Trainer`` argument is the key.
    """
    text = " ".join(str(exc).split()).rstrip(".") or type(exc).__name__
    params = set(parameters)
    names = [q.split("=", 1)[0].strip() for q in re.findall(r"`([^`]+)`", text)]
    key = next((n for n in names if n in params), None)
    if key is None:
        return f"trainer: {text}; check the trainer: section of the config"
    return f"trainer.{key}: {text}; fix it in the YAML or pass --trainer.{key} VALUE"


def option_strings(parser: Any, subcommand: str) -> list[str]:
    """Long options of ``subcommand``'s parser (for close-match suggestions)."""
    action = getattr(parser, "_subcommands_action", None)
    sub = getattr(action, "_name_parser_map", {}).get(subcommand, parser)
    return [o for o in getattr(sub, "_option_string_actions", {}) if o.startswith("--")]


def config_group(exc: BaseException) -> str | None:
    """``model`` or ``data``: the group whose class jsonargparse was building when ``exc`` rose."""
    for line in str(exc).splitlines():
        if line.strip().startswith("Subtypes:"):
            if "BaseTask" in line or "LightningModule" in line:
                return "model"
            if "DataModule" in line:
                return "data"
    return None


_PAIR = re.compile(r"\b(\w+)=('[^']*'|[^\s,;:()]+)|\b(\w+) '([^']*)'")


def locate_key(message: str, items: Iterable[tuple[str, Any]], group: str | None) -> str | None:
    """The one dotted config key that ``message`` quotes (``num_classes=-2``, ``backbone 'x'``).

    Returns None when no leaf of ``items`` (``Namespace.items()``, under ``group``) matches, or
    when several do (then the message alone cannot tell which one is meant).
    """
    leaves = [(k, v) for k, v in items if group is None or k.startswith(f"{group}.")]
    found: set[str] = set()
    for m in _PAIR.finditer(message):
        name = m.group(1) or m.group(3)
        text = m.group(2) if m.group(1) else m.group(4)
        text = text.strip("'")
        for key, value in leaves:
            if key.rsplit(".", 1)[-1] == name and text in (str(value), repr(value)):
                found.add(key)
    return found.pop() if len(found) == 1 else None


def instantiation_message(exc: BaseException) -> str:
    """One line for a foreign error raised while jsonargparse built the config's classes."""
    group = config_group(exc) or "config"
    root: BaseException = exc
    while root.__cause__ is not None:
        root = root.__cause__
    detail = one_line(str(root), limit=300) or "no message"
    return (
        f"{group}: building the {group} classes failed with {type(root).__name__}: {detail}; "
        f"check the {group}.init_args values (rerun with --debug for the traceback)"
    )


__all__ = [
    "OPTION_ALIASES",
    "config_file_problem",
    "config_files",
    "config_group",
    "instantiation_message",
    "locate_key",
    "option_strings",
    "parser_error_message",
    "trainer_error_message",
]
