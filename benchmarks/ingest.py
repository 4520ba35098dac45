"""Ingest throughput: the default EvoEmbedding model vs static MiniLM mean pooling, same turns, one run.

Both encode the same chat turns (10-120 tokens, from the seeded synthetic generator): EvoEmbedding
reads them in order through one ``EvoStream`` (``--call-size`` turns per ``add`` call), the static
baseline (``StaticEmbedder``, batches of 64 sorted by length) encodes each turn on its own. The two
alternate ``--repeats`` times after a short warm-up, so both see the same machine load; the ratio
uses the median times.

    .venv/bin/python benchmarks/ingest.py                 # 2,000 turns
    .venv/bin/python benchmarks/ingest.py --turns 1000 --profile
    .venv/bin/python benchmarks/ingest.py --turns 300 --min-tokens 10 --max-tokens 30   # ~20-token turns

Prints a table and writes ``benchmarks/results/ingest.json`` (``--profile``: also the top operators
of one EvoEmbedding pass by self CPU time, from ``torch.profiler``).
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch
from common import MAX_TOKENS, MIN_TOKENS, chat_turns, parse_args, print_table, profile_top_ops, timed, write_results

from evoembedding_core import EvoEmbeddingModel
from evoembedding_core.model import DEFAULT_MODEL_DIR, WEIGHTS_NAME
from evoembedding_core.static import StaticEmbedder

TARGET_RATIO = 2.0


def evo_ingest(model: EvoEmbeddingModel, turns: list[str], call_size: int) -> np.ndarray:
    stream = model.stream()
    return np.concatenate([stream.add(turns[i : i + call_size]) for i in range(0, len(turns), call_size)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--call-size", type=int, default=100, help="turns per EvoStream.add call")
    parser.add_argument("--repeats", type=int, default=1, help="alternating timed passes of each system")
    parser.add_argument("--profile", action="store_true", help="also profile one EvoEmbedding pass")
    parser.add_argument("--min-tokens", type=int, default=MIN_TOKENS, help="shortest turn (backbone tokens)")
    parser.add_argument("--max-tokens", type=int, default=MAX_TOKENS, help="longest turn (backbone tokens)")
    args = parse_args(parser)

    model = EvoEmbeddingModel.default(device=args.device, dtype=args.torch_dtype)
    static = StaticEmbedder(device=args.device, dtype=args.torch_dtype)
    turns = chat_turns(
        args.turns, model.tokenizer, seed=args.seed, min_tokens=args.min_tokens, max_tokens=args.max_tokens
    )
    tokens = [len(t) for t in model.tokenize(turns)]

    evo_ingest(model, turns[:32], args.call_size)  # warm-up: allocator, thread pool, lazy inits
    static.encode(turns[:32])
    evo_times, static_times = [], []
    for _ in range(args.repeats):
        seconds, static_vectors = timed(static.encode, turns)
        static_times.append(seconds)
        seconds, evo_vectors = timed(evo_ingest, model, turns, args.call_size)
        evo_times.append(seconds)
    evo_s, static_s = statistics.median(evo_times), statistics.median(static_times)
    ratio = evo_s / static_s
    first_cos = float(evo_vectors[0] @ static_vectors[0])  # empty memory: an untrained model equals static

    rows = [
        ["static MiniLM (mean pooling)", len(turns), static_s, len(turns) / static_s, 1.0],
        ["EvoEmbedding default (stream)", len(turns), evo_s, len(turns) / evo_s, ratio],
    ]
    print_table(["system", "turns", "seconds", "segments/s", "cost vs static"], rows)
    print(
        f"turn tokens: mean {np.mean(tokens):.1f}, min {min(tokens)}, max {max(tokens)}; "
        f"evo cost {ratio:.2f}x static (target <= {TARGET_RATIO}x: {'met' if ratio <= TARGET_RATIO else 'NOT met'})"
    )
    result = {
        "args": vars(args) | {"out": str(args.out)},
        "turn_tokens": {"mean": round(float(np.mean(tokens)), 1), "min": min(tokens), "max": max(tokens)},
        "static": {"seconds": [round(s, 3) for s in static_times], "segments_per_s": round(len(turns) / static_s, 1)},
        "evo": {
            "seconds": [round(s, 3) for s in evo_times],
            "segments_per_s": round(len(turns) / evo_s, 1),
            "default_model_shipped": (DEFAULT_MODEL_DIR / WEIGHTS_NAME).is_file(),
        },
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "target_met": ratio <= TARGET_RATIO,
        "first_turn_cosine_evo_vs_static": round(first_cos, 6),
    }
    if args.profile:
        result["profile_top_ops"] = profile_top_ops(evo_ingest, model, turns, args.call_size)
    write_results("ingest", result, args.out)


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
