"""The outputs of ``satdifuser bench geobench``: runs.csv, per-task tables, IQM and its plot.

Every function reads a ``GeoBenchSweep``'s state (options, tasks, partitions, models and the
results gathered so far). ``runs.csv`` is one row per run and metric (``write_csv``, rewritten
after every run); ``finish`` writes ``tables/<task>.md``, ``aggregate.csv`` / ``aggregate.md``
(GEO-Bench's normalised IQM, ``satdifuser.tasks.aggregate``) and ``iqm.png``.
"""

from __future__ import annotations

import csv
import io
import math
import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from satdifuser.bench.geobench_runs import PRIMARY, Run

if TYPE_CHECKING:
    from satdifuser.bench.geobench_sweep import GeoBenchSweep

CONVENTION = {
    "overall_accuracy": "overall accuracy (micro), GEO-Bench's classification metric",
    "f1_micro": "micro F1 at sigmoid > 0.5, GEO-Bench's multi-label metric",
    "miou": "mIoU macro over all classes, nothing ignored (GEO-Bench's JaccardIndex)",
}
CSV_COLUMNS = ("task", "partition", "seed", "model", "metric", "value", "status")


def duration(seconds: float) -> str:
    """``42 s``, ``3.5 min`` or ``2.1 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def csv_rows(sweep: GeoBenchSweep, runs: Sequence[Run]) -> list[dict[str, Any]]:
    """One row per run and metric (primary metric first); skipped runs: one NA row."""
    out = []
    for run in runs:
        res = sweep.results.get(run.key)
        if res is None:
            continue
        base = {"task": run.task, "partition": run.partition, "seed": run.seed,
                "model": run.model.name}  # fmt: skip
        if res["status"] == "skipped":
            metric = res.get("primary_metric") or guess_primary(run.task)
            out.append({**base, "metric": metric, "value": "NA",
                        "status": f"skipped: {res['reason']}"})  # fmt: skip
            continue
        primary = res["primary_metric"]
        names = [primary, *sorted(k for k in res["metrics"] if k != primary)]
        for m in names:
            if m in res["metrics"]:
                out.append({**base, "metric": m, "value": res["metrics"][m], "status": "ok"})
    return out


def guess_primary(task: str) -> str:
    """The primary metric of a task from its GEO-Bench task type (classification if unknown)."""
    from satdifuser.data.geobench_tasks import GEOBENCH_TASKS

    info = GEOBENCH_TASKS.get(task)
    return PRIMARY.get(info.task_type if info else "classification", "overall_accuracy")


def write_csv(sweep: GeoBenchSweep, runs: Sequence[Run]) -> None:
    """(Re)write ``runs.csv`` from the results gathered so far (atomically)."""
    from satdifuser.viz import atomic_write_text

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(csv_rows(sweep, runs))
    atomic_write_text(sweep.out / "runs.csv", buf.getvalue())


def records(sweep: GeoBenchSweep, runs: Sequence[Run]) -> list[dict[str, Any]]:
    """(task, partition, model, seed, score) of the primary metric, None when skipped."""
    recs = []
    for run in runs:
        res = sweep.results.get(run.key, {})
        score = None
        if res.get("status") == "ok":
            score = res["metrics"].get(res["primary_metric"])
        recs.append({"task": run.task, "partition": run.partition, "model": run.model.name,
                     "seed": run.seed, "score": score})  # fmt: skip
    return recs


def normalizer_ranges(
    sweep: GeoBenchSweep,
) -> tuple[dict[str, tuple[float, float]], dict[str, str]]:
    """Normaliser ranges of the tasks that have one, and where each came from."""
    from satdifuser.tasks.aggregate import load_normalizer

    choice = sweep.args.normalizer
    if choice == "sweep":
        return {}, {}
    if choice != "auto":
        table = load_normalizer(choice)
        return ({t: table[t] for t in sweep.tasks if t in table},
                {t: choice for t in sweep.tasks if t in table})  # fmt: skip
    ranges, where = {}, {}
    for task, tdir in sweep.tasks.items():
        path = tdir.parent / "normalizer.json"
        if path.is_file():
            table = load_normalizer(path)
            if task in table:
                ranges[task], where[task] = table[task], str(path)
    return ranges, where


def finish(sweep: GeoBenchSweep, runs: Sequence[Run], seconds: float) -> dict[str, Any]:
    """Write the tables, ``aggregate.csv`` / ``.md`` and ``iqm.png``; the summary of the sweep."""
    from satdifuser.tasks.aggregate import aggregate
    from satdifuser.viz import atomic_write_text

    recs = records(sweep, runs)
    ranges, where = normalizer_ranges(sweep)
    agg = aggregate(recs, ranges, repeat=sweep.args.bootstrap, seed=0)
    tables = sweep.out / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    for task in sweep.tasks:
        atomic_write_text(tables / f"{task}.md", task_table(sweep, task, runs))
    buf = io.StringIO()
    fields = list(agg[0].to_dict()) if agg else ["model", "partition", "task", "iqm"]
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(r.to_dict() for r in agg)
    atomic_write_text(sweep.out / "aggregate.csv", buf.getvalue())
    atomic_write_text(sweep.out / "aggregate.md", aggregate_md(sweep, agg, where, seconds))
    plot_iqm(sweep, agg)
    n_ok = sum(1 for r in sweep.results.values() if r.get("status") == "ok")
    n_skip = sum(1 for r in sweep.results.values() if r.get("status") == "skipped")
    sweep.log(f"{n_ok} runs finished, {n_skip} skipped; wrote {sweep.out / 'runs.csv'}, "
              f"{tables}/, {sweep.out / 'aggregate.md'}, {sweep.out / 'iqm.png'}")  # fmt: skip
    return {"runs": len(runs), "ok": n_ok, "skipped": n_skip,
            "aggregate": [r.to_dict() for r in agg]}  # fmt: skip


def task_table(sweep: GeoBenchSweep, task: str, runs: Sequence[Run]) -> str:
    """``tables/<task>.md``: primary metric (%) mean ± std over seeds, model x partition."""
    import numpy as np

    mine = [r for r in runs if r.task == task]
    res = [sweep.results.get(r.key, {}) for r in mine]
    primary = next((x["primary_metric"] for x in res if x.get("primary_metric")),
                   guess_primary(task))  # fmt: skip
    sizes = {r.partition: sweep.results.get(r.key, {}).get("split_sizes") for r in mine}
    lines = [f"# {task}: {primary} (%), mean ± std over seeds (n)", "",
             f"Metric: {CONVENTION.get(primary, primary)}. Task folder: "
             f"`{sweep.tasks[task]}`. Epochs {sweep.recipe.epochs}, best validation epoch "
             "tested. NA: skipped (reason below).", "",
             "| model | " + " | ".join(sweep.partitions) + " |",
             "|---|" + "---:|" * len(sweep.partitions)]  # fmt: skip
    notes: dict[str, str] = {}
    for spec in sweep.models:
        cells = []
        for part in sweep.partitions:
            vals, skipped = [], None
            for r in mine:
                if r.model.name != spec.name or r.partition != part:
                    continue
                x = sweep.results.get(r.key)
                if x and x.get("status") == "ok" and primary in x["metrics"]:
                    vals.append(100 * x["metrics"][primary])
                elif x and x.get("status") == "skipped":
                    skipped = x["reason"]
            if vals:
                sd = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
                cells.append(f"{np.mean(vals):.2f} ± {sd:.2f} ({len(vals)})")
            else:
                cells.append("NA")
                if skipped:
                    notes[part] = skipped
        lines.append(f"| {spec.name} | " + " | ".join(cells) + " |")
    lines.append("")
    for part in sweep.partitions:
        s = sizes.get(part)
        if s:
            lines.append(f"- {part}: train {s.get('train')}, val {s.get('val')}, "
                         f"test {s.get('test')} samples")  # fmt: skip
    for part, why in notes.items():
        lines.append(f"- {part}: NA, {why}")
    return "\n".join(lines) + "\n"


def aggregate_md(
    sweep: GeoBenchSweep, agg: Sequence[Any], where: dict[str, str], seconds: float
) -> str:
    """``aggregate.md``: the command, then per partition a table of normalised IQM with 95 % CI
    (one row per model, one column per task and the IQM over tasks), then the normaliser ranges."""
    from satdifuser.tasks.aggregate import AGGREGATED

    def cell(r: Any) -> str:
        if r is None or math.isnan(r.iqm):
            return "NA"
        return f"{r.iqm:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]"

    cmd = "satdifuser bench geobench " + shlex.join(sweep.argv)
    lines = ["# GEO-Bench sweep: normalised IQM with bootstrap 95 % CI", "",
             f"Command: `{cmd}`  ", f"Wall time of this invocation: {duration(seconds)}.", "",
             "Per task: IQM over seeds of the normalised primary metric, CI from a "
             f"bootstrap over seeds ({sweep.args.bootstrap} resamples, seed 0). Aggregated: "
             "IQM of every (task, seed) normalised score, CI from a bootstrap stratified by "
             "task (GEO-Bench's `plot_tools.py`).", ""]  # fmt: skip
    for part in sweep.partitions:
        rows = [r for r in agg if r.partition == part]
        if not rows:
            continue
        tasks = [t for t in sweep.tasks if any(r.task == t for r in rows)]
        lines += [f"## {part}", "", "| model | " + " | ".join([*tasks, "**IQM (all tasks)**"])
                  + " |", "|---|" + "---:|" * (len(tasks) + 1)]  # fmt: skip
        for spec in sweep.models:
            by = {r.task: r for r in rows if r.model == spec.name}
            if not by:
                continue
            lines.append(
                f"| {spec.name} | "
                + " | ".join([cell(by.get(t)) for t in tasks] + [f"**{cell(by.get(AGGREGATED))}**"])
                + " |"
            )
        lines.append("")
    lines += ["## Normalisation", ""]
    seen = {}
    for r in agg:
        if r.task != AGGREGATED and r.task not in seen:
            seen[r.task] = r
    for task, r in seen.items():
        src = where.get(task, "the sweep's min and max over all runs of the task")
        flat = "" if r.norm_max > r.norm_min else "; zero width: no normalised score (NA)"
        lines.append(f"- {task} ({guess_primary(task)}): [{r.norm_min:.4f}, "
                     f"{r.norm_max:.4f}] from {src}{flat}")  # fmt: skip
    return "\n".join(lines) + "\n"


def plot_iqm(sweep: GeoBenchSweep, agg: Sequence[Any]) -> None:
    """``iqm.png``: the IQM over tasks with its 95 % CI, per model across partitions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from satdifuser.tasks.aggregate import AGGREGATED
    from satdifuser.viz.atomic import save_figure

    rows = [r for r in agg if r.task == AGGREGATED]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.4 * len(sweep.partitions) + 2.5), 3.6))
    n = max(1, len(sweep.models))
    for j, spec in enumerate(sweep.models):
        xs, ys, lo, hi = [], [], [], []
        for i, part in enumerate(sweep.partitions):
            r = next((x for x in rows if x.model == spec.name and x.partition == part), None)
            if r is None or math.isnan(r.iqm):
                continue
            xs.append(i + (j - (n - 1) / 2) * 0.12)
            ys.append(r.iqm)
            lo.append(r.iqm - r.ci_low if not math.isnan(r.ci_low) else 0.0)
            hi.append(r.ci_high - r.iqm if not math.isnan(r.ci_high) else 0.0)
        ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=spec.name,
                    linestyle="-" if len(xs) > 1 else "none")  # fmt: skip
    ax.set_xticks(range(len(sweep.partitions)), sweep.partitions)
    ax.set_xlim(-0.5, len(sweep.partitions) - 0.5)
    ax.set_ylabel("normalised IQM (95 % CI)")
    scored = {r.task for r in agg if r.task != AGGREGATED and not math.isnan(r.iqm)}
    ax.set_title(f"GEO-Bench normalised IQM ({len(scored)} of {len(sweep.tasks)} tasks "
                 "scored)", fontsize=10)  # fmt: skip
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    save_figure(fig, sweep.out / "iqm.png")
    plt.close(fig)


__all__ = ["CONVENTION", "CSV_COLUMNS", "aggregate_md", "csv_rows", "duration", "finish",
           "guess_primary", "normalizer_ranges", "plot_iqm", "records", "task_table",
           "write_csv"]  # fmt: skip
