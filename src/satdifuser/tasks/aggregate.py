"""GEO-Bench's aggregation of a sweep: normalised scores, IQM and bootstrap confidence intervals.

Follows ``ServiceNow/geo-bench:geobench/plot_tools.py`` (``shared/docs/geobench.md`` §10):

1. **Normalise** each task's score with a ``[min, max]`` range:
   ``(score - min) / (max - min)``. The ranges come from the benchmark's ``normalizer.json``
   (GEO-Bench's baseline ranges) or, for tasks it does not list, from the sweep itself: min and
   max over every score of that task (all models, partitions and seeds), as GEO-Bench's
   ``make_normalizer`` builds them. A range of zero width cannot normalise: the scores become
   NaN and drop out of the IQM (the tables say so).
2. **IQM**: the interquartile mean, ``scipy.stats.trim_mean(scores, 0.25)``: sort, cut
   ``int(0.25 n)`` scores at each end, average the rest. Per task it runs over the seeds; the
   aggregate pools every (task, seed) score of a model and partition.
3. **Bootstrap**: per task, resample the seeds with replacement; for the aggregate, a
   stratified bootstrap that resamples the seeds within each task, then pools. The 95 %
   interval is the 2.5th and 97.5th percentile of the bootstrap IQMs. The generator is seeded,
   so the intervals are reproducible.

Pure numpy, no Lightning: ``satdifuser bench geobench`` and notebooks call it on plain records.

.. versionadded:: 0.3
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from satdifuser.errors import DataFormatError

AGGREGATED = "aggregated"
"""The task name of the pooled (all tasks) rows."""


def trim_mean(values: Sequence[float] | np.ndarray, proportiontocut: float = 0.25) -> float:
    """Mean after cutting ``int(proportiontocut * n)`` values at each end (scipy's rule).

    NaN values are dropped first; NaN when nothing is left.
    """
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    x = x[~np.isnan(x)]
    if x.size == 0:
        return math.nan
    k = int(proportiontocut * x.size)
    return float(x[k : x.size - k].mean())


def iqm(values: Sequence[float] | np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50 % (``trim_mean(values, 0.25)``)."""
    return trim_mean(values, 0.25)


def normalise(score: float, lo: float, hi: float) -> float:
    """``(score - lo) / (hi - lo)``; NaN when the range has no width or the score is NaN."""
    if not hi > lo or score is None or math.isnan(score):
        return math.nan
    return (float(score) - lo) / (hi - lo)


def bootstrap_iqm(scores: Sequence[float], repeat: int, rng: np.random.Generator) -> np.ndarray:
    """IQMs of ``repeat`` resamples (with replacement, same size) of ``scores`` (seeds)."""
    x = np.asarray(scores, dtype=np.float64)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return np.full(repeat, np.nan)
    idx = rng.integers(0, x.size, size=(repeat, x.size))
    return np.array([iqm(x[row]) for row in idx])


def stratified_bootstrap_iqm(
    groups: Sequence[Sequence[float]], repeat: int, rng: np.random.Generator
) -> np.ndarray:
    """IQMs of ``repeat`` pooled resamples, each group (a task's seeds) resampled on its own."""
    arrays = [np.asarray(g, dtype=np.float64) for g in groups]
    arrays = [a[~np.isnan(a)] for a in arrays]
    arrays = [a for a in arrays if a.size]
    if not arrays:
        return np.full(repeat, np.nan)
    out = np.empty(repeat)
    for r in range(repeat):
        out[r] = iqm(np.concatenate([a[rng.integers(0, a.size, size=a.size)] for a in arrays]))
    return out


def confidence_interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap ``samples`` (NaN, NaN when there are none)."""
    s = np.asarray(samples, dtype=np.float64)
    s = s[~np.isnan(s)]
    if s.size == 0:
        return math.nan, math.nan
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(s, [tail, 100.0 - tail])
    return float(lo), float(hi)


def load_normalizer(path: str | Path) -> dict[str, tuple[float, float]]:
    """GEO-Bench's ``normalizer.json`` (``{"m-eurosat": [min, max], ...}``) as a dict.

    Raises:
        DataFormatError: the file is not such a JSON object.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text())
        return {str(k): (float(v[0]), float(v[1])) for k, v in data.items()}
    except (OSError, ValueError, TypeError, IndexError, AttributeError, KeyError) as exc:
        raise DataFormatError(
            f"{p}: expected a JSON object {{task: [min, max]}} as GEO-Bench's normalizer.json "
            f"({exc})"
        ) from exc


