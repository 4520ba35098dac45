"""The same store tests on both durable backends: the embedded SQLite database and Qdrant, the
latter in both search modes (``"qdrant"``: entries loaded and searched in memory;
``"qdrant-database"``: entries stay in the database, which every read and search asks).

Qdrant runs for real in its local mode (in-process, the same client API as a server); each
"reopen" builds a new store from what the database holds. Every test compares with an in-memory
store given the same calls, so every backend must behave exactly as the embedded store does, except
where a mode documents a difference: database-side search computes scores in Qdrant (equal within
float rounding), ranks store-scope BM25 with Qdrant's IDF, and reads other processes' entries.
"""

from __future__ import annotations

import numpy as np
import pytest
from fuzz_strategies import HashingEmbeddings

qdrant_client = pytest.importorskip("qdrant_client")

from evoembedding_integrations.store import EvoStore  # noqa: E402
from evoembedding_integrations.store.qdrant_backend import (  # noqa: E402
    QdrantBackend,
    StaleStreamError,
    _point_id,
    open_qdrant_store,
)

TEXTS = {
    "ana": ["Ana grew up in Porto.", "Ana moved to Oslo last year.", "Ana plays the piano."],
    "bo": ["Bo works as a nurse.", "Bo has a sore knee.", "Bo runs the book club."],
}


class Backends:
    """Opens (and reopens) a store on one backend."""

    def __init__(self, kind: str, tmp_path) -> None:
        self.kind, self.tmp_path, self.opened = kind, tmp_path, []
        self.client = qdrant_client.QdrantClient(location=":memory:") if kind.startswith("qdrant") else None

    def open(self, **options) -> EvoStore:
        if self.kind == "sqlite":
            store = EvoStore(path=self.tmp_path / "db", **options)
        else:
            search = "database" if self.kind == "qdrant-database" else "memory"
            store = open_qdrant_store(self.client, "evo_test", search=search, **options)
        self.opened.append(store)
        return store

    def close(self) -> None:
        for store in self.opened:
            store.close()
        if self.client is not None:
            self.client.close()


@pytest.fixture(params=["sqlite", "qdrant", "qdrant-database"])
def backend(request, tmp_path):
    backends = Backends(request.param, tmp_path)
    yield backends
    backends.close()


def fill(store: EvoStore) -> None:
    for sid, texts in TEXTS.items():
        metadatas = [{"topic": sid, "n": n, "tags": ["x", n]} for n in range(len(texts))]
        store.add(texts, stream_id=sid, ids=[f"{sid}-{n}" for n in range(len(texts))], metadatas=metadatas)


def contents(store: EvoStore) -> tuple:
    ids = store.ids()
    records = [(r.id, r.stream_id, r.position, r.text, r.metadata) for r in store.get(ids)]
    return store.streams(), records, store.vectors(ids) if ids else np.zeros((0, 0))


def assert_same(a: EvoStore, b: EvoStore) -> None:
    (sa, ra, va), (sb, rb, vb) = contents(a), contents(b)
    assert (sa, ra) == (sb, rb)
    np.testing.assert_array_equal(va, vb)


def assert_hits(got, expected) -> None:
    """The same ids in the same order, scores within float rounding (Qdrant computes them itself
    with database-side search)."""
    assert [h.id for h in got] == [h.id for h in expected]
    np.testing.assert_allclose([h.score for h in got], [h.score for h in expected], atol=1e-5)


def test_add_search_filters_and_isolation(backend):
    plain = dict(embeddings=HashingEmbeddings())
    store, reference = backend.open(**plain), EvoStore(**plain)
    fill(store)
    fill(reference)
    for s in (store, backend.open(**plain)):  # as written, and as read back from the database
        assert_same(s, reference)
        query = reference.vectors(["ana-1"])[0]
        assert s.search_by_vector(query, k=2)[0].id == "ana-1"
        assert_hits(s.search_by_vector(query, k=4), reference.search_by_vector(query, k=4))
        assert [h.stream_id for h in s.search_by_vector(query, k=6, stream_ids="bo")] == ["bo"] * 3
        for flt in ({"topic": "bo"}, {"n": {"$gte": 1}}, {"$and": [{"topic": "ana"}, {"n": {"$lt": 2}}]}):
            assert_hits(s.search_by_vector(query, k=6, filter=flt), reference.search_by_vector(query, k=6, filter=flt))
        assert_hits(s.search("Oslo piano", k=3, hybrid=True), reference.search("Oslo piano", k=3, hybrid=True))


