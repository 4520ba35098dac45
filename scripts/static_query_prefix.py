"""What an instruction prefix on the queries does to static MiniLM (why the default model has none).

Runs the harness's static MiniLM baseline twice on the same candidates: with the plain question
and with ``INSTRUCTION_QUERY_PREFIX + question``, and prints R@k / NDCG@10 of each.

    .venv/bin/python scripts/static_query_prefix.py longmemeval          # pooled 2,176-turn haystack
    .venv/bin/python scripts/static_query_prefix.py realtalk --limit 3   # first 3 chats
"""

from __future__ import annotations

import argparse

import torch

from evoembedding_core.config import INSTRUCTION_QUERY_PREFIX
from evoembedding_core.eval import evaluate, load_benchmark
from evoembedding_core.eval.baselines import DenseBaseline
from evoembedding_core.static import StaticEmbedder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="realtalk, longmemeval or a benchmark path (as for evoembedding eval)")
    parser.add_argument("--limit", type=int, default=None, help="first N conversations (LongMemEval: questions)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    name, conversations = load_benchmark(args.data, args.limit)
    embedder = StaticEmbedder()
    systems = [
        DenseBaseline(embedder, name="plain question"),
        DenseBaseline(embedder, query_prefix=INSTRUCTION_QUERY_PREFIX, name="instruction + question"),
    ]
    result = evaluate(conversations, systems, benchmark=name, progress=False)
    print(f"{name}: {result['questions']} questions, static MiniLM")
    for system, metrics in result["systems"].items():
        overall = {k: v for k, v in metrics["overall"].items() if k != "n"}
        print(f"  {system:24s}", "  ".join(f"{k} {v:.1f}" for k, v in overall.items()))


if __name__ == "__main__":
    main()
