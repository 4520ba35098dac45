"""Concurrency: 8 threads doing mixed add / search / delete / save for 20 s on EvoAgentMemory and on the
vector stores (EvoStore in evo mode, LangChain EvoVectorStore in plain mode).

Checked: no exception in any thread; no lost or duplicated entry (the final ids are exactly those
added and not deleted); every search result is a known entry with its own text and was never deleted
by the searching thread before the search began; saves taken during the run load and are consistent.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fuzz_strategies import HashingEmbeddings, assert_consistent
from langchain_core.embeddings import Embeddings

from evoembedding_integrations.langchain import EvoVectorStore
from evoembedding_integrations.memory import EvoAgentMemory
from evoembedding_integrations.store import EvoStore

pytestmark = pytest.mark.slow
THREADS, SECONDS = 8, 20.0


@dataclass
class Target:
    """How to drive one store: add(user, text) -> id, delete(id), search(query, user) -> [(id, text)], save(dir), load(dir) -> store."""

    name: str
    add: callable
    delete: callable
    search: callable
    save: callable
    load: callable
    ids: callable


@dataclass
class Ledger:
    texts: dict = field(default_factory=dict)  # every id ever added -> its text
    written: set = field(default_factory=set)  # every text ever given to add (before add returns)
    live: set = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def worker(
    tid: int, targets: list[Target], ledgers: dict, save_dirs: dict, stop: threading.Event, errors: list, counts: dict
):
    rng = random.Random(tid)
    own: dict[str, list[str]] = {t.name: [] for t in targets}
    deleted: dict[str, set[str]] = {t.name: set() for t in targets}
    n = 0
    try:
        while not stop.is_set():
            target = rng.choice(targets)
            ledger = ledgers[target.name]
            op = rng.random()
            user = f"user{rng.randrange(3)}"
            if op < 0.35:
                text = f"thread {tid} note {n}: I like item {rng.randrange(100)} and place {rng.randrange(20)}"
                n += 1
                with ledger.lock:
                    ledger.written.add(text)  # a search may see it before add returns its id
                id_ = target.add(user, text)
                with ledger.lock:
                    assert id_ not in ledger.texts, f"duplicate id {id_}"
                    ledger.texts[id_] = text
                    ledger.live.add(id_)
                own[target.name].append(id_)
            elif op < 0.5 and own[target.name]:
                id_ = own[target.name].pop(rng.randrange(len(own[target.name])))
                target.delete(id_)
                deleted[target.name].add(id_)
                with ledger.lock:
                    ledger.live.discard(id_)
            elif op < 0.95:
                gone = set(deleted[target.name])
                for id_, text in target.search(
                    f"what does thread {rng.randrange(THREADS)} like?", rng.choice([user, None])
                ):
                    with ledger.lock:
                        known = ledger.texts.get(id_, text if text in ledger.written else None)
                        assert known == text, f"{target.name}: search returned unknown or wrong entry {id_}"
                    assert id_ not in gone, f"{target.name}: search returned {id_}, deleted before the search began"
            else:
                directory = save_dirs[target.name] / f"t{tid}"
                target.save(directory)
                loaded = target.load(directory)
                assert_consistent(loaded)
                with ledger.lock:
                    assert {r.text for r in loaded.get(loaded.ids())} <= ledger.written
            counts[target.name] = counts.get(target.name, 0) + 1
    except BaseException as exc:  # reported by the main thread
        errors.append((tid, repr(exc)))
        stop.set()


def run(targets: list[Target], tmp_path: Path) -> dict:
    ledgers = {t.name: Ledger() for t in targets}
    save_dirs = {t.name: tmp_path / t.name for t in targets}
    stop, errors, counts = threading.Event(), [], {}
    threads = [
        threading.Thread(target=worker, args=(i, targets, ledgers, save_dirs, stop, errors, counts))
        for i in range(THREADS)
    ]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(SECONDS)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    elapsed = time.monotonic() - start
    assert not errors, errors
    assert elapsed >= SECONDS and not any(t.is_alive() for t in threads)
    for target in targets:
        ids = target.ids()
        assert len(ids) == len(set(ids)), f"{target.name}: duplicated entries"
        assert set(ids) == ledgers[target.name].live, f"{target.name}: lost or resurrected entries"
        final = save_dirs[target.name] / "final"
        target.save(final)
        reloaded = target.load(final)
        assert_consistent(reloaded)
        assert set(reloaded.ids()) == ledgers[target.name].live
        saved_during_run = [p for p in save_dirs[target.name].iterdir() if p.name != "final"]
        assert saved_during_run, f"{target.name}: no save was taken during the run"
        for directory in saved_during_run:
            assert_consistent(target.load(directory))
    print(f"\n{THREADS} threads x {elapsed:.1f} s: operations {counts}")
    return counts


class HashingLangChainEmbeddings(HashingEmbeddings, Embeddings):
    """The hashing embedder as a LangChain ``Embeddings`` (a plain EvoVectorStore)."""


def memory_target(memory: EvoAgentMemory, model) -> Target:
    return Target(
        name="EvoAgentMemory",
        add=lambda user, text: memory.add(text, user_id=user, session_id="s")[0],
        delete=lambda id_: memory.delete(id_),
        search=lambda query, user: [(r["id"], r["memory"]) for r in memory.search(query, user_id=user, k=5)],
        save=lambda directory: memory.store.save(directory),
        load=lambda directory: EvoAgentMemory(directory, model=model, autosave=False).store,
        ids=lambda: memory.store.ids(),
    )


def test_agent_memory_under_8_threads(tmp_path, minilm_model):
    memory = EvoAgentMemory(tmp_path / "memory", model=minilm_model, autosave=True)
    counts = run([memory_target(memory, minilm_model)], tmp_path)
    assert counts["EvoAgentMemory"] > 50


def test_vector_stores_under_8_threads(tmp_path, minilm_model):
    evo = EvoStore(minilm_model)
    embedder = HashingLangChainEmbeddings()
    plain = EvoVectorStore(embedder)
    targets = [
        Target(
            name="EvoStore",
            add=lambda user, text: evo.add([text], stream_id=user)[0],
            delete=lambda id_: evo.delete([id_]),
            search=lambda query, user: [(h.id, h.text) for h in evo.search(query, k=5, stream_ids=user)],
            save=lambda directory: evo.save(directory),
            load=lambda directory: EvoStore.load(directory, minilm_model),
            ids=lambda: evo.ids(),
        ),
        Target(
            name="EvoVectorStore",
            add=lambda user, text: plain.add_texts([text], [{"user": user}])[0],
            delete=lambda id_: plain.delete([id_]),
            search=lambda query, user: [
                (d.id, d.page_content)
                for d in plain.similarity_search(query, k=5, filter=None if user is None else {"user": user})
            ],
            save=lambda directory: plain.save_local(directory),
            load=lambda directory: EvoVectorStore.load_local(directory, embedder).store,
            ids=lambda: plain.store.ids(),
        ),
    ]
    counts = run(targets, tmp_path)
    assert counts["EvoStore"] > 50 and counts["EvoVectorStore"] > 50
