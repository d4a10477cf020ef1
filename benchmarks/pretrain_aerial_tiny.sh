#!/usr/bin/env bash
# Pre-train (or continue) satdifuser-aerial-tiny on the Dubai aerial TRAINING tiles (1-4, 7; never
# the validation tile 8 that `satdifuser bench dubai` scores on) at x0.25 with 64/128 px crops,
# detached, then export it into the package when it has finished. Re-running continues exactly
# from the last checkpoint; without a run folder (a new machine) the run warm-starts from the
# committed weights. Usage (repository root; DATA defaults to ../shared/data):
#   [THREADS=N] benchmarks/pretrain_aerial_tiny.sh [MINUTES]   # start/continue in the background
#   benchmarks/pretrain_aerial_tiny.sh export                  # after it stopped: write the weights
set -euo pipefail
RUN=${SATDIFUSER_PRETRAIN_RUN:-/work/runs/pretrain-aerial-tiny}
DATA=${DATA:-$(cd "$(dirname "$0")/../.." && pwd)/shared/data}
if [[ "${1:-}" == "export" ]]; then
  exec satdifuser pretrain --export "$RUN" --to src/satdifuser/weights/satdifuser-aerial-tiny \
    --name satdifuser-aerial-tiny --overwrite
fi
MINUTES=${1:-110}
mkdir -p "$(dirname "$RUN")"
setsid nohup satdifuser pretrain --out "$RUN" --max-minutes "$MINUTES" --threads "${THREADS:-2}" \
  --init-from src/satdifuser/weights/satdifuser-aerial-tiny --rot90 \
  --source "mask_folder:$DATA/dubai_aerial,scale=0.25,crops=64+128" \
  --batch-size 64 --sample-every 200 --ckpt-every 50 --ckpt-minutes 5 >>"$RUN.log" 2>&1 </dev/null &
echo "started pid $! (log $RUN.log, loss $RUN/loss.csv, samples $RUN/samples/latest.png)"
