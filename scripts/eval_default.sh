#!/usr/bin/env bash
# Reproduce the README's evaluation of the default model: REALTALK and the LongMemEval sample
# (../shared/data), our model (dense, on dated turns, and fused with BM25 as EvoStore(hybrid=True)
# does) and its zero-memory ablation, the "without memory objective" ablation when ABLATION names
# its model, and the static baselines (alone and fused the same way). Two lanes, one process per
# core, each benchmark in shards; then `evoembedding eval --merge` writes one table per benchmark
# (results.md, results.json, PNG plots) to OUT.
#   bash scripts/eval_default.sh                                   # the shipped default model
#   ABLATION=runs/nomem/model bash scripts/eval_default.sh          # + the --mem-weight 0 ablation
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
MODEL=${MODEL:-default}
ABLATION=${ABLATION:-}
OUT=${OUT:-docs/eval}
WORK=${WORK:-runs/eval-shards}
export OMP_NUM_THREADS=1
mkdir -p "$WORK"
ev() { "$BIN/evoembedding" eval --quiet --no-plots "$@"; }
OURS=evo,evo-query-no-memory,evo-query-no-memory-dated,evo-zero-memory,evo-query-no-memory+bm25,evo-query-no-memory-dated+bm25-dated,evo-zero-memory+bm25
STATIC=minilm,minilm-dated,bm25,bm25-dated,minilm+bm25,minilm-dated+bm25-dated
ABLATED=evo,evo-query-no-memory,evo-query-no-memory+bm25

lane() {  # lane K of 2: REALTALK shard K of every system, then half of the LongMemEval runs
  local k=$1
  ev --data realtalk --shard "$k/2" --model "$MODEL" --systems "$OURS" --out "$WORK/rt-evo-$k"
  ev --data realtalk --shard "$k/2" --systems "$STATIC" --out "$WORK/rt-static-$k"
  if [ -n "$ABLATION" ]; then
    ev --data realtalk --shard "$k/2" --model "$ABLATION" --systems "$ABLATED" --label evo-no-mem-objective \
       --out "$WORK/rt-ablation-$k"
  fi
  if [ "$k" = 1 ]; then
    ev --data longmemeval --model "$MODEL" --systems "$OURS" --out "$WORK/lme-evo"
  else
    ev --data longmemeval --systems "$STATIC" --out "$WORK/lme-static"
    if [ -n "$ABLATION" ]; then
      ev --data longmemeval --model "$ABLATION" --systems "$ABLATED" --label evo-no-mem-objective --out "$WORK/lme-ablation"
    fi
  fi
}

lane 1 > "$WORK/lane1.log" 2>&1 &
lane 2 > "$WORK/lane2.log" 2>&1 || { wait; echo "lane 2 failed: see $WORK/lane2.log" >&2; exit 1; }
wait $! || { echo "lane 1 failed: see $WORK/lane1.log" >&2; exit 1; }
RT=("$WORK"/rt-evo-1 "$WORK"/rt-evo-2 "$WORK"/rt-static-1 "$WORK"/rt-static-2)
LME=("$WORK"/lme-evo "$WORK"/lme-static)
if [ -n "$ABLATION" ]; then RT+=("$WORK"/rt-ablation-1 "$WORK"/rt-ablation-2); LME+=("$WORK"/lme-ablation); fi
"$BIN/evoembedding" eval --merge "${RT[@]}" --out "$OUT/realtalk"
"$BIN/evoembedding" eval --merge "${LME[@]}" --out "$OUT/longmemeval"
