#!/usr/bin/env bash
# One backbone or two (issue 14 section 3): from ONE starting export, continue the pre-training for
# the same number of steps on three image pools, then score every export on BOTH benchmarks'
# validation data: the EuroSAT val split (GW + pooled probe at 10 and 200 per class, seeds 0,1,2,
# benchmarks/pretrain_curve.py) and the Dubai validation tile 8 (`satdifuser bench dubai
# --models satdifuser`, the bench's own recipe; tile 8 is never read by the pre-training).
#   eurosat  the EuroSAT unlabeled pool alone (the shipped line)
#   mix      EuroSAT and the Dubai training tiles 1-4, 7 (x0.25, 64/128 px crops), half each
#   aerial   the Dubai training tiles alone (the second backbone of a two-backbone answer)
# Usage (repository root; DATA defaults to ../shared/data):
#   benchmarks/pretrain_domain_study.sh train START OUT ARM [STEPS] [THREADS]   # one arm
#   benchmarks/pretrain_domain_study.sh score START OUT [THREADS] [ARMS]       # finished arms
# Arms may train in parallel (one per core); every arm runs exactly STEPS steps of batch 64 from
# START (optimizer warm-up restarted identically), so compute is equal by construction.
set -euo pipefail
MODE=$1
START=$2
OUT=$3
DATA=${DATA:-$(cd "$(dirname "$0")/../.." && pwd)/shared/data}
DUBAI="mask_folder:$DATA/dubai_aerial,scale=0.25,crops=64+128"
mkdir -p "$OUT"
if [[ "$MODE" == "train" ]]; then
  ARM=$4
  STEPS=${5:-300}
  THREADS=${6:-1}
  case "$ARM" in
    eurosat) SOURCES=(--source "eurosat:$DATA") ;;
    mix) SOURCES=(--source "eurosat:$DATA,weight=1" --source "$DUBAI,weight=1") ;;
    aerial) SOURCES=(--source "$DUBAI") ;;
    *) echo "unknown arm '$ARM': use eurosat, mix or aerial" >&2; exit 2 ;;
  esac
  if [[ ! -f "$OUT/$ARM-export/training.json" ]]; then
    satdifuser pretrain --out "$OUT/$ARM" --init-from "$START" --steps "$STEPS" --rot90 \
      --threads "$THREADS" --sample-every 0 --ckpt-every 50 --no-progress "${SOURCES[@]}" \
      >>"$OUT/$ARM.log" 2>&1
    satdifuser pretrain --export "$OUT/$ARM" --to "$OUT/$ARM-export" --overwrite >>"$OUT/$ARM.log" 2>&1
  fi
elif [[ "$MODE" == "score" ]]; then
  THREADS=${4:-1}
  ONLY=${5:-eurosat,mix,aerial}  # score only these arms (and the start), e.g. to run in parallel
  ARMS=()
  for arm in eurosat mix aerial; do
    [[ ",$ONLY," == *",$arm,"* && -f "$OUT/$arm-export/training.json" ]] && ARMS+=("$arm")
  done
  EXPORTS=()
  for arm in "${ARMS[@]}"; do EXPORTS+=("$OUT/$arm-export"); done
  python benchmarks/pretrain_curve.py "$START" "${EXPORTS[@]}" --out "$OUT/curve" \
    --seeds 0,1,2 --threads "$THREADS"
  for name in start "${ARMS[@]}"; do
    backbone="$OUT/$name-export"
    [[ "$name" == "start" ]] && backbone="$START"
    if [[ ! -f "$OUT/dubai-$name/results.json" ]]; then
      satdifuser bench dubai --data "$DATA" --backbone "$backbone" --models satdifuser \
        --threads "$THREADS" --no-progress --cache-dir "$OUT/dubai-cache" \
        --out "$OUT/dubai-$name" >>"$OUT/dubai-$name.log" 2>&1
    fi
  done
else
  echo "usage: $0 train START OUT ARM [STEPS] [THREADS] | score START OUT [THREADS] [ARMS]" >&2
  exit 2
fi
