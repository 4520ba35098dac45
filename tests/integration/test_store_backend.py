"""The storage seam: every mutating call reaches the backend as one Change before it is applied, and
a backend that refuses a change leaves the store exactly as it was."""

from __future__ import annotations

import numpy as np
import pytest
from fuzz_strategies import HashingEmbeddings, assert_consistent, assert_same_snapshot, snapshot

from evoembedding_integrations.store import Change, EvoStore


class Recording:
    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.fail = False

    def open(self):
        return []

    def apply(self, change: Change) -> None:
        if self.fail:
            raise OSError("simulated: no space left on device")
        self.changes.append(change)


@pytest.fixture
def store() -> tuple[EvoStore, Recording]:
    store, backend = EvoStore(embeddings=HashingEmbeddings()), Recording()
    store._backend = backend
    store.add(["a0", "a1"], stream_id="ana", ids=["a0", "a1"], metadatas=[{"n": 0}, {"n": 1}])
    store.add(["b0"], stream_id="bob", ids=["b0"])
    return store, backend


def test_each_call_is_one_change(store):
    store, backend = store
    first = backend.changes[0]
    assert [(e.id, e.stream_id, e.position, e.metadata) for e in first.added] == [
        ("a0", "ana", 0, {"n": 0}),
        ("a1", "ana", 1, {"n": 1}),
    ]
    assert dict(first.lengths) == {"ana": 2} and first.removed == () and not first.memories
    np.testing.assert_allclose(np.stack([e.vector for e in first.added]), store.vectors(["a0", "a1"]))
    store.add(["a1 again"], stream_id="bob", ids=["a1"])  # a replacement: removed, then added
    assert backend.changes[-1].removed == ("a1",) and backend.changes[-1].added[0].position == 1
    assert store.delete(["a0", "missing"]) == 1 and backend.changes[-1].removed == ("a0",)
    assert store.delete(["missing"]) == 0 and len(backend.changes) == 4  # nothing to do: no change
    assert store.delete_stream("bob") and backend.changes[-1].dropped_streams == ("bob",)
    assert set(backend.changes[-1].removed) == {"b0", "a1"}
    store.clear()
    assert backend.changes[-1].cleared and len(store) == 0


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.add(["new"], stream_id="ana", ids=["n0"]),
        lambda s: s.add(["a0 replaced"], stream_id="carol", ids=["a0"]),
        lambda s: s.delete(["a0", "b0"]),
        lambda s: s.delete_stream("ana"),
        lambda s: s.clear(),
    ],
)
def test_a_refused_change_changes_nothing(store, call):
    store, backend = store
    store.search("a0", k=3, hybrid=True)  # build the BM25 index too: it must not change either
    before, hits = snapshot(store), store.search("a0", k=3, hybrid=True)
    backend.fail = True
    with pytest.raises(OSError, match="simulated"):
        call(store)
    assert_same_snapshot(snapshot(store), before)
    assert_consistent(store)
    assert store.streams() == ["ana", "bob"] and store.search("a0", k=3, hybrid=True) == hits
