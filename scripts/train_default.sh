#!/usr/bin/env bash
# Train (or resume training) the shipped default model on synthetic data, on CPU or GPU.
# Re-running continues the run exactly from its latest checkpoint (RUN dir); the data are
# regenerated deterministically from their seeds, so a resumed run sees the same samples.
#   RUN=runs/default-v2 bash scripts/train_default.sh          # train / resume
#   STEPS=300 ...                                               # total optimizer steps of the run
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
RUN=${RUN:-runs/default-v2}
DATA=${DATA:-runs/data}
STEPS=${STEPS:-300}
mkdir -p "$DATA"
[ -f "$DATA/train24.jsonl" ] || "$BIN/evoembedding" synth --out "$DATA/train24.jsonl" -n 4000 --seed 1 --max-turns 24
[ -f "$DATA/heldout24.jsonl" ] || "$BIN/evoembedding" synth --out "$DATA/heldout24.jsonl" -n 60 --seed 999 --max-turns 24
ARGS=(--data "$DATA/train24.jsonl" --eval-data "$DATA/heldout24.jsonl" --out "$RUN" --steps "$STEPS"
      --warmup 15 --lr 3e-4 --grad-accum 1 --checkpoint-every 10 --eval-every 50)
if [ -f "$RUN/latest.json" ]; then ARGS+=(--resume); fi
"$BIN/evoembedding" train "${ARGS[@]}"
