"""Engine before/after, one run, same turns: what each inference optimisation buys.

Three EvoEmbedding passes over the same chat turns (one stream, ``--call-size`` turns per call),
plus static MiniLM for scale, alternating so all see the same machine load:

* ``current``: the engine as shipped (merged LoRA weights, rows batched by length);
* ``unmerged LoRA``: the same with the adapters run by peft (base matmul + two thin LoRA matmuls);
* ``before``: unmerged LoRA and one represent batch per chunk, in chunk order (the engine before
  the optimisations, re-created here from the model's public ``evolve``/``represent``).

All three give the same vectors (checked, max abs difference printed).

    .venv/bin/python benchmarks/engine_ablation.py --turns 200

Prints a table and writes ``benchmarks/results/engine_ablation.json``.
"""

from __future__ import annotations

import argparse
from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np
import torch
from common import chat_turns, parse_args, print_table, timed, write_results

from evoembedding_core import EvoEmbeddingModel
from evoembedding_core.recurrence import plan_chunks
from evoembedding_core.static import StaticEmbedder


@contextmanager
def unmerged(model: EvoEmbeddingModel):
    """Run adapters through peft's LoRA layers (no merged weights)."""
    model._merged_weights = lambda name: None
    try:
        yield
    finally:
        del model._merged_weights


def current(model: EvoEmbeddingModel, turns: list[str], call_size: int) -> np.ndarray:
    stream = model.stream()
    return np.concatenate([stream.add(turns[i : i + call_size]) for i in range(0, len(turns), call_size)])


def per_chunk(model: EvoEmbeddingModel, turns: list[str], call_size: int) -> np.ndarray:
    """The recurrence with one evolve and one represent batch per chunk (the earlier engine)."""
    cfg, out = model.config, []
    memory = chunk_memory = model.empty_memory()
    count = tokens = 0
    for start in range(0, len(turns), call_size):
        segments = model.tokenize(turns[start : start + call_size])
        state = SimpleNamespace(chunk_segments=count, chunk_tokens=tokens)
        for a, b, opens in plan_chunks(state, [len(s) for s in segments], cfg.chunk_segments, cfg.chunk_tokens):
            chunk = segments[a:b]
            if opens:
                chunk_memory, count, tokens = memory, 0, 0
            with torch.inference_mode():
                latents = model.evolve([chunk_memory] * len(chunk), chunk)
                queue = torch.cat([memory, latents.flatten(0, 1)])
                k, before = cfg.num_queries, memory.shape[0]
                memories = [queue[max(0, e - cfg.capacity) : e] for e in range(before, before + k * len(chunk), k)]
                out.append(model.represent(memories, chunk).numpy())
            memory = queue[-cfg.capacity :]
            count, tokens = count + len(chunk), tokens + sum(map(len, chunk))
    return np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--call-size", type=int, default=100)
    args = parse_args(parser)

    model = EvoEmbeddingModel.default(device="cpu")
    static = StaticEmbedder(device="cpu")
    turns = chat_turns(args.turns, model.tokenizer, seed=args.seed)
    current(model, turns[:16], args.call_size)  # warm-up (also builds the merged weights)

    def unmerged_current(*a):
        with unmerged(model):
            return current(*a)

    def before(*a):
        with unmerged(model):
            return per_chunk(*a)

    runs = {}
    runs["static MiniLM"] = timed(static.encode, turns)
    runs["before (unmerged, per-chunk)"] = timed(before, model, turns, args.call_size)
    runs["unmerged LoRA, length batches"] = timed(unmerged_current, model, turns, args.call_size)
    runs["current"] = timed(current, model, turns, args.call_size)
    reference = runs["current"][1]
    static_s = runs["static MiniLM"][0]
    rows, results = [], []
    for name, (seconds, vectors) in runs.items():
        diff = None if name.startswith("static") else float(np.abs(vectors - reference).max())
        rows.append([name, seconds, len(turns) / seconds, seconds / static_s, "" if diff is None else f"{diff:.1e}"])
        results.append(
            {
                "system": name,
                "seconds": round(seconds, 3),
                "segments_per_s": round(len(turns) / seconds, 2),
                "cost_vs_static": round(seconds / static_s, 3),
                "max_abs_diff_vs_current": diff,
            }
        )
    print_table(["system", "seconds", "segments/s", "cost vs static", "max |diff|"], rows)
    speedup = runs["before (unmerged, per-chunk)"][0] / runs["current"][0]
    print(f"current engine is {speedup:.2f}x faster than before on the same turns")
    write_results(
        "engine_ablation",
        {"args": vars(args) | {"out": str(args.out)}, "runs": results, "speedup_vs_before": round(speedup, 3)},
        args.out,
    )


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
