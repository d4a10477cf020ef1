#!/usr/bin/env bash
# Equal-compute recipe study from scratch (issue 14 section 2: epsilon vs v prediction, width,
# depth). Every variant trains a NEW backbone on the EuroSAT unlabeled pool for the same wall
# minutes on the same number of threads (equal compute: a wider or deeper net takes fewer steps),
# seed 0, --rot90, then its EMA weights are exported and scored on the EuroSAT val split (GW +
# pooled probe at 10 and 200 per class, seeds 0,1,2) by benchmarks/pretrain_curve.py. Short runs
# from scratch are a proxy for long ones: they rank how fast each recipe learns early on.
#   base     the shipped recipe: 32,64,128,192 channels, 1 layer per block, epsilon, linear betas
#   vpred    --prediction-type v_prediction
#   wide     --channels 32,96,160,256 (12.2M params, 24.4 MB fp16: the 25 MB limit)
#   deep     --layers-per-block 2 (10.2M params)
#   cosine   --beta-schedule cosine
# Usage (repository root):
#   benchmarks/pretrain_scratch_study.sh train OUT VARIANT [MINUTES] [THREADS]
#   benchmarks/pretrain_scratch_study.sh score OUT [THREADS] [VARIANTS]   # comma list
set -euo pipefail
MODE=$1
OUT=$2
declare -A FLAGS=(
  [base]=""
  [vpred]="--prediction-type v_prediction"
  [wide]="--channels 32,96,160,256"
  [deep]="--layers-per-block 2"
  [cosine]="--beta-schedule cosine"
)
mkdir -p "$OUT"
if [[ "$MODE" == "train" ]]; then
  NAME=$3
  MINUTES=${4:-24}
  THREADS=${5:-1}
  [[ -v "FLAGS[$NAME]" ]] || { echo "unknown variant '$NAME': use ${!FLAGS[*]}" >&2; exit 2; }
  if [[ ! -f "$OUT/$NAME-export/training.json" ]]; then
    # shellcheck disable=SC2086
    satdifuser pretrain --out "$OUT/$NAME" --max-minutes "$MINUTES" --threads "$THREADS" \
      --seed 0 --rot90 --sample-every 0 --ckpt-every 100 --no-progress ${FLAGS[$NAME]} \
      >>"$OUT/$NAME.log" 2>&1
    satdifuser pretrain --export "$OUT/$NAME" --to "$OUT/$NAME-export" --name "study-$NAME" \
      --overwrite >>"$OUT/$NAME.log" 2>&1
  fi
elif [[ "$MODE" == "score" ]]; then
  THREADS=${3:-1}
  ONLY=${4:-base,vpred,wide,deep,cosine}
  EXPORTS=()
  for name in ${ONLY//,/ }; do
    [[ -f "$OUT/$name-export/training.json" ]] && EXPORTS+=("$OUT/$name-export")
  done
  python benchmarks/pretrain_curve.py "${EXPORTS[@]}" --out "$OUT/curve" --seeds 0,1,2 \
    --threads "$THREADS"
else
  echo "usage: $0 train OUT VARIANT [MINUTES] [THREADS] | score OUT [THREADS] [VARIANTS]" >&2
  exit 2
fi
