#!/usr/bin/env bash
# The GPU check of docs/performance.md, as one short run: ingest turns/s of the default model against
# static MiniLM on the same GPU in bfloat16 (~20- and ~60-token chat turns), and query latency at 10K
# and 100K vectors. Results in benchmarks/results/gpu_*.json. About 5 minutes on one H100/H200.
#   bash benchmarks/gpu.sh                  # PYTHON=python3 when the project is installed there
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-../.venv/bin/python}
run() { "$PY" "$@" --device cuda --dtype bfloat16; }
run ingest.py --turns 2000 --repeats 3 --min-tokens 10 --max-tokens 30 --out results/gpu_ingest_20tok.json
run ingest.py --turns 2000 --repeats 3 --out results/gpu_ingest.json
run multistream.py --patterns store --streams 1 8 64 --turns-per-stream 16 --repeats 3 --out results/gpu_multistream.json
run query_latency.py --sizes 10000 100000 --out results/gpu_query_latency.json
