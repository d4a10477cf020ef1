"""Aggregating benchmark runs (mean and std over seeds) and writing them as markdown."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Any

METRICS = ("overall_accuracy", "f1_macro")
"""Metrics aggregated over seeds (stored in [0, 1], shown in percent)."""


def aggregate(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and (sample) std over seeds of every (section, method, budget) group.

    Each row needs ``section``, ``method``, ``budget``, ``seed`` and the :data:`METRICS`; groups
    keep first-seen order. A single seed has std 0.
    """
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["section"], r["method"], int(r["budget"])), []).append(r)
    out = []
    for (section, method, budget), members in groups.items():
        entry: dict[str, Any] = {
            "section": section,
            "method": method,
            "budget": budget,
            "seeds": [m["seed"] for m in members],
            "seconds": sum(float(m.get("seconds", 0.0)) for m in members),
        }
        for name in METRICS:
            vals = [float(m[name]) for m in members]
            entry[f"{name}_mean"] = statistics.fmean(vals)
            entry[f"{name}_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        out.append(entry)
    return out


def fmt(mean: float, std: float) -> str:
    """``87.35 ± 0.42`` (percent)."""
    return f"{100 * mean:.2f} ± {100 * std:.2f}"


def results_table(agg: Sequence[dict[str, Any]], section: str, budgets: Sequence[int]) -> str:
    """Markdown table of one section: a row per method, OA and macro F1 per budget."""
    methods = list(dict.fromkeys(a["method"] for a in agg if a["section"] == section))
    if not methods:
        return ""
    cells = {(a["method"], a["budget"]): a for a in agg if a["section"] == section}
    head = " | ".join(f"OA {b}/class | F1 {b}/class" for b in budgets)
    lines = [f"| method | {head} |", "|---|" + "---|---|" * len(budgets)]
    for m in methods:
        row = []
        for b in budgets:
            a = cells.get((m, b))
            if a is None:
                row += ["", ""]
            else:
                row += [
                    fmt(a["overall_accuracy_mean"], a["overall_accuracy_std"]),
                    fmt(a["f1_macro_mean"], a["f1_macro_std"]),
                ]
        lines.append(f"| {m} | {' | '.join(row)} |")
    return "\n".join(lines) + "\n"


def timings_table(seconds: dict[str, float], cpu: dict[str, float] | None = None) -> str:
    """Markdown table of wall-clock (and process CPU) seconds per part, and the total."""
    cpu = cpu or {}
    lines = ["| part | wall clock | CPU time (all threads) |", "|---|---|---|"]
    for name, s in seconds.items():
        c = cpu.get(name)
        shown = f"{c / 60:.1f} min" if c is not None else "-"
        lines.append(f"| {name} | {s / 60:.1f} min ({s:.0f} s) | {shown} |")
    return "\n".join(lines) + "\n"


def lookup(agg: Sequence[dict[str, Any]], method: str, budget: int) -> dict[str, Any] | None:
    """The aggregated entry of ``method`` at ``budget`` (any section), or None."""
    for a in agg:
        if a["method"] == method and a["budget"] == budget:
            return a
    return None


def goals_table(
    agg: Sequence[dict[str, Any]],
    budgets: Sequence[int],
    ours: Sequence[str],
    probe: str,
    random_of: dict[str, str],
    margin: float = 0.15,
) -> str:
    """Markdown table comparing our methods with the goals, per budget (test OA means).

    Goals: ``ours >= probe`` and ``ours >= random + margin`` (the same fusion on random weights).
    """
    lines = [
        "| budget | method | OA | goal 1: >= EfficientNet-Lite0 probe | "
        f"goal 2: >= random weights + {100 * margin:.0f} points |",
        "|---|---|---|---|---|",
    ]
    for b in budgets:
        p = lookup(agg, probe, b)
        for m in ours:
            a = lookup(agg, m, b)
            if a is None:
                continue
            oa = a["overall_accuracy_mean"]
            g1 = "n/a"
            if p is not None:
                d = oa - p["overall_accuracy_mean"]
                ref = 100 * p["overall_accuracy_mean"]
                g1 = f"{'met' if d >= 0 else 'NOT met'} ({100 * d:+.2f} vs {ref:.2f})"
            g2 = "n/a"
            r = lookup(agg, random_of.get(m, ""), b)
            if r is not None:
                d = oa - r["overall_accuracy_mean"]
                ref = 100 * r["overall_accuracy_mean"]
                g2 = f"{'met' if d >= margin else 'NOT met'} ({100 * d:+.2f} vs {ref:.2f})"
            lines.append(f"| {b} | {m} | {100 * oa:.2f} | {g1} | {g2} |")
    return "\n".join(lines) + "\n"


__all__ = ["METRICS", "aggregate", "fmt", "goals_table", "lookup", "results_table", "timings_table"]
