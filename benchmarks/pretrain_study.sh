#!/usr/bin/env bash
# Equal-compute recipe study (issue 14 section 2): from ONE starting export, continue the
# pre-training with each recipe variant for the same number of steps (same images seen, same
# per-step cost), export each, and score all on the EuroSAT val split (GW + pooled probe, seeds
# 0,1,2) with benchmarks/pretrain_curve.py. A short continuation is a proxy for a long run.
# Usage (repository root): benchmarks/pretrain_study.sh START_EXPORT OUT [STEPS] [THREADS]
set -euo pipefail
START=$1
OUT=$2
STEPS=${3:-150}
THREADS=${4:-1}
mkdir -p "$OUT"
declare -A VARIANTS=(
  [base]=""
  [rot90]="--rot90"
  [minsnr5]="--loss-weighting min_snr --min-snr-gamma 5"
  [tpow2]="--timestep-power 2"
)
for name in base rot90 minsnr5 tpow2; do
  if [[ ! -f "$OUT/$name-export/training.json" ]]; then
    # shellcheck disable=SC2086
    satdifuser pretrain --out "$OUT/$name" --init-from "$START" --steps "$STEPS" \
      --threads "$THREADS" --sample-every 0 --ckpt-every 50 --no-progress ${VARIANTS[$name]} \
      >>"$OUT/$name.log" 2>&1
    satdifuser pretrain --export "$OUT/$name" --to "$OUT/$name-export" --overwrite >>"$OUT/$name.log" 2>&1
  fi
done
python benchmarks/pretrain_curve.py "$START" "$OUT"/base-export "$OUT"/rot90-export \
  "$OUT"/minsnr5-export "$OUT"/tpow2-export --out "$OUT/curve" --seeds 0,1,2 --threads "$THREADS"
