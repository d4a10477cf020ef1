#!/usr/bin/env bash
# About 10 minutes of bf16 pre-training on a lent GPU, continuing the committed weights
# (satdifuser-eurosat-tiny) with `--init-from`, then an export (fp16 EMA safetensors + card with
# the accumulated totals) into $OUT/satdifuser-eurosat-tiny to bring back. Check it on CPU first:
#   DEVICE=cpu MINUTES=0.3 OUT=/tmp/gpu-check benchmarks/pretrain_gpu.sh
# On the device machine (repository root, $OUT set by the tool):
#   SATDIFUSER_DATA=/path/with/eurosat_rgb_split.json benchmarks/pretrain_gpu.sh
# The data root must hold the 22,000 `unlabeled` JPEGs of the fixed split (71 MiB).
set -euo pipefail
MINUTES=${MINUTES:-10}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:?set OUT to the folder that comes back}
RUN=${RUN:-$(mktemp -d "${TMPDIR:-/tmp}/satdifuser-gpu-run.XXXXXX")}
command -v satdifuser >/dev/null || python -m pip install -q -e .
satdifuser pretrain --out "$RUN" --init-from src/satdifuser/weights/satdifuser-eurosat-tiny \
  --device "$DEVICE" --max-minutes "$MINUTES" --sample-every 0 --ckpt-minutes 2 --no-progress \
  2>&1 | tee "$OUT/pretrain.log"
satdifuser pretrain --export "$RUN" --to "$OUT/satdifuser-eurosat-tiny" --overwrite
echo "exported to $OUT/satdifuser-eurosat-tiny; copy it over src/satdifuser/weights/ if val improves"
