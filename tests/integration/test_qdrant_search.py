"""Database-side search for the Qdrant backend (``open_qdrant_store(..., search="database")``).

Qdrant runs for real in its local mode. Each test writes one collection and compares a store that
searches in the database with one that loads the same collection into memory (the embedded
store's search), or with an embedded store given the same calls.
"""

from __future__ import annotations

import numpy as np
import pytest
from fuzz_strategies import HashingEmbeddings

qdrant_client = pytest.importorskip("qdrant_client")

from evoembedding_integrations.store import EvoStore  # noqa: E402
from evoembedding_integrations.store.qdrant_backend import (  # noqa: E402
    StaleStreamError,
    _point_id,
    open_qdrant_store,
)
from evoembedding_integrations.store.qdrant_search import AllStreams, DatabaseState  # noqa: E402

PLAIN = dict(embeddings=HashingEmbeddings())
WORDS = ["garden", "piano", "knee", "Oslo", "Porto", "nurse", "book", "club", "train", "coffee"]


def chat(sid: str, n: int) -> list[str]:
    return [
        f"{sid} talks about the {WORDS[(i * 7 + len(sid)) % 10]} and the {WORDS[i % 10]}, turn {i}" for i in range(n)
    ]


def fill(store: EvoStore, streams: int = 4, turns: int = 8) -> None:
    for s in range(streams):
        sid = f"s{s}"
        metadatas = [
            {"n": i, "stream": s, "tags": ["x", i % 3], **({"rare": True} if i == 5 else {})} for i in range(turns)
        ]
        store.add(chat(sid, turns), stream_id=sid, ids=[f"{sid}-{i}" for i in range(turns)], metadatas=metadatas)


def pair(client, collection: str = "c", **options) -> tuple[EvoStore, EvoStore]:
    """A store searching in the database and one searching in memory, on the same collection."""
    return (
        open_qdrant_store(client, collection, search="database", **options),
        open_qdrant_store(client, collection, search="memory", **options),
    )


def assert_hits(got, expected) -> None:
    assert [(h.id, h.stream_id, h.position, h.text, h.metadata) for h in got] == [
        (h.id, h.stream_id, h.position, h.text, h.metadata) for h in expected
    ]
    np.testing.assert_allclose([h.score for h in got], [h.score for h in expected], atol=1e-5)


def count_queries(monkeypatch, store: EvoStore) -> list:
    """Record every batch of queries the store's backend sends to Qdrant."""
    calls, backend = [], store._backend
    query = backend.query
    monkeypatch.setattr(backend, "query", lambda requests: calls.append(len(requests)) or query(requests))
    return calls


@pytest.fixture
def client():
    client = qdrant_client.QdrantClient(location=":memory:")
    yield client
    client.close()


FILTERS = [
    None,
    {"n": {"$gte": 3}},
    {"tags": {"$contains": 2}},  # a list value: Qdrant's own match would differ
    lambda metadata: metadata["n"] % 2 == 0,
    {"rare": True},  # one entry per stream: needs more than one fetch
]


def test_open_loads_no_entry(client, monkeypatch):
    writer = open_qdrant_store(client, "c", **PLAIN)
    fill(writer)
    calls = []
    for name in ("scroll", "retrieve", "query_points", "query_batch_points", "count"):
        method = getattr(client, name)
        monkeypatch.setattr(client, name, lambda *a, _m=method, _n=name, **kw: calls.append((_n, a[0])) or _m(*a, **kw))
    store = open_qdrant_store(client, "c", search="database", **PLAIN)
    assert calls and all(collection == "c__streams" for _, collection in calls)  # only the stream table
    state = store._state
    assert isinstance(state, DatabaseState) and not isinstance(state.entries, dict)
    assert [(sid, s.length, s.index) for sid, s in state.streams.items()] == [(f"s{i}", 8, None) for i in range(4)]
    assert len(store) == 32 and store.ids("s1") == [f"s1-{i}" for i in range(8)]  # read from the database


