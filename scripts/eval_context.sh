#!/usr/bin/env bash
# Reduced dev evaluation of one model on REALTALK and the LongMemEval sample (../shared/data):
# the method as specified (evo: question over the final memory), questions over an empty memory
# (evo-query-no-memory), the zero-memory ablation (evo-zero-memory), and the recommended setting
# fused with BM25 (evo-query-no-memory+bm25, EvoStore(query_memory=False, hybrid=True)) with its
# zero-memory ablation (evo-zero-memory+bm25). Two lanes (one process per core), each REALTALK
# chat its own shard (a result lands per chat, so a partial run can be scored on the chats done),
# then one table per benchmark (results.md, results.json) in OUT.
#   MODEL=runs/ctx-v4/model OUT=runs/eval-ctx bash scripts/eval_context.sh
#   MODEL=default OUT=runs/eval-default bash scripts/eval_context.sh     # the shipped model, same systems
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
MODEL=${MODEL:-runs/ctx-v4/model}
OUT=${OUT:-runs/eval-ctx}
WORK=${WORK:-$OUT/shards}
SYSTEMS=${SYSTEMS:-evo,evo-query-no-memory,evo-zero-memory,evo-query-no-memory+bm25,evo-zero-memory+bm25}
CHATS=10  # REALTALK conversations
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$WORK"
ev() { "$BIN/evoembedding" eval --quiet --no-plots --model "$MODEL" --systems "$SYSTEMS" "$@"; }
lane() {  # lane 1: the LongMemEval sample, then the odd REALTALK chats; lane 2: the even ones
  local k=$1
  if [ "$k" = 1 ]; then [ -f "$WORK/lme/results.json" ] || ev --data longmemeval --out "$WORK/lme"; fi
  for ((c = k; c <= CHATS; c += 2)); do
    [ -f "$WORK/rt-$c/results.json" ] || ev --data realtalk --shard "$c/$CHATS" --out "$WORK/rt-$c"
  done
}
lane 1 > "$WORK/lane1.log" 2>&1 &
lane 2 > "$WORK/lane2.log" 2>&1 || { wait; echo "lane 2 failed: see $WORK/lane2.log" >&2; exit 1; }
wait $! || { echo "lane 1 failed: see $WORK/lane1.log" >&2; exit 1; }
"$BIN/evoembedding" eval --merge "$WORK"/rt-* --out "$OUT/realtalk" --no-plots
"$BIN/evoembedding" eval --merge "$WORK"/lme --out "$OUT/longmemeval" --no-plots
cat "$OUT/realtalk/results.md" "$OUT/longmemeval/results.md"
