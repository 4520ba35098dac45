"""Query latency: p50/p95 of ``EvoStore.search`` (query encoding + FAISS) at 10K and 100K vectors.

Encoding 100K texts would take hours on a CPU, so the store's FAISS side is filled with random
unit vectors through the store's documented plain mode (``EvoStore(embeddings=...)``: an embedder
that returns precomputed vectors); the texts are real synthetic chat turns (for BM25). Queries are
encoded by the real default model, in three modes, each timed on the same stores and queries:

* ``memory`` (the method as specified, ``query_memory=True``): over a real stream memory (the stream has read ``--history`` chat
  turns, so its memory is full), exactly the ``represent`` call an EvoEmbedding-mode store makes
  per searched stream: tokenising, one backbone forward over ``[memory; query]``, FAISS;
* ``no-memory``: over an empty memory, as the store does by default (``query_memory=False``);
* ``hybrid``: ``no-memory`` plus BM25 over the texts and rank fusion (``search(hybrid=True)``),
  the store's default setting (``EvoStore()``). The BM25 index is
  built by the first hybrid search (timed separately).

Indexes: exact (``IndexFlatIP``) and HNSW (``index="hnsw"``, M=32, efSearch=128; its graph is
built on the first search, timed separately). HNSW recall@k against the exact index is reported
for the same queries (random vectors are HNSW's hard case: real embeddings cluster).

    .venv/bin/python benchmarks/query_latency.py
    .venv/bin/python benchmarks/query_latency.py --sizes 10000 100000 --queries 100
    .venv/bin/python benchmarks/query_latency.py --sizes 10000 --profile   # + top operators of encode_query

Prints a table and writes ``benchmarks/results/query_latency.json``.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch
from common import chat_turns, parse_args, percentile, print_table, profile_top_ops, timed, write_results

from evoembedding_core import EvoEmbeddingModel
from evoembedding_core.training.synth import generate
from evoembedding_integrations import EvoStore

TARGET_P50_MS = 20.0
FILL_BATCH = 10_000


MODES = ("memory", "no-memory", "hybrid")


class PrecomputedVectors:
    """An embedder for plain-mode stores: documents get the next precomputed vectors, queries are
    encoded by an EvoEmbedding stream against its memory (or an empty one: ``query_memory``)."""

    def __init__(self, vectors: np.ndarray, stream) -> None:
        self.vectors, self.stream, self.taken, self.query_memory = vectors, stream, 0, True

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        out = self.vectors[self.taken : self.taken + len(texts)]
        self.taken += len(texts)
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.stream.encode_query(text, memory=self.query_memory)


def filled_store(
    size: int, index: str, vectors: np.ndarray, texts: list[str], stream, hnsw_threshold: int
) -> tuple[EvoStore, float]:
    """A store holding ``size`` precomputed vectors in one stream; returns it and the fill seconds."""
    store = EvoStore(embeddings=PrecomputedVectors(vectors, stream), index=index, hnsw_threshold=hnsw_threshold)

    def fill():
        for begin in range(0, size, FILL_BATCH):
            stop = min(size, begin + FILL_BATCH)
            ids = [f"v{i}" for i in range(begin, stop)]  # the same ids in every store: recall compares them
            store.add([texts[i % len(texts)] for i in range(begin, stop)], stream_id="user", ids=ids)

    seconds, _ = timed(fill)
    return store, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=50, help="timed searches per store")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--history", type=int, default=40, help="chat turns the query stream has read")
    parser.add_argument("--hnsw-threshold", type=int, default=10_000, help="the store's default")
    parser.add_argument("--texts", type=int, default=20_000, help="distinct chat turns, repeated to fill the stores")
    parser.add_argument("--profile", action="store_true", help="also profile the query encodings (torch.profiler)")
    args = parse_args(parser)

    model = EvoEmbeddingModel.default(device=args.device, dtype=args.torch_dtype)
    stream = model.stream()
    stream.add(chat_turns(args.history, model.tokenizer, seed=args.seed))
    queries = [s["meta"]["turns"][-1] for s in generate(args.queries, seed=args.seed + 1, max_turns=16)]
    rng = np.random.default_rng(args.seed)
    vectors = rng.standard_normal((max(args.sizes), model.output_dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    texts = chat_turns(min(args.texts, max(args.sizes)), model.tokenizer, seed=args.seed + 2)

    encode = {mode: [timed(stream.encode_query, q, memory=mode == "memory")[0] for q in queries] for mode in MODES[:2]}
    profile = profile_top_ops(lambda: [stream.encode_query(q) for q in queries]) if args.profile else None
    rows, results = [], []
    for size in args.sizes:
        for index in ("flat", "hnsw"):
            store, fill_s = filled_store(size, index, vectors, texts, stream, args.hnsw_threshold)
            first_s, _ = timed(store.search, queries[0], k=args.k)  # HNSW: builds the graph
            lexical_s, _ = timed(store.search, queries[0], k=args.k, hybrid=True)  # builds the BM25 index
            for mode in MODES:
                store.embeddings.query_memory = mode == "memory"
                times, found = [], []
                for q in queries:
                    seconds, hits = timed(store.search, q, k=args.k, hybrid=mode == "hybrid")
                    times.append(seconds)
                    found.append({h.id for h in hits})
                p50, p95 = statistics.median(times) * 1000, percentile(times, 95) * 1000
                recall = None
                if index == "hnsw" and mode != "hybrid":
                    exact = next(r for r in results if (r["size"], r["index"], r["mode"]) == (size, "flat", mode))
                    recall = float(np.mean([len(a & b) / len(a) for a, b in zip(exact["found"], found)]))
                rows.append(
                    [size, index, mode, p50, p95, first_s, lexical_s, fill_s, "" if recall is None else f"{recall:.3f}"]
                )
                results.append(
                    {
                        "size": size,
                        "index": index,
                        "mode": mode,
                        "found": found,
                        "search_ms_p50": round(p50, 2),
                        "search_ms_p95": round(p95, 2),
                        "first_search_s": round(first_s, 2),
                        "bm25_build_s": round(lexical_s, 2),
                        "fill_s": round(fill_s, 2),
                        f"recall_at_{args.k}_vs_exact": None if recall is None else round(recall, 3),
                        "target_met": p50 <= TARGET_P50_MS,
                    }
                )
            del store
    for r in results:
        del r["found"]
    print_table(
        [
            "vectors",
            "index",
            "query",
            "p50 ms",
            "p95 ms",
            "first search s",
            "BM25 build s",
            "fill s",
            f"recall@{args.k}",
        ],
        rows,
    )
    enc = {mode: (statistics.median(t) * 1000, percentile(t, 95) * 1000) for mode, t in encode.items()}
    for mode, (p50, p95) in enc.items():
        print(f"query encoding alone ({mode}, EvoStream.encode_query): p50 {p50:.2f} ms, p95 {p95:.2f} ms")
    largest = [r for r in results if r["size"] == max(args.sizes)]
    print(
        "p50 <= {:.0f} ms at {} vectors: {}".format(
            TARGET_P50_MS,
            max(args.sizes),
            ", ".join(f"{r['index']}/{r['mode']} {'met' if r['target_met'] else 'NOT met'}" for r in largest),
        )
    )
    write_results(
        "query_latency",
        {
            "args": vars(args) | {"out": str(args.out)},
            "fill": "random unit vectors through plain mode (precomputed); texts: synthetic chat turns, repeated",
            "encode_query_ms_p50": {m: round(v[0], 2) for m, v in enc.items()},
            "encode_query_ms_p95": {m: round(v[1], 2) for m, v in enc.items()},
            "stores": results,
            "target_p50_ms": TARGET_P50_MS,
            "profile_encode_query_top_ops": profile,
        },
        args.out,
    )


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
