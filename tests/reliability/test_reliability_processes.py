"""Several processes on one durable store: two writers at once, some killed with SIGKILL, and a reader.

Each round starts two writer processes (``store_worker.py``) adding to a shared stream and to their
own, and deleting some of their earlier entries, plus a reader process that loads the store and
searches a kept-open copy in a loop. In some rounds one or both writers are SIGKILLed at a random
moment. After every round the store must open, be consistent, and hold exactly what was
acknowledged: every entry whose ``add`` returned (unless its ``delete`` returned) with its text,
and no entry whose ``delete`` returned. A delete a kill interrupted (called, not returned) may
have happened or not. The reader must never fail.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fuzz_strategies import HashingEmbeddings, assert_consistent

from evoembedding_integrations.store import EvoStore

pytestmark = pytest.mark.slow
ROUNDS = 24
WORKER = Path(__file__).with_name("store_worker.py")


class Writer:
    """A writer process and the calls it acknowledged (read from its stdout as they come)."""

    def __init__(self, path: Path, name: str, count: int, seed: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), "writer", str(path), name, str(count), str(seed)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.added: dict[str, str] = {}
        self.deleted: set[str] = set()
        self.deleting: set[str] = set()  # delete called; acknowledged only if also in ``deleted``
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            kind, _, rest = line.rstrip("\n").partition(" ")
            if kind == "ready":
                self.ready.set()
            elif kind == "add":
                id_, _, text = rest.partition(" ")
                self.added[id_] = text
            elif kind == "deleting":
                self.deleting.add(rest)
            elif kind == "del":
                self.deleted.add(rest)

    def finish(self, kill_after: float | None) -> int:
        if kill_after is not None:
            self.ready.wait(60)
            time.sleep(kill_after)
            self.proc.send_signal(signal.SIGKILL)
        code = self.proc.wait(120)
        self.thread.join(30)
        return code


def test_two_writers_and_a_reader_lose_nothing_acknowledged(tmp_path):
    path, stop = tmp_path / "store", tmp_path / "stop"
    EvoStore(embeddings=HashingEmbeddings(), path=path).close()
    rng = random.Random(14)
    expected: dict[str, str] = {}
    deleted: set[str] = set()
    in_flight: set[str] = set()  # deletes a kill interrupted: either outcome is correct
    reader = subprocess.Popen(
        [sys.executable, str(WORKER), "reader", str(path), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    kills = planned_kills = 0
    try:
        for round_ in range(ROUNDS):
            plan = [rng.choice([None, None, rng.uniform(0.05, 0.6)]) for _ in "ab"]
            # A writer to be killed has more work than it can finish first, so the kill always lands.
            counts = [40 if kill is None else 1_000_000 for kill in plan]
            writers = [Writer(path, name, count, round_ * 2 + n) for n, (name, count) in enumerate(zip("ab", counts))]
            planned_kills += sum(kill is not None for kill in plan)
            finishers = [threading.Thread(target=w.finish, args=(k,)) for w, k in zip(writers, plan)]
            for t in finishers:
                t.start()
            for t in finishers:
                t.join()
            for writer, kill in zip(writers, plan):
                code = writer.proc.returncode
                if kill is None:
                    assert code == 0, writer.proc.stderr.read()
                else:
                    kills += code == -signal.SIGKILL
                expected.update(writer.added)
                deleted |= writer.deleted
                in_flight |= writer.deleting - writer.deleted
            store = EvoStore.open(path, embeddings=HashingEmbeddings())  # always opens
            assert_consistent(store)
            live = {i: t for i, t in expected.items() if i not in deleted}
            records = {r.id: r.text for r in store.get(list(live))}
            missing = live.keys() - records.keys()
            assert missing <= in_flight, f"round {round_}: acknowledged entries missing: {missing - in_flight}"
            assert all(records[i] == live[i] for i in records), f"round {round_}: acknowledged entries changed"
            assert not store.get(list(deleted)), f"round {round_}: acknowledged deletes undone"
            assert reader.poll() is None, reader.stderr.read()
            store.close()
    finally:
        stop.touch()
        out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err
    loads = int(out.split()[-1])
    assert kills == planned_kills >= 5 and loads > ROUNDS, (kills, planned_kills, loads)
    print(f"{ROUNDS} rounds, {kills} writers SIGKILLed, {len(expected)} acknowledged adds, {loads} reader loads")
