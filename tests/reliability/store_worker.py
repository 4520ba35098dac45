"""A process that writes to, or reads, one durable store: driven by test_reliability_processes.py.

    python store_worker.py writer PATH NAME COUNT SEED   # adds (and some deletes); prints each acknowledged call
    python store_worker.py reader PATH STOP_FILE         # opens and searches in a loop until STOP_FILE exists

A writer prints ``add <id> <text>`` / ``del <id>`` only after the call returned (acknowledged), and
``deleting <id>`` before it calls ``delete``; it flushes each line. A reader prints ``ok <loads>`` at the end; any failure exits non-zero with the
traceback on stderr.
"""

from __future__ import annotations

import random
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: fuzz_strategies

from fuzz_strategies import HashingEmbeddings, assert_consistent  # noqa: E402

from evoembedding_integrations.store import EvoStore  # noqa: E402


def writer(path: str, name: str, count: int, seed: int) -> None:
    rng = random.Random(seed)
    store = EvoStore.open(path, embeddings=HashingEmbeddings())
    print("ready", flush=True)
    mine: list[str] = []
    for n in range(count):
        if mine and rng.random() < 0.2:
            victim = mine.pop(rng.randrange(len(mine)))
            print(f"deleting {victim}", flush=True)  # a kill from here on may or may not undo it
            store.delete([victim])
            print(f"del {victim}", flush=True)
            continue
        stream = rng.choice(["shared", f"own-{name}"])
        text = f"{name} says {n} ({rng.random():.6f})"
        batch = rng.choice([1, 1, 1, 3])
        texts = [f"{text} #{i}" for i in range(batch)]
        ids = store.add(texts, stream_id=stream, metadatas=[{"by": name, "n": n}] * batch)
        for id_, t in zip(ids, texts):
            print(f"add {id_} {t}", flush=True)
        mine += ids


def reader(path: str, stop_file: str) -> None:
    embedder = HashingEmbeddings()
    live = EvoStore.open(path, embeddings=embedder)  # kept open: catches up before every call
    loads = 0
    while not Path(stop_file).exists():
        snapshot = EvoStore.load(path, embeddings=embedder)  # a fresh read of the whole database
        assert_consistent(snapshot)
        hits = live.search("says", k=3)  # catches up with both writers first
        assert all(h.text.split(" says ")[0] in ("a", "b") for h in hits) and len(live) >= 0
        loads += 1
    print(f"ok {loads}", flush=True)


if __name__ == "__main__":
    try:
        if sys.argv[1] == "writer":
            writer(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        else:
            reader(sys.argv[2], sys.argv[3])
    except Exception:
        traceback.print_exc()
        time.sleep(0.01)
        sys.exit(1)
