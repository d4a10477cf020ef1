"""Rows of an earlier ``satdifuser bench eurosat`` run, reused by ``--include-runs``.

A bench split over two invocations (e.g. the backbone-independent baselines while a backbone is
still pre-training, then the backbone's own parts) is only one table when both ran with the same
recipe. :func:`earlier_rows` checks that and returns the earlier run's rows of the sections that
the current invocation does not run, marked with the command that produced them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from satdifuser.errors import ConfigError, DataFormatError

PART_SECTIONS = {
    "satdifuser": "satdifuser",
    "random": "random",
    "efficientnet": "efficientnet",
    "cnn": "cnn",
    "ablations": "ablation",
}
"""``--parts`` name -> ``section`` of the rows it produces."""


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value))


def earlier_rows(
    path: str | Path, recipe: Mapping[str, Any], parts_run: Iterable[str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows of the results.json at ``path`` for the sections not in ``parts_run``.

    Args:
        path: ``results.json`` written by an earlier ``satdifuser bench eurosat``.
        recipe: This run's settings that the rows depend on (budgets, seeds, probe and CNN
            configs, pool, quick, data sizes, ...); each key present in the earlier file must
            be equal.
        parts_run: The ``--parts`` of this invocation (their sections are not taken).

    Returns:
        ``(rows, earlier)``: the rows (each with ``included_from``) and the earlier result.

    Raises:
        DataFormatError: The file is missing or not a bench results.json.
        ConfigError: A setting differs, or the earlier run holds none of the missing sections.
    """
    path = Path(path)
    try:
        earlier = json.loads(path.read_text())
        runs = earlier["runs"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataFormatError(
            f"--include-runs {path}: not a readable results.json of `satdifuser bench eurosat` "
            f"({type(exc).__name__}: {exc}); pass the results.json of an earlier run"
        ) from None
    for key, mine in recipe.items():
        if key in earlier and _plain(earlier[key]) != _plain(mine):
            raise ConfigError(
                f"--include-runs {path}: its {key} {_plain(earlier[key])!r} differs from this "
                f"run's {_plain(mine)!r}; rerun those parts with the same options"
            )
    skip = {PART_SECTIONS[p] for p in parts_run}
    rows = [
        {**r, "included_from": earlier.get("command", str(path))}
        for r in runs
        if r.get("section") not in skip
    ]
    if not rows:
        raise ConfigError(
            f"--include-runs {path}: it holds no rows outside this run's parts "
            f"({', '.join(sorted(skip))}); include a run of the other parts"
        )
    return rows, earlier


__all__ = ["PART_SECTIONS", "earlier_rows"]
