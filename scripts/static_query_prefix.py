"""What an instruction prefix on the queries does to static MiniLM (why the default model has none).

Ranks every turn of each conversation for every question with static MiniLM mean pooling, once with
the plain question and once with ``INSTRUCTION_QUERY_PREFIX + question``, and prints R@k / NDCG@10.

    .venv/bin/python scripts/static_query_prefix.py longmemeval          # pooled 2,176-turn haystack
    .venv/bin/python scripts/static_query_prefix.py realtalk --limit 3   # first 3 chats
"""

from __future__ import annotations

import argparse

import torch

from evoembedding_core.config import INSTRUCTION_QUERY_PREFIX
from evoembedding_core.eval import load_benchmark
from evoembedding_core.eval.metrics import mean_percent, question_metrics, ranking
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
    rows = {"plain question": [], "instruction + question": []}
    for conversation in conversations:
        turns = embedder.encode([s.text for s in conversation.candidates])
        index = {s.turn_id: i for i, s in enumerate(conversation.candidates)}
        questions = [q.text for q in conversation.questions]
        for key, texts in zip(rows, (questions, [INSTRUCTION_QUERY_PREFIX + q for q in questions])):
            for question, scores in zip(conversation.questions, embedder.encode(texts) @ turns.T):
                ranks = ranking(scores)
                rows[key].append(question_metrics([int(ranks[index[e]]) for e in question.evidence]))
    print(f"{name}: {len(rows['plain question'])} questions, static MiniLM")
    for key, metrics in rows.items():
        print(f"  {key:24s}", "  ".join(f"{k} {v:.1f}" for k, v in mean_percent(metrics).items()))


if __name__ == "__main__":
    main()
