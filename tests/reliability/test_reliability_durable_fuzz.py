"""Fuzz a durable store: random sequences of calls (good and bad) on an SQLite store, an in-memory
twin and a second store object on the same path that only reads.

After every call: the durable store equals its in-memory twin (a rejected call changed neither);
the reader, which catches up before it answers, equals it too; and at the end a fresh open of the
database equals it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from fuzz_strategies import HashingEmbeddings, assert_consistent, assert_same_snapshot, good_text, snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evoembedding_integrations.store import EvoStore

EMBEDDER = HashingEmbeddings()
DEEP: dict = {}
for _ in range(40):
    DEEP = {"k": DEEP}
IDS = st.sampled_from(["a", "b", "c", "d", "e", "f"])
STREAMS = st.sampled_from(["s1", "s2", "s3"])
METADATA = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(["n", "tag"]), st.one_of(st.integers(-3, 3), st.text(max_size=4)), max_size=2),
    st.just({"bad": float("nan")}),
    st.just(DEEP),  # over MAX_METADATA_DEPTH: refused
)
CALLS = st.one_of(
    st.tuples(
        st.just("add"),
        st.lists(st.one_of(good_text, st.just(" ")), min_size=1, max_size=3),
        STREAMS,
        st.one_of(st.none(), st.lists(IDS, min_size=1, max_size=3)),
        METADATA,
    ),
    st.tuples(st.just("delete"), st.lists(IDS, max_size=3)),
    st.tuples(st.just("delete_stream"), STREAMS),
    st.tuples(st.just("clear")),
)


def call(store: EvoStore, op: tuple) -> object:
    try:
        if op[0] == "add":
            _, texts, stream, ids, metadata = op
            ids = None if ids is None else ids[: len(texts)] + [f"pad{n}" for n in range(len(texts) - len(ids))]
            return store.add(texts, stream_id=stream, ids=ids, metadatas=[metadata] * len(texts))
        if op[0] == "delete":
            return store.delete(op[1])
        if op[0] == "delete_stream":
            return store.delete_stream(op[1])
        return store.clear()
    except (TypeError, ValueError) as exc:
        return type(exc)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.lists(CALLS, min_size=1, max_size=12))
def test_a_durable_store_equals_its_in_memory_twin(ops):
    with tempfile.TemporaryDirectory() as root:
        path = Path(root) / "s"
        durable, twin = EvoStore(embeddings=EMBEDDER, path=path), EvoStore(embeddings=EMBEDDER)
        reader = EvoStore.open(path, embeddings=EMBEDDER)
        for op in ops:
            if op[0] == "add" and op[3] is None:  # fresh uuids: give both the same ones
                op = (*op[:3], [f"u{n}-{len(twin)}" for n in range(len(op[1]))], op[4])
            result = call(durable, op)
            assert result == call(twin, op), op
            assert_same_snapshot(snapshot(durable), snapshot(twin))
            assert_same_snapshot(snapshot(reader), snapshot(twin))
            assert reader.streams() == twin.streams()
        reopened = EvoStore.open(path, embeddings=EMBEDDER)
        assert_same_snapshot(snapshot(reopened), snapshot(twin))
        assert_consistent(reopened)
        for store in (durable, reader, reopened):
            store.close()
