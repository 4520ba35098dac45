"""What a bigger memory or LoRA rank costs at inference: ingest and query time per architecture, one run.

For each architecture (K latents per segment, L slots, C = K x L latents in memory; LoRA rank r)
the same chat turns are read in order through one ``EvoStream`` (``--call-size`` turns per call)
and ``--queries`` questions are encoded over the final memory and over an empty one; static MiniLM
encodes the same turns for scale. The architectures and the static model alternate ``--repeats``
times so all see the same machine load; the table reports medians. Timings do not depend on the
trained weights (the same positions and matrices), so each architecture is built from the shipped
model's config with its K / L / r changed and fresh adapters; LoRA is merged into the backbone
weights at inference, so the rank changes nothing here (only training time).

    .venv/bin/python benchmarks/memory_size.py --threads 1          # K 2 / 4 / 8, C 16 - 128, r 4 / 8 / 16

Prints a table and writes ``benchmarks/results/memory_size.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics

import torch
from common import chat_turns, parse_args, print_table, timed, write_results

from evoembedding_core import EvoEmbeddingConfig, EvoEmbeddingModel
from evoembedding_core.static import StaticEmbedder

ARCHITECTURES = {  # name: (K, L, r); the screening runs of the model card, plus C 128
    "K4 L8 r8 (C32, shipped)": (4, 8, 8),
    "K2 L16 (C32)": (2, 16, 8),
    "K8 L4 (C32)": (8, 4, 8),
    "K4 L4 (C16)": (4, 4, 8),
    "K4 L16 (C64)": (4, 16, 8),
    "K4 L32 (C128)": (4, 32, 8),
    "r4 (C32)": (4, 8, 4),
    "r16 (C32)": (4, 8, 16),
}
QUESTIONS = ["What did she say about the trip last week?", "When is the dentist appointment?"]


def build(
    shipped: EvoEmbeddingConfig, k: int, slots: int, rank: int, device: str, dtype: torch.dtype
) -> EvoEmbeddingModel:
    config = dataclasses.replace(shipped, num_queries=k, memory_slots=slots, lora_r=rank)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return EvoEmbeddingModel(config, device=device, dtype=dtype).eval()


def ingest(model: EvoEmbeddingModel, turns: list[str], call_size: int):
    stream = model.stream()
    for i in range(0, len(turns), call_size):
        stream.add(turns[i : i + call_size])
    return stream


def query_ms(stream, queries: list[str], memory: bool) -> float:
    seconds = []
    for q in queries:
        s, _ = timed(stream.encode_query, q, memory=memory)
        seconds.append(s)
    return 1000 * statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=400)
    parser.add_argument("--call-size", type=int, default=100, help="turns per EvoStream.add call")
    parser.add_argument("--repeats", type=int, default=3, help="alternating timed passes of every system")
    parser.add_argument("--queries", type=int, default=20, help="query encodings timed per pass and mode")
    args = parse_args(parser)

    shipped = EvoEmbeddingModel.default(device="cpu").config
    models = {
        name: build(shipped, k, slots, r, args.device, args.torch_dtype)
        for name, (k, slots, r) in ARCHITECTURES.items()
    }
    static = StaticEmbedder(device=args.device, dtype=args.torch_dtype)
    turns = chat_turns(args.turns, static.tokenizer, seed=args.seed)
    queries = [QUESTIONS[i % len(QUESTIONS)] for i in range(args.queries)]
    static.encode(turns[:32])  # warm-up
    for model in models.values():
        ingest(model, turns[:32], args.call_size)

    times: dict[str, dict[str, list[float]]] = {name: {"ingest": [], "q_mem": [], "q_empty": []} for name in models}
    static_times = []
    with torch.no_grad():
        for _ in range(args.repeats):
            seconds, _ = timed(static.encode, turns)
            static_times.append(seconds)
            for name, model in models.items():
                seconds, stream = timed(ingest, model, turns, args.call_size)
                times[name]["ingest"].append(seconds)
                times[name]["q_mem"].append(query_ms(stream, queries, memory=True))
                times[name]["q_empty"].append(query_ms(stream, queries, memory=False))

    static_s = statistics.median(static_times)
    rows, result = [["static MiniLM", "-", len(turns) / static_s, 1.0, "-", "-"]], {}
    for name, t in times.items():
        k, slots, r = ARCHITECTURES[name]
        ingest_s = statistics.median(t["ingest"])
        q_mem, q_empty = statistics.median(t["q_mem"]), statistics.median(t["q_empty"])
        rows.append([name, k * slots, len(turns) / ingest_s, ingest_s / static_s, q_mem, q_empty])
        result[name] = {
            "K": k,
            "L": slots,
            "C": k * slots,
            "lora_r": r,
            "ingest_seconds": [round(s, 3) for s in t["ingest"]],
            "turns_per_s": round(len(turns) / ingest_s, 1),
            "cost_vs_static": round(ingest_s / static_s, 3),
            "query_ms_over_memory": round(q_mem, 2),
            "query_ms_empty_memory": round(q_empty, 2),
        }
    print_table(
        ["architecture", "C", "ingest turns/s", "ingest vs static", "query ms (memory)", "query ms (empty)"], rows
    )
    write_results(
        "memory_size",
        {
            "args": vars(args) | {"out": str(args.out)},
            "static": {"seconds": [round(s, 3) for s in static_times], "turns_per_s": round(len(turns) / static_s, 1)},
            "architectures": result,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
