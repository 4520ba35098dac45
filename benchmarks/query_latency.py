"""Query latency: p50/p95 of ``EvoStore.search`` (query encoding + FAISS) at 10K and 100K vectors.

Encoding 100K texts would take hours on a CPU, so the store's FAISS side is filled with random
unit vectors through the store's documented plain mode (``EvoStore(embeddings=...)``: an embedder
that returns precomputed vectors). Its queries are encoded by the real default model against a
real stream memory (the stream has read ``--history`` chat turns, so its memory is full), exactly
the ``represent`` call an EvoEmbedding-mode store makes per searched stream. Each query is one
``store.search(query, k=10)``: tokenising, one backbone forward over ``[memory; query]``, FAISS.

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


class PrecomputedVectors:
    """An embedder for plain-mode stores: documents get the next precomputed vectors, queries are
    encoded by an EvoEmbedding stream against its memory."""

    def __init__(self, vectors: np.ndarray, stream) -> None:
        self.vectors, self.stream, self.taken = vectors, stream, 0

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        out = self.vectors[self.taken : self.taken + len(texts)]
        self.taken += len(texts)
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.stream.encode_query(text)


def filled_store(size: int, index: str, vectors: np.ndarray, stream, hnsw_threshold: int) -> tuple[EvoStore, float]:
    """A store holding ``size`` precomputed vectors in one stream; returns it and the fill seconds."""
    store = EvoStore(embeddings=PrecomputedVectors(vectors, stream), index=index, hnsw_threshold=hnsw_threshold)

    def fill():
        for begin in range(0, size, FILL_BATCH):
            stop = min(size, begin + FILL_BATCH)
            ids = [f"v{i}" for i in range(begin, stop)]  # the same ids in every store: recall compares them
            store.add([f"turn {i}" for i in range(begin, stop)], stream_id="user", ids=ids)

    seconds, _ = timed(fill)
    return store, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=50, help="timed searches per store")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--history", type=int, default=40, help="chat turns the query stream has read")
    parser.add_argument("--hnsw-threshold", type=int, default=10_000, help="the store's default")
    parser.add_argument("--profile", action="store_true", help="also profile the query encodings (torch.profiler)")
    args = parse_args(parser)

    model = EvoEmbeddingModel.default(device="cpu")
    stream = model.stream()
    stream.add(chat_turns(args.history, model.tokenizer, seed=args.seed))
    queries = [s["meta"]["turns"][-1] for s in generate(args.queries, seed=args.seed + 1, max_turns=16)]
    rng = np.random.default_rng(args.seed)
    vectors = rng.standard_normal((max(args.sizes), model.output_dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    encode = [timed(stream.encode_query, q)[0] for q in queries]
    profile = profile_top_ops(lambda: [stream.encode_query(q) for q in queries]) if args.profile else None
    rows, results = [], []
    for size in args.sizes:
        found = {}
        for index in ("flat", "hnsw"):
            store, fill_s = filled_store(size, index, vectors, stream, args.hnsw_threshold)
            first_s, _ = timed(store.search, queries[0], k=args.k)  # HNSW: builds the graph
            times, found[index] = [], []
            for q in queries:
                seconds, hits = timed(store.search, q, k=args.k)
                times.append(seconds)
                found[index].append({h.id for h in hits})
            p50, p95 = statistics.median(times) * 1000, percentile(times, 95) * 1000
            recall = None
            if index == "hnsw":
                recall = float(np.mean([len(a & b) / len(a) for a, b in zip(found["flat"], found["hnsw"])]))
            rows.append([size, index, p50, p95, first_s, fill_s, "" if recall is None else f"{recall:.3f}"])
            results.append({"size": size, "index": index, "search_ms_p50": round(p50, 2), "search_ms_p95": round(p95, 2),
                            "first_search_s": round(first_s, 2), "fill_s": round(fill_s, 2),
                            f"recall_at_{args.k}_vs_exact": None if recall is None else round(recall, 3),
                            "target_met": p50 <= TARGET_P50_MS})
            del store
    print_table(["vectors", "index", "p50 ms", "p95 ms", "first search s", "fill s", f"recall@{args.k}"], rows)
    enc50 = statistics.median(encode) * 1000
    print(f"query encoding alone (EvoStream.encode_query): p50 {enc50:.2f} ms, p95 {percentile(encode, 95) * 1000:.2f} ms")
    largest = [r for r in results if r["size"] == max(args.sizes)]
    print("p50 <= {:.0f} ms at {} vectors: {}".format(
        TARGET_P50_MS, max(args.sizes), ", ".join(f"{r['index']} {'met' if r['target_met'] else 'NOT met'}" for r in largest)))
    write_results("query_latency", {
        "args": vars(args) | {"out": str(args.out)}, "fill": "random unit vectors through plain mode (precomputed)",
        "encode_query_ms_p50": round(enc50, 2), "encode_query_ms_p95": round(percentile(encode, 95) * 1000, 2),
        "stores": results, "target_p50_ms": TARGET_P50_MS, "profile_encode_query_top_ops": profile,
    }, args.out)


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