@pytest.mark.parametrize("stream_ids", [None, ["s3", "s1"]])
def test_dense_search_equals_memory_search(client, monkeypatch, stream_ids):
    fill(open_qdrant_store(client, "c", **PLAIN))
    database, memory = pair(client, **PLAIN)
    query = memory.vectors(["s2-3"])[0] + 0.5 * memory.vectors(["s1-6"])[0]
    calls = count_queries(monkeypatch, database)
    for flt in FILTERS:
        for k in (1, 3, 10):
            calls.clear()
            got = database.search_by_vector(query, k=k, stream_ids=stream_ids, filter=flt)
            assert_hits(got, memory.search_by_vector(query, k=k, stream_ids=stream_ids, filter=flt))
            assert calls[0] == 1  # the same query vector for every stream: one query
            if flt == {"rare": True} and k == 3:
                assert len(calls) > 1  # a selective filter: the limit doubled until k passed
        kw = dict(stream_ids=stream_ids, filter=flt, hybrid=False)
        assert_hits(database.search("the piano", k=5, **kw), memory.search("the piano", k=5, **kw))
        kw = dict(stream_ids=stream_ids, filter=flt, k=3, fetch_k=8)
        assert_hits(database.mmr_search("the piano", **kw), memory.mmr_search("the piano", **kw))


def test_one_query_per_stream_equals_memory_search(client, monkeypatch):
    """Different query vectors per stream (as ``query_memory=True`` reads them): one batch request
    of one query per stream, merged by score (the state's search, compared directly)."""
    fill(open_qdrant_store(client, "c", **PLAIN))
    database, memory = pair(client, **PLAIN)
    sids = ["s0", "s1", "s2", "s3"]
    queries = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
    queries[1] = memory.vectors([f"s1-{i}" for i in range(8)]).sum(axis=0)  # s1 scores highest
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    calls = count_queries(monkeypatch, database)
    predicates = [None, lambda m: m["n"] > 2, lambda m: m.get("rare", False)]
    predicates.append(lambda m: m["stream"] != 1 or m["n"] == 7)  # s1's best candidates are all filtered out
    for predicate in predicates:
        for k in (1, 3, 4, 40):
            calls.clear()
            got = database._state.search(queries, sids, k, predicate)
            assert_hits(got, memory._state.search(queries, sids, k, predicate))
            assert calls[0] == 4
    # s1 scores highest, its best candidates are filtered out, the one that passes is its third:
    # past the first fetch (k + 1 = 2), above every other stream (their queries point away)
    streams = [memory.vectors([f"{sid}-{i}" for i in range(8)]) for sid in sids]
    queries = np.stack([v.sum(axis=0) * (1 if n == 1 else -1) for n, v in enumerate(streams)])
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    third = f"s1-{int(np.argsort(-(streams[1] @ queries[1]))[2])}"

    def only_third(metadata) -> bool:
        return metadata["stream"] != 1 or f"s1-{metadata['n']}" == third

    expected = memory._state.search(queries, sids, 1, only_third)
    assert [h.id for h in expected] == [third]
    assert_hits(database._state.search(queries, sids, 1, only_third), expected)
    # "every stream" sends no stream filter; points of streams created since are dropped here
    for rare in (None, predicates[2]):
        got = database._state.search(queries[:1], AllStreams(["s2"]), 4, rare)
        assert got and {h.stream_id for h in got} == {"s2"}
        assert_hits(got, memory._state.search(queries[:1], ["s2"], 4, rare))


def test_ties_follow_stream_order_then_position(client):
    store, reference = open_qdrant_store(client, "c", search="database", **PLAIN), EvoStore(**PLAIN)
    for s in (store, reference):
        s.add([f"filler {i}" for i in range(4)], stream_id=[f"t{i}" for i in range(4)])
        for i in (3, 1, 2, 0):  # written in another order than the streams were created
            s.add(["the same text", "the same text"], stream_id=f"t{i}", ids=[f"t{i}-a", f"t{i}-b"])
    vector = reference.vectors(["t0-a"])[0]
    for k in (1, 2, 3, 5):
        assert_hits(store.search_by_vector(vector, k=k), reference.search_by_vector(vector, k=k))
    assert [h.id for h in store.search_by_vector(vector, k=3)] == ["t0-a", "t0-b", "t1-a"]


