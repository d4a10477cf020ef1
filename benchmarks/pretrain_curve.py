"""Learning curve of the pre-trained backbone: validation accuracy vs images seen (issue 7).

Every point is one ``satdifuser bench eurosat`` run (GW fusion + pooled probe, shipped recipe)
on a backbone exported from a pre-training snapshot; the recipe is judged on the **val** split
only (the bench selects epochs on val and also reports test, which this script ignores).

    python benchmarks/pretrain_curve.py SNAPSHOT_OR_EXPORT [...] --out runs/curve \
        [--budgets 10,200] [--threads 1] [--append-md docs/BENCHMARKS.md]

A SNAPSHOT is a copy of a ``satdifuser pretrain --out`` run folder (config.json + checkpoint/),
exported first with ``satdifuser pretrain --export``; an EXPORT is a pipeline folder with
``training.json`` (e.g. ``src/satdifuser/weights/satdifuser-eurosat-tiny``). Finished points
are kept, so an interrupted curve resumes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

METHODS = {"satdifuser GW": "GW", "satdifuser pooled probe": "pooled"}


def export(src: Path, out: Path) -> Path:
    """Return a pipeline folder for ``src`` (exported into ``out`` when it is a run folder)."""
    if (src / "training.json").is_file():
        return src
    dest = out / "exports" / src.name
    if not (dest / "training.json").is_file():
        cmd = ["satdifuser", "pretrain", "--export", str(src), "--to", str(dest), "--overwrite"]
        subprocess.run(cmd, check=True)
    return dest


def evaluate(backbone: Path, out: Path, budgets: str, threads: int, seeds: str = "0") -> dict:
    """Run the bench once for ``backbone`` (skipped when its results exist)."""
    res = out / "results.json"
    if not res.is_file():
        cmd = ["satdifuser", "bench", "eurosat", "--backbone", str(backbone), "--parts",
               "satdifuser", "--fusions", "global_weighted", "--budgets", budgets, "--seeds",
               seeds, "--append-md", "none", "--no-progress", "--out", str(out), "--threads",
               str(threads)]  # fmt: skip
        subprocess.run(cmd, check=True)
    return json.loads(res.read_text())


def point(backbone: Path, results: dict) -> dict:
    """One row: compute spent and val accuracy per (method, budget), the mean over seeds."""
    t = json.loads((backbone / "training.json").read_text())
    row = {"steps": t["steps"], "images_seen": t["images_seen"],
           "cpu_wall_min": sum(t["wall_seconds"].values()) / 60,
           # process CPU time where the run recorded it (None: not recorded for any stretch)
           "cpu_min_measured": (t["total_cpu_seconds"] / 60
                                if t.get("total_cpu_seconds") is not None else None),
           "params": t.get("params"),
           "final_loss": t["final_loss"], "weights": results["backbone_weights"]}  # fmt: skip
    acc: dict[str, list[float]] = {}
    for r in results["runs"]:
        if r["method"] in METHODS:
            acc.setdefault(f"{METHODS[r['method']]} {r['budget']}", []).append(r["val_accuracy"])
    for key, values in acc.items():
        row[key] = 100 * sum(values) / len(values)
        row[f"{key} seeds"] = [round(100 * v, 2) for v in values]
    return row


def table(rows: list[dict], budgets: list[int]) -> str:
    cols = [f"{m} {b}" for b in budgets for m in ("GW", "pooled")]
    head = ["steps", "images seen", "wall min", "final loss", *[f"val OA {c}/class" for c in cols]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in sorted(rows, key=lambda r: r["images_seen"]):
        accs = [f"{r.get(c, float('nan')):.2f}" for c in cols]
        vals = [str(r["steps"]), f"{r['images_seen']:,}", f"{r['cpu_wall_min']:.0f}",
                f"{r['final_loss']:.4f}", *accs]  # fmt: skip
        lines.append("| " + " | ".join(vals) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sources", nargs="+", type=Path, help="snapshot run folders or exports")
    p.add_argument("--out", type=Path, default=Path("runs/curve"))
    p.add_argument("--budgets", default="10,200")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seeds", default="0", help="comma list; each value is the mean over them")
    p.add_argument("--append-md", type=Path, default=None)
    a = p.parse_args(argv)
    budgets = [int(b) for b in a.budgets.split(",")]
    rows = []
    for src in a.sources:
        bb = export(src, a.out)
        name = f"eval-{src.name}" + ("" if a.seeds == "0" else f"-s{a.seeds.replace(',', '')}")
        rows.append(point(bb, evaluate(bb, a.out / name, a.budgets, a.threads, a.seeds)))
        print(table(rows, budgets), flush=True)
    (a.out / "curve.json").write_text(json.dumps(rows, indent=1) + "\n")
    if a.append_md:
        cmd = "python benchmarks/pretrain_curve.py " + " ".join(argv)
        date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        with a.append_md.open("a") as fh:
            fh.write(f"\n### Learning curve (val split), {date}\n\n- Command: `{cmd}`\n\n"
                     f"{table(rows, budgets)}\n")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
