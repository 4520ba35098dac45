#!/usr/bin/env bash
# Train (or resume) the context model (the shipped default v4): the v3 default fine-tuned further on long multi-session
# histories derived from Schema-Guided Dialogue and Synthetic-Persona-Chat (../shared/corpora), with
# several questions asked at the end of each history (meta.queries). CPU, one thread.
#   bash scripts/train_context.sh                       # derive data if missing, then train / resume runs/ctx-v4
#   STEPS=800 RUN=runs/ctx-b bash scripts/train_context.sh
#   INIT=evoembedding_core/default_model RUN=runs/ctx-v5 STEPS=250 LR=1.2e-4 WARMUP=10 SEED=1 \
#     bash scripts/train_context.sh                     # continue from the shipped v4 model, new data order
# Re-running continues the run exactly from its latest checkpoint (same data, same settings).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
RUN=${RUN:-runs/ctx-v4}
DATA=${DATA:-runs/data}
CORPORA=${CORPORA:-../shared/corpora}
STEPS=${STEPS:-380}
INIT=${INIT:-runs/v3-init}  # the starting point: the v3 default model, read from git history
LR=${LR:-1.5e-4}
WARMUP=${WARMUP:-25}
SEED=${SEED:-0}
V3=79db723
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
mkdir -p "$DATA"
if [ "$INIT" = runs/v3-init ] && [ ! -f "$INIT/model.safetensors" ]; then
  mkdir -p "$INIT"
  for f in config.json model.safetensors; do git show "$V3:evoembedding_core/default_model/$f" > "$INIT/$f"; done
fi
[ -f "$DATA/ctx_train.jsonl" ] || "$BIN/python" scripts/derive_training_data.py --corpora "$CORPORA" \
  --out "$DATA/ctx_train.jsonl" --split train -n 3000 --seed 1 --max-segments 110
[ -f "$DATA/ctx_heldout.jsonl" ] || "$BIN/python" scripts/derive_training_data.py --corpora "$CORPORA" \
  --out "$DATA/ctx_heldout.jsonl" --split heldout -n 20 --seed 7 --max-segments 110
ARGS=(--data "$DATA/ctx_train.jsonl" --eval-data "$DATA/ctx_heldout.jsonl" --out "$RUN" --steps "$STEPS"
      --init "$INIT" --warmup "$WARMUP" --lr "$LR" --seed "$SEED" --grad-accum 1
      --checkpoint-every 25 --eval-every "${EVAL_EVERY:-100}" --anchor-weight 1 --mem-weight 1 --query-prefix "" --no-progress)
if [ -f "$RUN/latest.json" ]; then ARGS+=(--resume); fi
"$BIN/evoembedding" train "${ARGS[@]}"