def sweep_ranges(records: Iterable[Mapping[str, Any]]) -> dict[str, tuple[float, float]]:
    """Per task, ``(min, max)`` over every finite ``score`` of the records (GEO-Bench's
    ``make_normalizer``: all models, partitions and seeds of the task)."""
    out: dict[str, tuple[float, float]] = {}
    for r in records:
        s = r.get("score")
        if s is None or math.isnan(float(s)):
            continue
        lo, hi = out.get(r["task"], (math.inf, -math.inf))
        out[r["task"]] = (min(lo, float(s)), max(hi, float(s)))
    return out


@dataclass(frozen=True)
class IQMRow:
    """One row of the aggregate: a model, a partition and a task (or ``aggregated``)."""

    model: str
    partition: str
    task: str
    n: int
    iqm: float
    ci_low: float
    ci_high: float
    mean_score: float
    norm_min: float
    norm_max: float
    norm_source: str

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (CSV / JSON)."""
        return dict(self.__dict__)


def aggregate(
    records: Iterable[Mapping[str, Any]],
    ranges: Mapping[str, tuple[float, float]] | None = None,
    *,
    repeat: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> list[IQMRow]:
    """Normalised per-task IQMs and the stratified aggregate, with bootstrap intervals.

    Args:
        records: Dicts with ``task``, ``partition``, ``model``, ``seed`` and ``score`` (the
            task's primary metric; None or NaN for a skipped run, which is left out).
        ranges: ``task -> (min, max)`` (e.g. :func:`load_normalizer`); tasks missing from it
            use :func:`sweep_ranges` of the records.
        repeat: Bootstrap resamples.
        seed: Seed of the bootstrap generator (same seed, same intervals).
        level: Confidence level of the intervals.

    Returns:
        Per (model, partition): one row per task (IQM over seeds) and one ``aggregated`` row
        (IQM of the pooled task x seed scores), ordered by model, partition, task.
    """
    recs = [dict(r) for r in records]
    sweep = sweep_ranges(recs)
    given = dict(ranges or {})
    rng = np.random.default_rng(seed)
    groups: dict[tuple[str, str], dict[str, list[float]]] = {}
    raw: dict[tuple[str, str, str], list[float]] = {}
    for r in recs:
        s = r.get("score")
        if s is None or math.isnan(float(s)):
            continue
        task = r["task"]
        lo, hi = given.get(task, sweep.get(task, (math.nan, math.nan)))
        key = (str(r["model"]), str(r["partition"]))
        groups.setdefault(key, {}).setdefault(task, []).append(normalise(float(s), lo, hi))
        raw.setdefault((*key, task), []).append(float(s))
    rows: list[IQMRow] = []
    for (model, part) in sorted(groups):
        per_task = groups[(model, part)]
        for task in sorted(per_task):
            lo, hi = given.get(task, sweep[task])
            src = "normalizer.json" if task in given else "sweep min-max"
            scores = per_task[task]
            ci = confidence_interval(bootstrap_iqm(scores, repeat, rng), level)
            rows.append(IQMRow(model, part, task, int(np.sum(~np.isnan(scores))), iqm(scores),
                               *ci, float(np.mean(raw[(model, part, task)])), lo, hi,
                               src))  # fmt: skip
        pooled = [v for t in sorted(per_task) for v in per_task[t]]
        ci = confidence_interval(
            stratified_bootstrap_iqm([per_task[t] for t in sorted(per_task)], repeat, rng), level
        )
        rows.append(IQMRow(model, part, AGGREGATED, int(np.sum(~np.isnan(pooled))), iqm(pooled),
                           *ci, math.nan, math.nan, math.nan, "-"))  # fmt: skip
    return rows


__all__ = [
    "AGGREGATED",
    "IQMRow",
    "aggregate",
    "bootstrap_iqm",
    "confidence_interval",
    "iqm",
    "load_normalizer",
    "normalise",
    "stratified_bootstrap_iqm",
    "sweep_ranges",
    "trim_mean",
]
