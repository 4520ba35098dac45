"""Storage: the cost of one durable ``EvoAgentMemory.add`` as the memory grows, and the open time.

A durable agent memory (an ``EvoStore`` on its SQLite database, ``docs/storage.md``) is filled by
bulk insert to each size, then ``--adds`` single ``add`` calls per size are timed, taking the sizes
in turn (so a busy machine slows every size alike), each committed (fsynced) before it returns. A plain hashing embedder (``--dim``-d) makes the vectors, so the storage layer is
what is timed, not the model. What must hold: the 100K / 100 ratio of the median add is at most 2
(appending is O(1), nothing is rewritten). Also reports the time to open the largest store (read
and verify every row, rebuild the FAISS indexes) and its size on disk.

    .venv/bin/python benchmarks/storage.py                      # 100, 10K and 100K memories
    .venv/bin/python benchmarks/storage.py --sizes 100 1000     # a quick look

Prints a table and writes ``benchmarks/results/storage.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from common import parse_args, percentile, print_table, write_results

from evoembedding_integrations.memory import EvoAgentMemory
from evoembedding_integrations.store import EvoStore

USERS = 100
BULK = 5_000


class FakeEmbeddings:
    """A deterministic plain embedder: a vector seeded by a hash of the text."""

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def __call__(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), np.float32)
        for row, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
            out[row] = np.random.default_rng(seed).standard_normal(self.dim, dtype=np.float32)
        return out


def fill(memory: EvoAgentMemory, size: int) -> None:
    """Bulk insert ``size`` memories, spread over :data:`USERS` users (one transaction per call)."""
    done = 0
    while done < size:
        n = min(BULK, size - done)
        user = f"user-{(done // BULK) % USERS}"
        memory.add(
            [f"memory {done + i}: something {user} said about topic {(done + i) % 97}" for i in range(n)], user_id=user
        )
        done += n


def measure(root: Path, sizes: list[int], embedder: FakeEmbeddings, adds: int) -> list[dict]:
    """Build one durable memory per size, then time single adds to them in turn (round-robin, so
    a busy machine slows every size alike), then time opening each."""
    memories, fills = [], []
    for size in sizes:
        memory = EvoAgentMemory(store=EvoStore(embeddings=embedder, path=root / f"store-{size}"))
        start = time.perf_counter()
        fill(memory, size)
        fills.append(time.perf_counter() - start)
        memories.append(memory)
    times: list[list[float]] = [[] for _ in sizes]
    for i in range(adds):
        for n, (size, memory) in enumerate(zip(sizes, memories)):
            start = time.perf_counter()
            memory.add(f"I just remembered thing {i} at size {size}.", user_id=f"user-{i % USERS}", session_id="bench")
            times[n].append(time.perf_counter() - start)
    rows = []
    for n, (size, memory) in enumerate(zip(sizes, memories)):
        assert len(memory) == size + adds
        memory.store.close()
        path = root / f"store-{size}"
        start = time.perf_counter()
        reopened = EvoStore.open(path, embeddings=embedder)
        open_s = time.perf_counter() - start
        assert len(reopened) == size + adds
        reopened.close()
        rows.append(
            {
                "existing": size,
                "add_median_ms": round(statistics.median(times[n]) * 1000, 3),
                "add_p90_ms": round(percentile(times[n], 90) * 1000, 3),
                "fill_s": round(fills[n], 2),
                "open_s": round(open_s, 3),
                "disk_mb": round(sum(f.stat().st_size for f in path.iterdir()) / 2**20, 1),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 10_000, 100_000])
    parser.add_argument("--adds", type=int, default=100, help="timed single adds per size")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--dir", type=Path, default=None, help="where the stores are built (default: a temp dir)")
    args = parse_args(parser)
    embedder = FakeEmbeddings(args.dim)
    with tempfile.TemporaryDirectory(dir=args.dir) as root:
        rows = measure(Path(root), args.sizes, embedder, args.adds)
    headers = list(rows[0])
    print_table(headers, [[row[h] for h in headers] for row in rows])
    ratio = rows[-1]["add_median_ms"] / rows[0]["add_median_ms"]
    print(f"median add at {rows[-1]['existing']:,} / at {rows[0]['existing']:,}: {ratio:.2f}x (must be <= 2)")
    print(f"open of the {rows[-1]['existing']:,}-memory store: {rows[-1]['open_s']:.2f} s")
    write_results("storage", {"dim": args.dim, "adds": args.adds, "rows": rows, "ratio": round(ratio, 3)}, args.out)


if __name__ == "__main__":
    main()
