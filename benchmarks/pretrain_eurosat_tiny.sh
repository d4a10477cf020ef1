#!/usr/bin/env bash
# Pre-train (or continue) satdifuser-eurosat-tiny on the unlabeled EuroSAT pool, detached, then
# export it into the package when it has finished. Re-running continues from the last checkpoint
# (exact resume), so CPU sessions add up. When the run folder is gone (a new machine), the run
# warm-starts from the committed weights (--init-from: weights, step, data order and totals carry
# on; the optimizer restarts). Usage (from the repository root):
#   [THREADS=N] benchmarks/pretrain_eurosat_tiny.sh [MINUTES]  # start/continue in the background
#   benchmarks/pretrain_eurosat_tiny.sh export           # after it stopped: write the weights
set -euo pipefail
RUN=${SATDIFUSER_PRETRAIN_RUN:-/work/runs/pretrain-eurosat-tiny}
if [[ "${1:-}" == "export" ]]; then
  exec satdifuser pretrain --export "$RUN" --to src/satdifuser/weights/satdifuser-eurosat-tiny \
    --overwrite
fi
MINUTES=${1:-110}
mkdir -p "$(dirname "$RUN")"
# --rot90: flips + quarter turns (the dihedral group), carried into the long run from the
# equal-compute study of session 5 (docs/BENCHMARKS.md 4.x; within noise, free, no "up" in
# remote sensing); a resumed run keeps the value stored in its config.
setsid nohup satdifuser pretrain --out "$RUN" --max-minutes "$MINUTES" --threads "${THREADS:-2}" \
  --init-from src/satdifuser/weights/satdifuser-eurosat-tiny --rot90 \
  --batch-size 64 --sample-every 200 --ckpt-every 50 --ckpt-minutes 5 >>"$RUN.log" 2>&1 </dev/null &
echo "started pid $! (log $RUN.log, loss $RUN/loss.csv, samples $RUN/samples/latest.png)"
