#!/usr/bin/env bash
# Probe-side recipe study (issue 14 section 2): with ONE backbone, compare how its features are
# read: noise-draw ensembles, several timesteps in one GW fusion, and tap subsets. Every variant
# is `satdifuser bench eurosat --parts satdifuser --fusions gw` (GW + pooled probe, budgets 10 and
# 200 per class, seeds 0,1,2); judge on the **val** accuracies in each results.json (the bench
# also reports test, which a choice must not look at).
# Usage (repository root): benchmarks/probe_study.sh [BACKBONE] [OUT] [THREADS]
set -euo pipefail
BACKBONE=${1:-satdifuser-eurosat-tiny}
OUT=${2:-runs/probe-study}
THREADS=${3:-2}
RESNET="up_blocks.0.resnets.1,up_blocks.1.resnets.1,up_blocks.2.resnets.1,up_blocks.3.resnets.1"
declare -A VARIANTS=(
  [base]=""
  [ens4]="--ensemble 4"
  [t10-50]="--timesteps 10,50"
  [resnet]="--taps $RESNET"
)
mkdir -p "$OUT"
for name in base ens4 t10-50 resnet; do
  if [[ ! -f "$OUT/$name/results.json" ]]; then
    # shellcheck disable=SC2086
    satdifuser bench eurosat --backbone "$BACKBONE" --parts satdifuser --fusions gw \
      --budgets 10,200 --seeds 0,1,2 --append-md none --no-progress --threads "$THREADS" \
      --cache-dir "$OUT/cache" --out "$OUT/$name" ${VARIANTS[$name]} >>"$OUT/$name.log" 2>&1
  fi
done
python - "$OUT" base ens4 t10-50 resnet <<'PY'
import json, statistics, sys
out, names = sys.argv[1], sys.argv[2:]
print("| variant | GW 10 | pooled 10 | GW 200 | pooled 200 | mean | extract s |")
print("|---|---|---|---|---|---|---|")
for name in names:
    r = json.load(open(f"{out}/{name}/results.json"))
    acc = {}
    for run in r["runs"]:
        key = ("GW" if run["method"] == "satdifuser GW" else "pooled"
               if run["method"] == "satdifuser pooled probe" else None)
        if key:
            acc.setdefault(f"{key} {run['budget']}", []).append(100 * run["val_accuracy"])
    cols = [statistics.mean(acc[k]) for k in ("GW 10", "pooled 10", "GW 200", "pooled 200")]
    ext = sum(v for k, v in r["seconds"].items() if k.startswith("extract"))
    print(f"| {name} | " + " | ".join(f"{c:.2f}" for c in cols)
          + f" | {statistics.mean(cols):.2f} | {ext:.0f} |")
PY
