"""Streaming cost: time to append ONE turn to a stream already holding N turns, vs rebuilding.

EvoEmbedding's stream state is bounded (at most C memory latents plus counters), so an append
should cost the same at any N. The baseline is the reference code's behaviour: every call re-reads
the whole history from scratch (a fresh stream over all N+1 turns, keeping the last vector), O(N)
per call and O(N^2) over a conversation.

How the N-turn streams are built: ``--real-turns`` real turns are read (enough to fill the memory
queue), then the saved state's length counter is set to N through the public
``state_dict``/``load_state_dict`` (the state holds nothing else that could grow with N). The
rebuild baseline is timed at ``--rebuild-sizes`` for real and extrapolated linearly (labelled).
Sizes are interleaved round-robin so every size sees the same machine load.

    .venv/bin/python benchmarks/streaming.py
    .venv/bin/python benchmarks/streaming.py --sizes 100 1000 10000 --repeats 30 --rebuild-sizes 100 300

Prints a table and writes ``benchmarks/results/streaming.json``.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch
from common import chat_turns, parse_args, percentile, print_table, timed, write_results

from evoembedding_core import EvoEmbeddingModel
from evoembedding_core.stream import EvoStream

TARGET_FLATNESS = 1.2


def stream_holding(model: EvoEmbeddingModel, turns: list[str], size: int, real_turns: int) -> dict:
    """The state_dict of a stream that has read ``size`` turns (its first ``real_turns`` read for real)."""
    stream = model.stream()
    stream.add(turns[: min(size, real_turns)])
    state = stream.state_dict()
    state["meta"]["length"] = size
    return state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--repeats", type=int, default=20, help="timed appends per size")
    parser.add_argument("--real-turns", type=int, default=100, help="turns really read to fill each stream")
    parser.add_argument("--rebuild-sizes", type=int, nargs="*", default=[100, 1000])
    args = parse_args(parser)

    model = EvoEmbeddingModel.default(device="cpu", dtype=args.torch_dtype)
    need = max([args.real_turns, *args.rebuild_sizes]) + args.repeats
    turns = chat_turns(need, model.tokenizer, seed=args.seed)
    history, new_turns = turns[: need - args.repeats], turns[need - args.repeats :]
    states = {n: stream_holding(model, history, n, args.real_turns) for n in args.sizes}

    model.stream().add(new_turns[:2])  # warm-up
    append: dict[int, list[float]] = {n: [] for n in args.sizes}
    for turn in new_turns:
        for n in args.sizes:
            stream = EvoStream(model).load_state_dict(states[n])
            seconds, _ = timed(stream.add, [turn])
            append[n].append(seconds)
    rebuild: dict[int, float] = {}
    for n in args.rebuild_sizes:
        seconds, _ = timed(lambda n=n: model.stream().add(history[:n] + [new_turns[0]])[-1])
        rebuild[n] = seconds

    per_turn = np.polyfit(list(rebuild), list(rebuild.values()), 1) if len(rebuild) > 1 else None
    rows, results = [], []
    for n in args.sizes:
        p50, p95 = statistics.median(append[n]), percentile(append[n], 95)
        if n in rebuild:
            base, label = rebuild[n], "measured"
        elif per_turn is not None:
            base, label = float(np.polyval(per_turn, n)), "extrapolated (linear)"
        else:
            base, label = float("nan"), "not measured"
        rows.append([n, p50 * 1000, p95 * 1000, base * 1000, label, base / p50])
        results.append(
            {
                "size": n,
                "append_ms_p50": round(p50 * 1000, 2),
                "append_ms_p95": round(p95 * 1000, 2),
                "rebuild_ms": round(base * 1000, 1),
                "rebuild": label,
                "speedup": round(base / p50, 1),
            }
        )
    print_table(["turns held", "append p50 ms", "append p95 ms", "rebuild ms", "rebuild is", "rebuild/append"], rows)
    flat = results[-1]["append_ms_p50"] / results[0]["append_ms_p50"]
    print(
        f"append cost at {args.sizes[-1]} vs {args.sizes[0]} turns: {flat:.2f}x "
        f"(target <= {TARGET_FLATNESS}: {'met' if flat <= TARGET_FLATNESS else 'NOT met'})"
    )
    write_results(
        "streaming",
        {
            "args": vars(args) | {"out": str(args.out)},
            "sizes": results,
            "flatness": round(flat, 3),
            "target_flatness": TARGET_FLATNESS,
            "target_met": flat <= TARGET_FLATNESS,
            "rebuild_fit_ms_per_turn": round(float(per_turn[0]) * 1000, 3) if per_turn is not None else None,
        },
        args.out,
    )


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
