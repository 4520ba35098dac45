#!/usr/bin/env bash
# Screening ablations of the default model's K (latents per segment), C (memory capacity, = L x K)
# and LoRA rank: short runs of the default recipe (scripts/train_default.sh) changing one factor at a
# time, two runs at a time (one per core), then each run's held-out R@1 (log.jsonl, eval at the last
# step) and the LongMemEval sample (first LIMIT questions, evo-query-no-memory) side by side.
#   bash scripts/ablate_default.sh                       # STEPS=500 LIMIT=30 OUT=runs/ablate
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
STEPS=${STEPS:-500}
LIMIT=${LIMIT:-30}
OUT=${OUT:-runs/ablate}
DATA=${DATA:-runs/data}
export OMP_NUM_THREADS=1
# name K L r   (C = L x K; the default is K 4, L 8 -> C 32, r 8)
CONFIGS="base 4 8 8
K2 2 16 8
K8 8 4 8
C16 4 4 8
C64 4 16 8
r4 4 8 4
r16 4 8 16"
mkdir -p "$OUT"
for f in train24 heldout24; do  # the default run's data (see scripts/train_default.sh)
  [ -f "$DATA/$f.jsonl" ] || { mkdir -p "$DATA"; gunzip -c "training_runs/data/$f.jsonl.gz" > "$DATA/$f.jsonl"; }
done
train() {  # name K L r
  local run="$OUT/$1"
  local args=(--data "$DATA/train24.jsonl" --eval-data "$DATA/heldout24.jsonl" --out "$run" --steps "$STEPS"
              --warmup 100 --lr 2e-4 --grad-accum 1 --checkpoint-every 100 --eval-every "$STEPS"
              --anchor-weight 5 --mem-weight 1 --query-prefix "" --num-queries "$2" --memory-slots "$3" --lora-r "$4"
              --no-progress)
  [ -f "$run/latest.json" ] && args+=(--resume)
  [ -f "$run/model/config.json" ] || "$BIN/evoembedding" train "${args[@]}" > "$run.log" 2>&1
  "$BIN/evoembedding" eval --data longmemeval --limit "$LIMIT" --model "$run/model" --systems evo-query-no-memory \
    --label "$1" --out "$OUT/eval-$1" --quiet --no-plots > "$run-eval.log" 2>&1
}
export -f train
export BIN STEPS LIMIT OUT DATA
echo "$CONFIGS" | xargs -P 2 -L 1 bash -c 'train "$@"' _
"$BIN/python" - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
print("| run | K | C | r | held-out R@1 | held-out mean rank | LME R@10 | LME NDCG@10 |")
print("|---|---|---|---|---|---|---|---|")
for run in sorted(p for p in out.iterdir() if (p / "log.jsonl").is_file()):
    cfg = json.loads((run / "model" / "config.json").read_text())
    last = [r for r in map(json.loads, (run / "log.jsonl").read_text().splitlines()) if "eval_r_at_1" in r][-1]
    (row,) = json.loads((out / f"eval-{run.name}" / "results.json").read_text())["systems"].values()
    print(f"| {run.name} | {cfg['num_queries']} | {cfg['num_queries'] * cfg['memory_slots']} | {cfg['lora_r']} "
          f"| {100 * last['eval_r_at_1']:.1f} | {last['eval_mean_rank']:.2f} | {row['overall']['R@10']:.1f} "
          f"| {row['overall']['NDCG@10']:.1f} |")
PY