def test_delete_delete_stream_replace_and_reopen(backend):
    plain = dict(embeddings=HashingEmbeddings())
    store, reference = backend.open(**plain), EvoStore(**plain)
    for s in (store, reference):
        fill(s)
        assert s.delete(["ana-0", "nope"]) == 1
        assert s.delete_stream("bo") is True
        s.add(["Ana now lives in Bergen."], stream_id="ana", ids=["ana-2"])  # replaces an id
        s.add(["Cy is new here."], stream_id="cy", ids=["cy-0"])
    assert_same(store, reference)
    reopened = backend.open(**plain)
    assert_same(reopened, reference)
    assert "bo" not in reopened.streams() and len(reopened) == 3
    reopened.add(["Bo is back."], stream_id="bo", ids=["bo-new"])
    reference.add(["Bo is back."], stream_id="bo", ids=["bo-new"])
    assert_same(backend.open(**plain), reference)
    store.clear()
    assert len(backend.open(**plain)) == 0


def test_reopen_continues_a_stream_exactly(backend):
    """EvoEmbedding mode: a stream continued after reopening reads exactly as if never closed."""
    first = backend.open()
    first.add(TEXTS["ana"][:2], stream_id="ana", ids=["a0", "a1"])
    continued = backend.open()
    assert len(continued.stream("ana")) == 2
    continued.add(TEXTS["ana"][2:], stream_id="ana", ids=["a2"])
    reference = EvoStore(model=first.model)
    reference.add(TEXTS["ana"][:2], stream_id="ana", ids=["a0", "a1"])
    reference.add(TEXTS["ana"][2:], stream_id="ana", ids=["a2"])
    np.testing.assert_array_equal(continued.vectors(["a0", "a1", "a2"]), reference.vectors(["a0", "a1", "a2"]))
    mine, theirs = continued.stream("ana").state_dict(), reference.stream("ana").state_dict()
    for name in ("memory", "chunk_memory"):
        assert bool((mine[name] == theirs[name]).all())
    assert mine["meta"] == theirs["meta"]
    again = backend.open()
    np.testing.assert_array_equal(again.vectors(["a2"]), reference.vectors(["a2"]))
    q = "Where does Ana live?"
    assert_hits(again.search(q, k=3), reference.search(q, k=3))


def test_a_second_writer_of_one_stream(backend):
    """SQLite serialises it (the second add re-reads the stream and appends after the first);
    Qdrant refuses the out-of-date continuation and writes nothing. With database-side search the
    second store reads the first one's entries at once (its stream table stays as it read it)."""
    plain = dict(embeddings=HashingEmbeddings())
    one, two = backend.open(**plain), backend.open(**plain)
    one.add(["first"], stream_id="s", ids=["1"])
    if backend.kind == "sqlite":
        two.add(["second"], stream_id="s", ids=["2"])
        assert [(r.id, r.position) for r in backend.open(**plain).get(["1", "2"])] == [("1", 0), ("2", 1)]
    else:
        if backend.kind == "qdrant-database":
            assert "1" in two and two.ids() == ["1"] and [h.id for h in two.search("first", k=1)] == ["1"]
        with pytest.raises(StaleStreamError):
            two.add(["second"], stream_id="s", ids=["2"])
        assert "2" not in two and backend.open(**plain).ids() == ["1"]


def test_qdrant_ignores_a_change_cut_short_and_reopens_from_a_folder(tmp_path):
    folder = tmp_path / "qdrant"
    plain = dict(embeddings=HashingEmbeddings())
    store = open_qdrant_store(folder, "chats", **plain)
    store.add(["one", "two"], stream_id="s", ids=["a", "b"])
    backend: QdrantBackend = store._backend
    # An entry written by an add whose stream point never followed (the writer died in between).
    models = qdrant_client.models
    orphan = models.PointStruct(
        id=_point_id("entry", "s", 2), vector=[0.25] * 16, payload={"id": "c", "stream_id": "s", "position": 2}
    )
    backend.client.upsert("chats", [orphan])
    backend.close()
    reopened = open_qdrant_store(folder, "chats", **plain)
    assert reopened.ids() == ["a", "b"]
    reopened.add(["three"], stream_id="s", ids=["c"])  # overwrites the orphan at position 2
    reopened._backend.close()
    last = open_qdrant_store(folder, "chats", **plain)
    assert [(r.id, r.position, r.text) for r in last.get(last.ids())] == [
        ("a", 0, "one"),
        ("b", 1, "two"),
        ("c", 2, "three"),
    ]
    last._backend.close()


def test_an_ingest_resumes_streams_through_either_backend(backend):
    """A second process (a new store on the same database) continues every stream cut short."""
    from evoembedding_integrations.distributed import ingest_serial

    plain = dict(embeddings=HashingEmbeddings())
    chats = {f"s{i}": [f"turn {j} of chat {i}" for j in range(4)] for i in range(5)}
    first = ingest_serial({sid: texts[:2] for sid, texts in chats.items()}, backend.open(**plain), progress=False)
    resumed = ingest_serial(chats, backend.open(**plain), progress=False)
    assert (first.new, resumed.resumed, resumed.texts) == (5, 5, 10)
    reference = EvoStore(**plain)
    ingest_serial(chats, reference, progress=False)
    assert_same(backend.open(**plain), reference)
