"""Shared pieces of the reliability tests: a cheap deterministic embedder, hostile input strategies,
store snapshots and a consistency check."""

from __future__ import annotations

import hashlib
import math

import numpy as np
from hypothesis import strategies as st

from evoembedding_integrations.store import EvoStore

HASH_DIM = 16


class HashingEmbeddings:
    """A deterministic plain embedder (16-d vectors seeded by a hash of the text), identical in every process.

    Works as a callable and as a LangChain-style ``Embeddings`` (``embed_documents`` / ``embed_query``).
    """

    def __call__(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts])

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text).tolist()

    @staticmethod
    def _vector(text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")
        return np.random.default_rng(seed).normal(size=HASH_DIM)


# ---------------------------------------------------------------------------------------- hostile values
good_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40).filter(
    lambda t: t.strip() != ""
)
blank_text = st.sampled_from(["", " ", "\t\n", "\u3000", "\r\n \x0b\x0c"])
surrogate_text = st.builds(
    lambda a, s, b: a + s + b, st.text(max_size=5), st.sampled_from(["\ud800", "\udfff", "\udc80"]), st.text(max_size=5)
)
control_text = st.text(st.characters(min_codepoint=0, max_codepoint=31), min_size=1, max_size=20)
huge_text = st.integers(10_000, 200_000).map(lambda n: "word " * (n // 5))
non_string = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=True),
    st.binary(max_size=10),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
any_text_like = st.one_of(good_text, blank_text, surrogate_text, control_text, non_string)
bad_number = st.sampled_from([math.nan, math.inf, -math.inf])
k_values = st.one_of(
    st.integers(-5, 60), st.just(10**12), st.floats(allow_nan=True), st.none(), st.text(max_size=2), st.booleans()
)
json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)
metadata_values = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(["a", "b", "tag", "n"]), json_scalar, max_size=3),
    st.dictionaries(st.one_of(st.integers(), st.none(), st.tuples(st.integers())), json_scalar, min_size=1, max_size=2),
    st.dictionaries(
        st.text(max_size=3),
        st.one_of(bad_number, st.builds(object), st.sets(st.integers(), max_size=2)),
        min_size=1,
        max_size=2,
    ),
    non_string,
)
filter_values = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(["a", "b", "tag", "n"]), json_scalar, max_size=2),
    st.fixed_dictionaries(
        {
            "n": st.fixed_dictionaries(
                {
                    st.sampled_from(["$gt", "$lte", "$ne", "$in", "$nin", "$exists", "$regex", "$bogus"]): st.one_of(
                        json_scalar, st.lists(json_scalar, max_size=3)
                    )
                }
            )
        }
    ),
    st.fixed_dictionaries(
        {
            st.sampled_from(["$and", "$or", "$not"]): st.one_of(
                st.lists(st.dictionaries(st.sampled_from(["a", "n"]), json_scalar, max_size=2), max_size=3), json_scalar
            )
        }
    ),
    st.dictionaries(st.one_of(st.integers(), st.just("$x")), json_scalar, min_size=1, max_size=1),
    non_string.filter(lambda v: v is not None),
)


# ---------------------------------------------------------------------------------------- store checks
def snapshot(store: EvoStore) -> tuple:
    """Everything observable about a store: records, vectors, streams' lengths and memories."""
    ids = store.ids()
    records = [(r.id, r.text, r.metadata, r.stream_id, r.position) for r in store.get(ids)]
    vectors = store.vectors(ids) if ids else np.zeros((0, 0), np.float32)
    lengths = {s: store._streams[s].length for s in store.streams()}
    memories = {}
    if store.mode == "evo":
        for s in store.streams():
            state = store.stream(s).state_dict()
            memories[s] = (state["memory"].numpy().copy(), state["chunk_memory"].numpy().copy(), state["meta"])
    return records, vectors, lengths, memories


def assert_same_snapshot(a: tuple, b: tuple, atol: float = 0.0) -> None:
    assert a[0] == b[0], "records differ"
    assert a[1].shape == b[1].shape and np.allclose(a[1], b[1], atol=atol, rtol=0), "vectors differ"
    assert a[2] == b[2], "stream lengths differ"
    assert a[3].keys() == b[3].keys(), "streams with memory differ"
    for sid, (mem_a, chunk_a, meta_a) in a[3].items():
        mem_b, chunk_b, meta_b = b[3][sid]
        assert meta_a == meta_b, f"stream {sid} memory counters differ"
        assert np.allclose(mem_a, mem_b, atol=atol, rtol=0) and np.allclose(chunk_a, chunk_b, atol=atol, rtol=0)


def assert_consistent(store: EvoStore) -> None:
    """Vectors, records and streams' memories agree in count and ids; vectors are finite unit vectors."""
    all_ids = store.ids()
    assert len(all_ids) == len(set(all_ids)) == len(store)
    for sid in store.streams():
        ids = store.ids(sid)
        stream = store._streams[sid]
        assert len(stream.index) == len(ids), f"stream {sid}: {len(stream.index)} vectors for {len(ids)} records"
        positions = [r.position for r in store.get(ids)]
        assert len(set(positions)) == len(positions) and all(0 <= p < stream.length for p in positions)
        if ids:
            vectors = store.vectors(ids)
            assert np.isfinite(vectors).all() and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
        if store.mode == "evo":
            assert len(store.stream(sid)) == stream.length, (
                f"stream {sid}: memory read {len(store.stream(sid))} of {stream.length} segments"
            )
