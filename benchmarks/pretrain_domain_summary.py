"""Table + raw JSON of benchmarks/pretrain_domain_study.sh: per arm, the EuroSAT val accuracies
(mean over seeds) and the Dubai tile-8 mIoU / IoU per head seed (``dubai-ARM[-seedS]`` folders).

    python benchmarks/pretrain_domain_summary.py OUT [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics as st
import sys
from pathlib import Path

ARMS = {"start": "start (shipped step 4190)", "eurosat": "eurosat: EuroSAT only",
        "mix": "mix: EuroSAT + Dubai 1:1", "aerial": "aerial: Dubai tiles only"}  # fmt: skip
PROBES = ("GW 10", "pooled 10", "GW 200", "pooled 200")
METHODS = {"satdifuser GW": "GW", "satdifuser pooled probe": "pooled"}


def eurosat_val(out: Path, arm: str) -> dict[str, float]:
    [res] = list((out / "curve").glob(f"eval-{arm}*-s012/results.json"))
    acc: dict[str, list[float]] = {}
    for r in json.loads(res.read_text())["runs"]:
        if r["method"] in METHODS:
            key = f"{METHODS[r['method']]} {r['budget']}"
            acc.setdefault(key, []).append(100 * r["val_accuracy"])
    return {k: st.mean(acc[k]) for k in PROBES}


def dubai(out: Path, arm: str) -> dict[int, dict]:
    runs = {}
    for seed, suffix in ((0, ""), (1, "-seed1"), (2, "-seed2")):
        res = out / f"dubai-{arm}{suffix}" / "results.json"
        if res.is_file():
            m = json.loads(res.read_text())["models"]["satdifuser"]["metrics"]
            runs[seed] = {"miou": 100 * m["miou"], "oa": 100 * m["overall_accuracy"],
                          "iou": {k: 100 * v for k, v in m["iou"].items()}}  # fmt: skip
    return runs


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    rows = {a_: {"eurosat_val": eurosat_val(a.out, a_), "dubai": dubai(a.out, a_)} for a_ in ARMS}
    print("| arm | " + " | ".join(f"EuroSAT val {c}" for c in PROBES) + " | mean of 4 | Dubai mIoU "
          "seeds 0 / 1 / 2 | mean | Water IoU (mean) | Road IoU (mean) |")  # fmt: skip
    print("|---" * 10 + "|")
    for arm, r in rows.items():
        ev, dub = r["eurosat_val"], r["dubai"]
        miou = " / ".join(f"{dub[s]['miou']:.1f}" if s in dub else "-" for s in (0, 1, 2))
        m_iou = st.mean(d["miou"] for d in dub.values())
        water = st.mean(d["iou"]["Water"] for d in dub.values())
        road = st.mean(d["iou"]["Road"] for d in dub.values())
        cells = [f"{ev[c]:.2f}" for c in PROBES] + [f"{st.mean(ev.values()):.2f}", miou]
        cells += [f"{m_iou:.1f}", f"{water:.1f}", f"{road:.1f}"]
        print(f"| {ARMS[arm]} | " + " | ".join(cells) + " |")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
