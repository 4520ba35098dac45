#!/usr/bin/env bash
# Train (or resume training) the shipped default model on synthetic data, on CPU or GPU.
# Re-running continues the run exactly from its latest checkpoint (RUN dir, committed so that a
# later session can resume or extend it). The run's data are committed too (training_runs/data/*.gz):
# they were generated with `evoembedding synth` (seeds 1 and 999, --max-turns 24) before a fix that
# made synth independent of PYTHONHASHSEED, and resuming requires the exact same samples.
#   bash scripts/train_default.sh                 # train / resume runs/default-v3 (checkpoints stay outside git)
#   STEPS=3000 MEM_WEIGHT=0 RUN=runs/nomem ...    # the "without memory objective" ablation
# Recipe (README, "Training"): no query instruction (MiniLM has none), L_anchor weight 5.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
RUN=${RUN:-runs/default-v3}
DATA=${DATA:-runs/data}
STEPS=${STEPS:-3000}
MEM_WEIGHT=${MEM_WEIGHT:-1}
mkdir -p "$DATA"
for f in train24 heldout24; do
  [ -f "$DATA/$f.jsonl" ] || [ ! -f "training_runs/data/$f.jsonl.gz" ] || gunzip -c "training_runs/data/$f.jsonl.gz" > "$DATA/$f.jsonl"
done
[ -f "$DATA/train24.jsonl" ] || "$BIN/evoembedding" synth --out "$DATA/train24.jsonl" -n 4000 --seed 1 --max-turns 24
[ -f "$DATA/heldout24.jsonl" ] || "$BIN/evoembedding" synth --out "$DATA/heldout24.jsonl" -n 60 --seed 999 --max-turns 24
ARGS=(--data "$DATA/train24.jsonl" --eval-data "$DATA/heldout24.jsonl" --out "$RUN" --steps "$STEPS"
      --warmup 100 --lr 2e-4 --grad-accum 1 --checkpoint-every 100 --eval-every 500
      --anchor-weight 5 --mem-weight "$MEM_WEIGHT" --query-prefix "")
if [ -f "$RUN/latest.json" ]; then ARGS+=(--resume); fi
"$BIN/evoembedding" train "${ARGS[@]}"
