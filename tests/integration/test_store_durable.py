"""Durable stores on SQLite: every call committed, store objects catching up with each other, the
snapshot format migrated and still exported, and a refused write (full or read-only database)
changing nothing, in memory or on disk."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from fuzz_strategies import HashingEmbeddings, assert_consistent, assert_same_snapshot, snapshot

from evoembedding_integrations.memory import EvoAgentMemory
from evoembedding_integrations.store import EvoStore
from evoembedding_integrations.store.sqlite_backend import DATABASE, StorageError

EMBEDDER = HashingEmbeddings()


def durable(path) -> EvoStore:
    return EvoStore(embeddings=EMBEDDER, path=path)


def fill(store: EvoStore) -> None:
    store.add(["ana likes tea", "ana moved to Oslo"], stream_id="ana", ids=["a0", "a1"], metadatas=[{"n": 0}, {"n": 1}])
    store.add(["bob has a dog"], stream_id="bob", ids=["b0"])


def test_every_call_is_committed_before_it_returns(tmp_path):
    store = durable(tmp_path / "s")
    assert store.durable and store.path == tmp_path / "s"
    fill(store)
    steps = [
        lambda s: s.add(["ana again"], stream_id="ana", ids=["a2"]),
        lambda s: s.add(["a1 replaced, now in bob"], stream_id="bob", ids=["a1"]),
        lambda s: s.delete(["a0", "missing"]),
        lambda s: s.delete_stream("bob"),
        lambda s: s.clear(),
        lambda s: s.add(["after the clear"], stream_id="ana", ids=["c0"]),
    ]
    for step in steps:
        step(store)
        reopened = EvoStore.open(tmp_path / "s", embeddings=EMBEDDER)  # a fresh read of the database
        assert_same_snapshot(snapshot(reopened), snapshot(store))
        assert reopened.streams() == store.streams()
        assert_consistent(reopened)
        reopened.close()
    assert sorted(p.name for p in (tmp_path / "s").iterdir() if not p.name.endswith(("-wal", "-shm"))) == [DATABASE]


def test_store_objects_on_one_path_catch_up_before_answering(tmp_path):
    a, b = durable(tmp_path / "s"), durable(tmp_path / "s")
    fill(a)
    assert b.ids() == ["a0", "a1", "b0"] and b.search("dog", k=1, stream_ids="bob")[0].id == "b0"
    b.add(["bob again"], stream_id="bob", ids=["b1"])  # positions continue where a left the stream
    assert [r.position for r in a.get(["b0", "b1"])] == [0, 1]
    a.add(["a0 moved to carol"], stream_id="carol", ids=["a0"])
    assert b.get(["a0"])[0].stream_id == "carol" and b.streams() == ["ana", "bob", "carol"]
    b.delete_stream("ana")
    a.add(["ana is back"], stream_id="ana", ids=["a9"])  # re-created after b dropped it: last in order
    assert b.streams() == a.streams() == ["bob", "carol", "ana"]
    assert_same_snapshot(snapshot(a), snapshot(b))
    b.clear()
    assert len(a) == 0 and a.streams() == []
    a.add(["fresh"], ids=["f0"])
    assert b.ids() == ["f0"] and "f0" in b


def test_evo_memories_are_committed_and_restored_exactly(tmp_path, minilm_model):
    store = EvoStore(minilm_model, path=tmp_path / "s")
    store.add(["I grew up in Porto.", "Last month I moved to Oslo."], stream_id="ana")
    other = EvoStore.open(tmp_path / "s", minilm_model)
    store.add(["I started a new job there."], stream_id="ana")
    assert_same_snapshot(snapshot(other), snapshot(store))  # memory caught up bit-exactly
    query = "Where do I work?"
    assert [(h.id, h.score) for h in other.search(query, k=3)] == [(h.id, h.score) for h in store.search(query, k=3)]
    other.add(["My sister lives in Lisbon."], stream_id="ana")  # reads on from the memory store wrote
    assert len(store.stream("ana")) == 4 and [r.position for r in store.get(store.ids("ana"))] == [0, 1, 2, 3]


def test_a_saved_directory_is_migrated_and_save_load_still_export(tmp_path):
    old = EvoStore(embeddings=EMBEDDER)
    fill(old)
    old.save(tmp_path / "legacy")  # the snapshot format written by earlier versions
    migrated = EvoStore.open(tmp_path / "legacy", embeddings=EMBEDDER)
    assert migrated.durable and (tmp_path / "legacy" / DATABASE).is_file()
    assert_same_snapshot(snapshot(migrated), snapshot(old))
    migrated.add(["new after migration"], stream_id="ana", ids=["m0"])
    again = EvoStore.open(tmp_path / "legacy", embeddings=EMBEDDER)  # the database wins from now on
    assert "m0" in again and len(again) == 4
    exported = migrated.save(tmp_path / "export")  # a verified snapshot, as before
    assert (exported / "manifest.json").is_file() and not (exported / DATABASE).exists()
    assert_same_snapshot(snapshot(EvoStore.load(exported, embeddings=EMBEDDER)), snapshot(migrated))
    copy = EvoStore.load(tmp_path / "legacy", embeddings=EMBEDDER)  # a durable store read into memory
    assert not copy.durable and "m0" in copy
    copy.add(["only in memory"], ids=["x0"])
    assert "x0" not in EvoStore.open(tmp_path / "legacy", embeddings=EMBEDDER)
    copy.save(tmp_path / "legacy")  # saving onto a database replaces its content, in one transaction
    assert "x0" in again and len(again) == 5
    assert migrated.save(tmp_path / "legacy") == tmp_path / "legacy"  # its own path: already committed


def test_agent_memory_path_is_durable_per_call(tmp_path, minilm_model):
    legacy = EvoAgentMemory(tmp_path / "mem", model=minilm_model, autosave=False)
    first = legacy.add("I keep bees.", user_id="ana")
    legacy.save()  # the old snapshot format in a fresh directory
    memory = EvoAgentMemory(tmp_path / "mem", model=minilm_model)  # migrated, durable
    assert memory.store.durable and memory.get(first[0])["memory"] == "I keep bees."
    ids = memory.add(["I moved to Oslo.", "I play the cello."], user_id="ana")
    other = EvoAgentMemory(tmp_path / "mem", model=minilm_model)
    assert [m["id"] for m in other.get_all(user_id="ana")] == first + ids
    other.delete(ids[0])
    assert memory.get(ids[0]) is None and len(memory) == 2


@pytest.mark.parametrize("failure", ["full", "read-only"])
def test_a_refused_write_changes_nothing_and_the_store_recovers(tmp_path, failure):
    store = durable(tmp_path / "s")
    fill(store)
    hits = store.search("ana likes tea", k=3, hybrid=True)
    before, on_disk = snapshot(store), snapshot(EvoStore.open(tmp_path / "s", embeddings=EMBEDDER))
    conn = store._backend.conn
    if failure == "full":  # SQLite's own "database or disk is full" (SQLITE_FULL), as on a full disk
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        conn.execute(f"PRAGMA max_page_count = {pages}")
        big = ["x" * 200_000 + f" {i}" for i in range(3)]
    else:
        conn.execute("PRAGMA query_only = ON")  # SQLite refuses every write ("attempt to write a readonly database")
        big = ["a new text"]
    calls = [
        lambda: store.add(big, stream_id="ana", metadatas=[{"big": True}] * len(big)),
        lambda: store.add([big[0] + " replaced"], stream_id="carol", ids=["a1"]),
    ]
    if failure == "read-only":
        calls += [lambda: store.delete(["a0"]), lambda: store.delete_stream("bob"), store.clear]
    for call in calls:
        with pytest.raises(OSError, match="refused the write, nothing was changed"):
            call()
        assert_same_snapshot(snapshot(store), before)
        assert store.search("ana likes tea", k=3, hybrid=True) == hits
    assert_same_snapshot(snapshot(EvoStore.open(tmp_path / "s", embeddings=EMBEDDER)), on_disk)
    names = sorted(p.name for p in (tmp_path / "s").iterdir())
    assert names == [DATABASE, f"{DATABASE}-shm", f"{DATABASE}-wal"]  # no orphan files
    conn.execute("PRAGMA max_page_count = 1073741823" if failure == "full" else "PRAGMA query_only = OFF")
    ids = store.add(big, stream_id="ana")  # space freed: the same call now succeeds, once
    assert store.delete(["a0"]) == 1 and len(store) == 2 + len(big)
    assert_same_snapshot(snapshot(EvoStore.open(tmp_path / "s", embeddings=EMBEDDER)), snapshot(store))
    assert all(i in store for i in ids)


def test_a_hostile_or_foreign_database_is_refused(tmp_path):
    from evoembedding_integrations.store import CorruptStoreError

    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / DATABASE).write_bytes(b"not a database at all" * 100)
    with pytest.raises(CorruptStoreError, match="not a usable"):
        durable(tmp_path / "junk")
    store = durable(tmp_path / "trigger")
    fill(store)
    store.close()
    conn = sqlite3.connect(tmp_path / "trigger" / DATABASE)
    conn.execute("CREATE TRIGGER evil AFTER INSERT ON records BEGIN DELETE FROM records; END")
    conn.commit()
    conn.close()
    with pytest.raises(CorruptStoreError, match="unexpected schema"):
        durable(tmp_path / "trigger")
    (tmp_path / "link").mkdir()
    (tmp_path / "link" / DATABASE).symlink_to(tmp_path / "trigger" / DATABASE)
    with pytest.raises(CorruptStoreError, match="symlinks are refused"):
        durable(tmp_path / "link")
    closed = durable(tmp_path / "closed")
    closed.close()
    with pytest.raises(StorageError, match="closed"):
        closed.add(["x"])


def test_each_stream_has_its_own_lexical_statistics():
    """One tenant's writes never change another tenant's BM25 (nor fused) scores."""
    from evoembedding_core.lexical import LexicalIndex

    memory = EvoAgentMemory(store=EvoStore(embeddings=EMBEDDER, hybrid=True, lexical_scope="stream"))
    ana = ["the cello lesson is on monday", "tea with milk", "my cat sleeps", "rain again today"]
    memory.add(ana, user_id="ana")
    query = "cello lesson monday"
    before = [(h["id"], h["score"]) for h in memory.search(query, user_id="ana", k=4)]
    lexical = dict(memory.store._state.lexical["ana"].ranked(query))
    bob = [f"cello lesson number {i} with monday practice" for i in range(50)]
    memory.add(bob, user_id="bob")  # another tenant writes the query's words many times
    assert [(h["id"], h["score"]) for h in memory.search(query, user_id="ana", k=4)] == before
    assert dict(memory.store._state.lexical["ana"].ranked(query)) == lexical
    assert before[0][0] == memory.get_all(user_id="ana")[0]["id"]
    # with the word statistics of the whole store (the old behaviour) ana's score would have moved
    shared = LexicalIndex()
    shared.add(list(range(len(ana))), ana)
    alone = shared.scores(query)[0]
    shared.add(list(range(len(ana), len(ana) + len(bob))), bob)
    assert shared.scores(query)[0] != pytest.approx(alone)
    both = memory.search(query, user_id=None, k=60)
    assert len(both) == 54 and {h["user_id"] for h in both} == {"ana", "bob"}
    assert EvoAgentMemory().store.lexical_scope == "stream"  # the agent memory's own stores too
    with pytest.raises(ValueError, match="lexical_scope"):
        EvoStore(embeddings=EMBEDDER, lexical_scope="user")


def test_hybrid_scores_within_a_stream_are_bm25_of_that_stream():
    from rank_bm25 import BM25Okapi

    from evoembedding_core.lexical import lexical_tokens

    store = EvoStore(embeddings=EMBEDDER, lexical_scope="stream")
    texts = ["red apples and pears", "green apples", "a red car"]
    store.add(texts, stream_id="ana", ids=["0", "1", "2"])
    store.add(["apples apples apples"] * 5, stream_id="bob")
    expected = BM25Okapi([lexical_tokens(t) for t in texts]).get_scores(lexical_tokens("red apples"))
    got = dict(store._state.lexical["ana"].ranked("red apples")) if "ana" in store._state.lexical else None
    store._state.lexical_search("red apples", ["ana"], None, 10)
    got = {store._state.ids_by_label[k]: v for k, v in store._state.lexical["ana"].ranked("red apples")}
    assert got == pytest.approx({str(i): s for i, s in enumerate(expected) if s > 0})
    assert np.all(np.isfinite(list(got.values())))


def test_evo_writers_racing_on_one_stream_read_it_in_commit_order(tmp_path, minilm_model):
    """Two store objects (two connections) adding to one stream at once: a write planned from a
    memory another writer has moved on from is read again, so the stream equals one reading of all
    texts in commit (position) order."""
    import threading

    stores = [EvoStore(minilm_model, path=tmp_path / "s") for _ in range(2)]
    errors = []

    def writer(n):
        try:
            for i in range(5):
                stores[n].add([f"Writer {n} says thing number {i}."], stream_id="shared")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    final = EvoStore.open(tmp_path / "s", minilm_model)
    records = final.get(final.ids("shared"))
    assert [r.position for r in records] == list(range(10)) and len(final.stream("shared")) == 10
    reference = minilm_model.stream()
    expected = np.concatenate([reference.add([r.text]) for r in records])
    np.testing.assert_allclose(final.vectors([r.id for r in records]), expected, atol=1e-5)
    assert_same_snapshot(snapshot(stores[0]), snapshot(final))


@pytest.mark.parametrize("where", ["schema page", "data pages"])
def test_a_damaged_database_raises_the_store_error(tmp_path, where):
    from evoembedding_integrations.store import CorruptStoreError

    store = durable(tmp_path / "s")
    store.add([f"text number {i} " * 20 for i in range(300)], metadatas=[{"i": i} for i in range(300)])
    store.checkpoint()  # everything in the database file itself
    store.close()
    path = tmp_path / "s" / DATABASE
    data = bytearray(path.read_bytes())
    start = 100 if where == "schema page" else len(data) // 3
    data[start : start + 8192] = b"\xff" * 8192
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptStoreError):
        EvoStore.open(tmp_path / "s", embeddings=EMBEDDER)


def test_opening_while_another_process_adds_the_first_vectors(tmp_path, monkeypatch):
    """The header an opener reads first may predate the first vectors; the streams it reads next
    do not: the store takes the dimension from them instead of failing."""
    from evoembedding_integrations.store import sqlite_backend

    writer = durable(tmp_path)  # an empty plain store: its header has no dimension yet
    real_open = sqlite_backend.SQLiteBackend.open

    def open_after_a_concurrent_add(self):
        if not writer.ids():
            writer.add(["the first text"], stream_id="s")  # commits between the header read and open()
        return real_open(self)

    monkeypatch.setattr(sqlite_backend.SQLiteBackend, "open", open_after_a_concurrent_add)
    reader = durable(tmp_path)
    assert reader.dim == 16 and [h.text for h in reader.search("first", k=1)] == ["the first text"]
