"""Scale-out: ingest turns/s serially and on 1 and 2 Ray workers; search on the Qdrant-backed store.

**Ingest.** ``--conversations`` synthetic conversations of ``--turns`` realistic chat turns each
(:func:`common.chat_turns`) are ingested into a fresh durable store three ways: serially in this
process (the model already loaded), then by :func:`ingest_conversations` on 1 and on 2 Ray workers
(``ray.init(num_cpus=2)``: a one-node cluster on this machine). For Ray both the wall-clock rate
and the steady rate (after the workers loaded the model and opened the store) are reported, and the
per-worker rate (steady rate / workers). Each Ray worker runs torch on 1 thread (Ray sets
``OMP_NUM_THREADS`` to the worker's CPUs); the serial run uses torch's default threads.

**Search** (``--vectors``; 0 skips it). ``--vectors`` vectors from a plain hashing embedder
(``--dim``-d; no model) in ``--streams`` streams, in the embedded store (SQLite) and in the
Qdrant-backed store (Qdrant local mode, ``--qdrant memory`` or ``disk``): the time to write them, to reopen the store
(read everything back, build the in-memory index) and the search latency over all streams (which
runs in the in-memory index in both cases), plus Qdrant's own nearest-neighbour query for reference.
A last row opens the same Qdrant collection with database-side search (``search="database"``: only
the stream table is read; each search is a Qdrant query) and measures its open time and the same
searches.

    .venv/bin/python benchmarks/ray_ingest.py                       # 40 conversations, 100K vectors
    .venv/bin/python benchmarks/ray_ingest.py --vectors 0           # ingest only

Prints tables and writes ``benchmarks/results/ray_ingest.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from common import chat_turns, parse_args, percentile, print_table, write_results

from evoembedding_integrations.distributed import ingest_conversations, ingest_serial
from evoembedding_integrations.store import EvoStore


class HashEmbedder:
    """A deterministic plain embedder: a ``dim``-d vector seeded by a hash of each text."""

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def __call__(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
            out[i] = np.random.default_rng(seed).standard_normal(self.dim, dtype=np.float32)
        return out


def ingest(args, work: Path) -> dict:
    import ray

    store = EvoStore()
    turns = chat_turns(args.conversations * args.turns, store.model.tokenizer, seed=args.seed)
    chats = {f"chat-{i:03d}": turns[i * args.turns : (i + 1) * args.turns] for i in range(args.conversations)}
    total = sum(map(len, chats.values()))
    rows, out = [], {"conversations": args.conversations, "turns_per_conversation": args.turns, "turns": total}
    serial = EvoStore(store.model, path=work / "serial")
    report = ingest_serial(chats, serial, progress=False)
    out["serial"] = {"seconds": report.seconds, "turns_per_s": report.texts_per_second}
    rows.append(["serial (in process)", 1, f"{report.seconds:.1f}", "-", report.texts_per_second, "-", "-"])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        for workers in args.workers:
            r = ingest_conversations(chats, work / f"ray-{workers}", num_workers=workers, progress=False)
            steady = r.steady_texts_per_second
            out[f"ray_{workers}"] = {
                "seconds": r.seconds,
                "startup_seconds": r.startup_seconds,
                "turns_per_s": r.texts_per_second,
                "steady_turns_per_s": steady,
                "per_worker_turns_per_s": steady / workers,
            }
            rows.append(
                [
                    f"Ray, {workers} worker(s)",
                    workers,
                    f"{r.seconds:.1f}",
                    f"{r.startup_seconds:.1f}",
                    r.texts_per_second,
                    steady,
                    steady / workers,
                ]  # fmt: skip
            )
    finally:
        ray.shutdown()
    print(f"\ningest: {args.conversations} conversations x {args.turns} turns = {total} turns, {os.cpu_count()} CPUs")
    print_table(["run", "workers", "wall s", "startup s", "turns/s", "steady turns/s", "per worker"], rows)
    return out


def search(args, work: Path) -> dict:
    from evoembedding_integrations.store.qdrant_backend import open_qdrant_store

    embedder = HashEmbedder(args.dim)
    texts = [f"segment {i} of a long history" for i in range(args.vectors)]
    streams = [f"user-{i % args.streams}" for i in range(args.vectors)]
    queries = embedder([f"query {i}" for i in range(args.queries)])
    out, rows = {"vectors": args.vectors, "dim": args.dim, "streams": args.streams}, []
    openers = {
        "embedded (SQLite)": lambda: EvoStore(embeddings=embedder, path=work / "sqlite"),
        f"Qdrant (local mode, {args.qdrant})": lambda: open_qdrant_store(
            client if args.qdrant == "memory" else work / "qdrant", "bench", embeddings=embedder
        ),
    }
    if args.qdrant == "memory":  # one in-process database, opened again by a new store
        from qdrant_client import QdrantClient

        client = QdrantClient(location=":memory:")
    for name, opener in openers.items():
        started = time.perf_counter()
        store = opener()
        for start in range(0, args.vectors, 10_000):
            end = start + 10_000
            store.add(texts[start:end], stream_id=streams[start:end], ids=texts[start:end], progress=False)
        write_s = time.perf_counter() - started
        if name.startswith("Qdrant") and args.qdrant == "disk":
            store._backend.close()
        elif not name.startswith("Qdrant"):
            store.close()
        started = time.perf_counter()
        store = opener()
        open_s = time.perf_counter() - started
        assert len(store) == args.vectors
        latencies = timed(lambda q, s=store: s.search_by_vector(q, k=10), queries)
        row = {"write_s": write_s, "open_s": open_s, "search_p50_ms": statistics.median(latencies)}
        row["search_p95_ms"] = percentile(latencies, 95)
        database_row = None
        if name.startswith("Qdrant"):
            client = store._backend.client
            db = timed(lambda q, c=client: c.query_points("bench", query=q.tolist(), limit=10), queries)
            row["database_query_p50_ms"] = statistics.median(db)
            started = time.perf_counter()  # the same collection, searched in the database
            database = open_qdrant_store(client, "bench", embeddings=embedder, search="database")
            database_row = {"open_s": time.perf_counter() - started}
            assert len(database) == args.vectors
            latencies = timed(lambda q, s=database: s.search_by_vector(q, k=10), queries)
            database_row.update(search_p50_ms=statistics.median(latencies), search_p95_ms=percentile(latencies, 95))
            store._backend.close()
        else:
            store.close()
        out[name] = row
        rows.append([name, write_s, open_s, row["search_p50_ms"], row["search_p95_ms"],
                     row.get("database_query_p50_ms", "-")])  # fmt: skip
        if database_row is not None:
            out[f"{name}, database search"] = database_row
            rows.append([f"{name}, database search", "-", database_row["open_s"], database_row["search_p50_ms"],
                         database_row["search_p95_ms"], "-"])  # fmt: skip
    print(f"\nsearch: {args.vectors} vectors ({args.dim}-d) in {args.streams} streams, k=10 over all streams")
    print_table(["store", "write s", "reopen s", "search p50 ms", "p95 ms", "Qdrant's own query p50 ms"], rows)
    return out


def timed(call, queries) -> list[float]:
    """Milliseconds ``call(query)`` took, for each query."""
    latencies = []
    for q in queries:
        started = time.perf_counter()
        call(q)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=40)
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument(
        "--qdrant",
        choices=["memory", "disk"],
        default="memory",
        help="Qdrant local mode in memory (default) or in a folder (its on-disk local mode writes ~100 points/s)",
    )
    args = parse_args(parser)
    result = {"load_average_at_start": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.conversations:
            result["ingest"] = ingest(args, work)
        if args.vectors:
            result["search"] = search(args, work)
    result["load_average_at_end"] = os.getloadavg()
    print(f"load average (1, 5, 15 min): start {result['load_average_at_start']}, end {result['load_average_at_end']}")
    write_results("ray_ingest", result, args.out)


if __name__ == "__main__":
    main()