def test_query_memory_with_the_model(client):
    """EvoEmbedding mode, queries read over each stream's memory: the same hits as in memory."""
    writer = open_qdrant_store(client, "evo")
    for sid, texts in {"ana": ["Ana grew up in Porto.", "Ana moved to Oslo last year."], "bo": chat("bo", 3)}.items():
        writer.add(texts, stream_id=sid, metadatas=[{"n": i} for i in range(len(texts))])
    for query_memory in (True, False):
        database, memory = pair(client, "evo", query_memory=query_memory, hybrid=False)
        for flt in (None, {"n": 1}):
            got = database.search("Where does Ana live now?", k=4, filter=flt)
            assert_hits(got, memory.search("Where does Ana live now?", k=4, filter=flt))
        assert database.stream("ana").state_dict()["meta"] == memory.stream("ana").state_dict()["meta"]


def test_hybrid_stream_scope_equals_memory_ranking(client):
    options = dict(**PLAIN, lexical_scope="stream")
    fill(open_qdrant_store(client, "c", **options))
    database, memory = pair(client, **options)
    for stream_ids in (None, "s2", ["s1", "s0"]):
        for flt in (None, {"n": {"$lt": 6}}):
            for query in ("the piano and the garden", "Oslo coffee turn 3"):
                kw = dict(k=6, stream_ids=stream_ids, filter=flt)
                assert_hits(database.search(query, **kw), memory.search(query, **kw))


def test_hybrid_store_scope_uses_the_sparse_index(client):
    store = open_qdrant_store(client, "c", search="database", **PLAIN)
    fill(store)
    store.add(["A zeppelin flew over the harbour."], stream_id="s9", ids=["zep"])
    lexical = store._state.lexical_search("zeppelin over the town", store.streams(), None, 100)
    assert lexical[0] == "zep"  # the rare word outweighs the common "the" (IDF by Qdrant)
    assert "s0-0" in lexical  # texts sharing only "the" still rank, lower
    hits = store.search("zeppelin over the town", k=5)
    assert hits[0].id == "zep"
    assert all(0 < h.score <= 2 / 61 + 1e-9 for h in hits)  # reciprocal rank fusion scores
    assert [h.metadata["n"] for h in store.search("zeppelin", k=3, filter={"n": 1})] == [1, 1, 1]
    assert store.search("zeppelin", k=3, stream_ids="s0")[0].stream_id == "s0"


def test_a_collection_without_sparse_vectors_falls_back_to_bm25(client):
    """A collection created before entries carried sparse vectors: store-scope BM25 is the
    library's over the searched streams' texts (the embedded ranking when all are searched)."""
    models = qdrant_client.models
    client.create_collection("old", vectors_config=models.VectorParams(size=16, distance=models.Distance.DOT))
    writer = open_qdrant_store(client, "old", **PLAIN)
    assert writer._backend.sparse is None
    fill(writer)
    database, memory = pair(client, "old", **PLAIN)
    with pytest.warns(UserWarning, match="no sparse BM25 vectors"):
        got = database.search("the piano and the garden", k=6)
    assert_hits(got, memory.search("the piano and the garden", k=6))
    flt = {"n": {"$gte": 2}}
    assert_hits(database.search("Oslo turn 4", k=4, filter=flt), memory.search("Oslo turn 4", k=4, filter=flt))


