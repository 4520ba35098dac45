"""Approximate search on context-aware vectors: recall@k against exact search and one-query latency.

Real vectors: ``--real`` synthetic chat turns (seeded ``training.synth`` conversations, 10-120
tokens) are read by the default model in ``--streams`` streams (``advance_many``), and
``--queries`` questions from other seeded conversations are encoded over those streams' memories
(``represent_queries``). These are cached in ``--cache``, so reruns skip the model.

Larger stores are the real vectors plus noisy copies: each copy is a real vector plus Gaussian
noise scaled so that its cosine to the original is about ``--copy-cosine``, renormalised. So at
100K and 1M most vectors are SYNTHETIC neighbours of real ones (said in the results file).

For every size: exact ``IndexFlatIP`` (ground truth and baseline latency), HNSW (``M`` x
``efSearch``; up to ``--hnsw-max`` vectors, its build is slow) and IVF-Flat (``nlist`` x
``nprobe``). Latency is one query per call on one thread (p50/p95 over the queries); indexes are
built with every core.

    .venv/bin/python benchmarks/index_recall.py                      # 4,096 real, 100K
    .venv/bin/python benchmarks/index_recall.py --sizes 100000 1000000

Writes ``benchmarks/results/index_recall.json``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from pathlib import Path

import faiss
import numpy as np
import torch
from common import chat_turns, parse_args, percentile, print_table, write_results

TARGET_RECALL = 0.95
CACHE = Path(os.environ.get("EVOEMBEDDING_CACHE", Path.home() / ".cache" / "evoembedding")) / "index_recall"


def real_vectors(args) -> tuple[np.ndarray, np.ndarray]:
    """(turn vectors, query vectors) of the default model on synthetic chats (cached)."""
    path = args.cache / f"real_{args.real}_{args.streams}_{args.queries}_{args.seed}_{args.dtype}.npz"
    if path.is_file():
        data = np.load(path)
        return data["turns"], data["queries"]
    from evoembedding_core import EvoEmbeddingModel
    from evoembedding_core.recurrence import StreamState, advance_many, represent_queries
    from evoembedding_core.training.synth import generate

    model = EvoEmbeddingModel.default(device="cpu", dtype=args.torch_dtype)
    ids = model.tokenize(chat_turns(args.real, model.tokenizer, seed=args.seed))
    per = -(-len(ids) // args.streams)
    streams = [ids[i : i + per] for i in range(0, len(ids), per)]
    start = time.perf_counter()
    with torch.inference_mode():
        states = [StreamState.empty(model) for _ in streams]
        turns = []
        for j in range(0, per, 16):  # 16 turns per stream per call
            vectors, states = advance_many(model, states, [s[j : j + 16] for s in streams])
            turns += [v for v in vectors if len(v)]
        questions = [s["meta"]["turns"][-1] for s in generate(args.queries, seed=args.seed + 1, max_turns=16)]
        rng = random.Random(args.seed)
        owners = [states[rng.randrange(len(states))] for _ in questions]
        queries = represent_queries(model, owners, model.tokenize(questions, query=True))
    print(f"encoded {len(ids)} turns and {len(questions)} queries in {time.perf_counter() - start:.0f} s")
    turns_np = torch.cat(turns).float().numpy()
    queries_np = queries.float().numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, turns=turns_np, queries=queries_np)
    return turns_np, queries_np


def grow(real: np.ndarray, size: int, copy_cosine: float, seed: int) -> np.ndarray:
    """``size`` unit vectors: the real ones, then noisy copies of them (cosine ~ ``copy_cosine``)."""
    rng = np.random.default_rng(seed)
    dim = real.shape[1]
    sigma = np.sqrt((1 / copy_cosine**2 - 1) / dim)
    out = np.empty((size, dim), np.float32)
    out[: len(real)] = real[:size]
    for start in range(len(real), size, 65536):
        stop = min(size, start + 65536)
        rows = real[rng.integers(0, len(real), stop - start)]
        noisy = rows + rng.standard_normal(rows.shape, dtype=np.float32) * np.float32(sigma)
        out[start:stop] = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
    return out


def latency(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, float, float]:
    """Labels found (q, k) and p50/p95 ms of one query per call on one thread."""
    faiss.omp_set_num_threads(1)
    times, found = [], []
    for q in queries:
        start = time.perf_counter()
        _, labels = index.search(q[None], k)
        times.append(time.perf_counter() - start)
        found.append(labels[0])
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    return np.stack(found), statistics.median(times) * 1000, percentile(times, 95) * 1000


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, exact)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", type=int, default=4096, help="real chat turns encoded by the model")
    parser.add_argument("--streams", type=int, default=64)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--copy-cosine", type=float, default=0.9)
    parser.add_argument("--hnsw-m", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--ef-search", type=int, nargs="+", default=[32, 64, 128, 256, 512])
    parser.add_argument("--hnsw-max", type=int, default=200_000, help="largest store that gets HNSW")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    parser.add_argument("--cache", type=Path, default=CACHE)
    args = parse_args(parser)
    real, queries = real_vectors(args)
    print(f"real vectors: {len(real)}, queries: {len(queries)}")
    rows, results = [], []

    def record(size, kind, params, found, exact, p50, p95, build_s):
        r = recall(found, exact) if exact is not None else 1.0
        results.append(
            {
                "size": size,
                "index": kind,
                **params,
                f"recall_at_{args.k}": round(r, 4),
                "p50_ms": round(p50, 3),
                "p95_ms": round(p95, 3),
                "build_s": round(build_s, 1),
            }
        )
        rows.append([size, kind, " ".join(f"{k}={v}" for k, v in params.items()), r, p50, p95, build_s])
        print_table(["vectors", "index", "params", f"recall@{args.k}", "p50 ms", "p95 ms", "build s"], rows[-1:])

    for size in args.sizes:
        data = grow(real, size, args.copy_cosine, args.seed)
        dim = data.shape[1]
        start = time.perf_counter()
        flat = faiss.IndexFlatIP(dim)
        flat.add(data)
        exact, p50, p95 = latency(flat, queries, args.k)
        record(size, "flat", {}, exact, None, p50, p95, time.perf_counter() - start)
        if size <= args.hnsw_max:
            for m in args.hnsw_m:
                start = time.perf_counter()
                hnsw = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
                hnsw.add(data)
                build_s = time.perf_counter() - start
                for ef in args.ef_search:
                    hnsw.hnsw.efSearch = ef
                    found, p50, p95 = latency(hnsw, queries, args.k)
                    record(size, "hnsw", {"M": m, "efSearch": ef}, found, exact, p50, p95, build_s)
                del hnsw
        nlist = max(64, int(4 * np.sqrt(size)) // 64 * 64)
        start = time.perf_counter()
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = data[np.random.default_rng(args.seed).choice(size, min(size, 64 * nlist), replace=False)]
        ivf.train(sample)
        ivf.add(data)
        build_s = time.perf_counter() - start
        for nprobe in args.nprobe:
            ivf.nprobe = nprobe
            found, p50, p95 = latency(ivf, queries, args.k)
            record(size, "ivf", {"nlist": nlist, "nprobe": nprobe}, found, exact, p50, p95, build_s)
        del ivf, flat, data
    print_table(["vectors", "index", "params", f"recall@{args.k}", "p50 ms", "p95 ms", "build s"], rows)
    write_results(
        "index_recall",
        {
            "args": vars(args) | {"out": str(args.out), "cache": str(args.cache)},
            "vectors": f"{len(real)} real turn vectors of the default model ({args.dtype}); the rest of each "
            f"store: noisy copies of them (cosine ~{args.copy_cosine} to their original), i.e. synthetic",
            "queries": f"{len(queries)} real query vectors (questions read over the streams' memories)",
            "target_recall": TARGET_RECALL,
            "results": results,
        },
        args.out,
    )


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
