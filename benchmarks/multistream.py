"""Many streams at once: ``advance_many`` (rows of all streams in shared batches) vs one stream at a time.

``--streams`` independent streams (1, 8, 64) each read ``--turns-per-stream`` chat turns (10-120
tokens, seeded synthetic conversations), tokenised up front. Two arrival patterns:

* ``bulk``: every stream's turns arrive in one call (importing many histories);
* ``live``: turns arrive ``--call-size`` at a time per stream, round-robin over the streams (many
  users chatting at once); each round is one ``advance_many`` call over all streams;
* ``store``: the public path, ``EvoStore.add``: one ``add`` per stream ("one at a time") against
  one ``add`` of every stream's turns (``stream_id=`` a list; the store batches the streams' rows).

"one at a time" runs :func:`~evoembedding_core.recurrence.advance` per stream and call, the same
calls in the same order; "together" runs one ``advance_many`` per round. Both sides read the same
turns with the same model, alternating ``--repeats`` times in one process, and every stream's
vectors are checked to agree (max abs difference reported).

    .venv/bin/python benchmarks/multistream.py --threads 1

Writes ``benchmarks/results/multistream.json``.
"""

from __future__ import annotations

import argparse
import statistics

import torch
from common import chat_turns, parse_args, print_table, timed, write_results

from evoembedding_core import EvoEmbeddingModel
from evoembedding_core.recurrence import StreamState, advance, advance_many
from evoembedding_integrations.store import EvoStore

TARGET_SPEEDUP = 3.0


def one_at_a_time(model, calls):
    """``calls``: rounds, each a list of per-stream segment lists. Returns every stream's vectors."""
    states = [StreamState.empty(model) for _ in calls[0]]
    out = [[] for _ in states]
    for round_ in calls:
        for i, segments in enumerate(round_):
            if segments:
                vectors, states[i] = advance(model, states[i], segments)
                out[i].append(vectors)
    return [torch.cat(v) for v in out]


def together(model, calls, max_rows=None):
    states = [StreamState.empty(model) for _ in calls[0]]
    out = [[] for _ in states]
    options = {} if max_rows is None else {"max_rows": max_rows}
    for round_ in calls:
        vectors, states = advance_many(model, states, round_, **options)
        for i, v in enumerate(vectors):
            out[i].append(v)
    return [torch.cat(v) for v in out]


def store_one_at_a_time(model, texts_per_stream):
    store = EvoStore(model)
    for i, texts in enumerate(texts_per_stream):
        store.add(texts, stream_id=f"s{i}", progress=False)
    return [torch.from_numpy(store.vectors(store.ids(f"s{i}"))) for i in range(len(texts_per_stream))]


def store_together(model, texts_per_stream):
    store = EvoStore(model)
    flat = [t for texts in texts_per_stream for t in texts]
    store.add(flat, stream_id=[f"s{i}" for i, texts in enumerate(texts_per_stream) for _ in texts], progress=False)
    return [torch.from_numpy(store.vectors(store.ids(f"s{i}"))) for i in range(len(texts_per_stream))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--turns-per-stream", type=int, default=16)
    parser.add_argument("--call-size", type=int, default=1, help="turns per stream per call (live pattern)")
    parser.add_argument("--patterns", nargs="+", default=["live", "bulk"], choices=["live", "bulk", "store"])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--max-rows", type=int, default=None, help="advance_many's max_rows (default: its own)")
    args = parse_args(parser)
    model = EvoEmbeddingModel.default(device=args.device, dtype=args.torch_dtype)
    most = max(args.streams)
    turns = chat_turns(most * args.turns_per_stream, model.tokenizer, seed=args.seed)
    ids = model.tokenize(turns)
    per_stream = [ids[i * args.turns_per_stream : (i + 1) * args.turns_per_stream] for i in range(most)]
    texts_per_stream = [turns[i * args.turns_per_stream : (i + 1) * args.turns_per_stream] for i in range(most)]
    one_at_a_time(model, [[per_stream[0][:4]]])  # warm-up
    together(model, [[per_stream[0][:4], per_stream[1][:4]]])

    rows, results = [], []
    for pattern in args.patterns:
        step = args.call_size if pattern == "live" else args.turns_per_stream
        for n in args.streams:
            calls = [[s[j : j + step] for s in per_stream[:n]] for j in range(0, args.turns_per_stream, step)]
            total = n * args.turns_per_stream
            seq_times, many_times = [], []
            for _ in range(args.repeats):
                if pattern == "store":
                    seconds, seq = timed(store_one_at_a_time, model, texts_per_stream[:n])
                    seq_times.append(seconds)
                    seconds, many = timed(store_together, model, texts_per_stream[:n])
                else:
                    seconds, seq = timed(one_at_a_time, model, calls)
                    seq_times.append(seconds)
                    seconds, many = timed(together, model, calls, args.max_rows)
                many_times.append(seconds)
            diff = max(float((a - b).abs().max()) for a, b in zip(seq, many))
            seq_s, many_s = statistics.median(seq_times), statistics.median(many_times)
            entry = {
                "pattern": pattern,
                "streams": n,
                "turns": total,
                "turns_per_call_per_stream": step,
                "one_at_a_time": {"seconds": [round(s, 3) for s in seq_times], "turns_per_s": round(total / seq_s, 1)},
                "together": {"seconds": [round(s, 3) for s in many_times], "turns_per_s": round(total / many_s, 1)},
                "speedup": round(seq_s / many_s, 3),
                "max_abs_vector_difference": diff,
            }
            results.append(entry)
            rows.append([pattern, n, total, total / seq_s, total / many_s, seq_s / many_s, diff])
            print_table(
                ["pattern", "streams", "turns", "1-at-a-time turns/s", "together turns/s", "speed-up", "max |diff|"],
                rows,
            )
    write_results(
        "multistream",
        {
            "args": vars(args) | {"out": str(args.out)},
            "dtype": str(model.backbone_dtype),
            "results": results,
            "target_speedup_at_64": TARGET_SPEEDUP,
        },
        args.out,
    )


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    torch.inference_mode().__enter__()
    main()