@pytest.mark.parametrize("where", ["memory", "folder"])
def test_delete_replace_clear_then_reopen(tmp_path, where):
    client = qdrant_client.QdrantClient(location=":memory:") if where == "memory" else None

    def reopen(previous: EvoStore | None = None) -> EvoStore:
        if previous is not None and client is None:
            previous._backend.close()  # local mode: one client per folder
        return open_qdrant_store(client or tmp_path / "qdrant", "c", search="database", **PLAIN)

    store, reference = reopen(), EvoStore(**PLAIN)
    for s in (store, reference):
        fill(s, streams=3, turns=4)
        assert s.delete(["s0-1", "nope", "s0-1"]) == 1
        assert s.delete_stream("s1") is True and s.delete_stream("s1") is False
        s.add(["s0 moved the piano."], stream_id="s2", ids=["s0-2"])  # replacing an id moves it
        s.add(["New stream."], stream_id="s3", ids=["s3-0"])
    for _ in range(2):  # as written, then reopened
        assert store.streams() == reference.streams() == ["s0", "s2", "s3"]
        assert store.ids() == reference.ids() and len(store) == len(reference) == 8
        assert store.get(store.ids()) == reference.get(reference.ids())
        np.testing.assert_array_equal(store.vectors(store.ids()), reference.vectors(reference.ids()))
        assert "s0-2" in store and "s1-0" not in store and store.get(["s0-2"])[0].stream_id == "s2"
        assert store._streams["s2"].length == 5
        kw = dict(k=8, hybrid=False)
        assert_hits(store.search("the piano", **kw), reference.search("the piano", **kw))
        store = reopen(store)
    store.clear()
    assert len(store) == 0 and store.streams() == [] and store.search("piano") == []
    store = reopen(store)
    assert len(store) == 0 and store.ids() == [] and store.streams() == []
    store.add(["Back again."], stream_id="s0", ids=["b"])
    assert store.ids() == ["b"] and store.get(["b"])[0].position == 0
    store._backend.close()


def test_an_entry_of_a_change_cut_short_is_not_seen(client):
    store = open_qdrant_store(client, "c", search="database", **PLAIN)
    store.add(["one", "two"], stream_id="s", ids=["a", "b"])
    orphan = qdrant_client.models.PointStruct(
        id=_point_id("entry", "s", 2), vector=[0.25] * 16, payload={"id": "c", "stream_id": "s", "position": 2}
    )
    client.upsert("c", [orphan])  # written by an add whose stream point never followed
    vector = np.full(16, 0.25)
    assert store.ids() == ["a", "b"] and len(store) == 2 and "c" not in store and store.get(["c"]) == []
    assert "c" not in [h.id for h in store.search_by_vector(vector, k=3)]
    store.add(["three"], stream_id="s", ids=["c"])  # overwrites the orphan at position 2
    assert [(r.id, r.position, r.text) for r in store.get(store.ids())] == [
        ("a", 0, "one"),
        ("b", 1, "two"),
        ("c", 2, "three"),
    ]


def test_two_processes(client):
    """A second store reads what the first commits, in streams it knows and in new ones, on its
    next call; continuing a stream the other extended is refused until it reopens."""
    first = open_qdrant_store(client, "c", search="database", **PLAIN)
    fill(first, streams=2, turns=3)
    second = open_qdrant_store(client, "c", search="database", **PLAIN)
    first.add(["s1 learnt the zeppelin."], stream_id="s1", ids=["s1-new"])
    first.add(["A brand new zeppelin stream."], stream_id="s7", ids=["s7-0"])
    assert {h.id for h in second.search("zeppelin", k=2)} == {"s1-new", "s7-0"}
    assert second.ids("s1")[-1] == "s1-new" and "s7-0" in second and len(second) == 8
    assert [h.id for h in second.search("zeppelin", k=1, stream_ids="s7")] == ["s7-0"]
    assert second.streams() == ["s0", "s1"]  # its stream table: read at open, then its own writes
    second.add(["s0 is still here."], stream_id="s0", ids=["s0-new"])  # a stream only it extends
    assert "s0-new" in first
    for sid in ("s1", "s7"):
        with pytest.raises(StaleStreamError):
            second.add(["stale"], stream_id=sid)
    reopened = open_qdrant_store(client, "c", search="database", **PLAIN)
    reopened.add(["s1 continues."], stream_id="s1", ids=["s1-4"])
    assert reopened.get(["s1-4"])[0].position == 4


def test_a_collection_opens_in_either_mode(client):
    fill(open_qdrant_store(client, "c", search="database", **PLAIN), streams=2, turns=3)
    memory = open_qdrant_store(client, "c", **PLAIN)
    assert memory.ids() == [f"s{s}-{i}" for s in range(2) for i in range(3)]
    memory.add(["More."], stream_id="s0", ids=["more"])
    assert open_qdrant_store(client, "c", search="database", **PLAIN).ids("s0")[-1] == "more"


def test_a_bad_search_mode_is_refused(client):
    with pytest.raises(ValueError, match="'disk'"):
        open_qdrant_store(client, "c", search="disk", **PLAIN)
