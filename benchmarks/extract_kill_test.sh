#!/usr/bin/env bash
# Crash-safety and 2-process check of `satdifuser extract` on real EuroSAT (issue 5):
# an uninterrupted cache, a cache whose extraction is SIGKILLed several times and rerun, and a
# 2-process (torchrun, gloo) cache must hold byte-identical files.
# Usage: benchmarks/extract_kill_test.sh [DATA_ROOT] [WORKDIR]   (defaults: ../shared/data, a temp dir)
set -uo pipefail
DATA=${1:-../shared/data}; WORK=${2:-$(mktemp -d)}
ARGS=(--backbone tiny-sd --dataset eurosat --root "$DATA" --split test --limit 2000
      --timesteps 21 61 161 --batch-size 16 --shard-size 64 --threads 1 --no-progress)
hashes() { (cd "$1" && find . -type f | sort | xargs sha256sum); }
cd "$WORK" && rm -rf ref killed ddp
echo "== uninterrupted"; satdifuser extract "${ARGS[@]}" --cache-dir ref | tail -2
for delay in 9 23 6 31; do
  satdifuser extract "${ARGS[@]}" --cache-dir killed >/dev/null 2>&1 & pid=$!
  sleep "$delay"; kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  echo "SIGKILL after ${delay}s: $(find killed -name '*.safetensors' | wc -l) shards, $(find killed -name '*.tmp*' | wc -l) temp files"
done
echo "== rerun + verify"; satdifuser extract "${ARGS[@]}" --cache-dir killed | tail -1
satdifuser extract "${ARGS[@]}" --cache-dir killed --verify | tail -1
echo "== 2 processes"; torchrun --standalone --nproc_per_node 2 -m satdifuser extract "${ARGS[@]}" --cache-dir ddp 2>&1 | grep -E "rank|complete"
hashes ref > ref.sha; hashes killed > killed.sha; hashes ddp > ddp.sha
diff -q ref.sha killed.sha && echo "killed+rerun == uninterrupted ($(wc -l < ref.sha) files)" || exit 1
diff -q ref.sha ddp.sha && echo "2-process == single-process ($(wc -l < ref.sha) files)" || exit 1
