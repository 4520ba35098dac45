"""Bad-input fuzzing (hypothesis) across the public APIs: every call either works as documented or raises
``TypeError`` / ``ValueError`` with a message naming the bad argument, and a rejected call leaves the
store (records, vectors, streams' memories) exactly as it was.

Most cases run on plain stores with a hashing embedder (cheap, same validation and bookkeeping code as
evo mode); a smaller number go through the real MiniLM model (EvoStream, EvoEmbeddings, EvoAgentMemory).
The total number of generated cases is counted and printed by the last test (>= 10,000).
"""

from __future__ import annotations

import math
import warnings
from collections import Counter

import numpy as np
import pytest
from fuzz_strategies import (
    HASH_DIM,
    HashingEmbeddings,
    any_text_like,
    assert_same_snapshot,
    blank_text,
    control_text,
    filter_values,
    good_text,
    huge_text,
    k_values,
    metadata_values,
    non_string,
    snapshot,
    surrogate_text,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.embeddings import Embeddings

from evoembedding_integrations.langchain import EvoEmbeddings, EvoVectorStore
from evoembedding_integrations.memory import EvoAgentMemory
from evoembedding_integrations.store import EvoStore

CASES: Counter = Counter()
EXPECTED_TESTS = 10
MIN_CASES = 10_000


def fuzz(n: int):
    return settings(
        max_examples=n,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )


class HashingLangChainEmbeddings(HashingEmbeddings, Embeddings):
    """The hashing embedder as a LangChain ``Embeddings`` (so EvoVectorStore builds a plain store)."""


BASE_TEXTS = ["Ana: I live in Oslo.", "Ana: I have a cat.", "Bob: I play the cello.", "Bob: My dog is Rex."]


def fresh_store() -> EvoStore:
    store = EvoStore(embeddings=HashingEmbeddings())
    store.add(
        BASE_TEXTS,
        stream_id=["ana", "ana", "bob", "bob"],
        ids=["a0", "a1", "b0", "b1"],
        metadatas=[{"n": 0, "tag": "home"}, {"n": 1}, {"n": 2, "tag": "music"}, {"n": 3}],
    )
    return store


def rejected(call, names: tuple[str, ...], *, store: EvoStore | None = None):
    """Run ``call``; on TypeError/ValueError check the message names one of ``names`` and nothing changed.

    Returns ``(ok, result_or_exception)``.
    """
    before = snapshot(store) if store is not None else None
    try:
        return True, call()
    except (TypeError, ValueError) as exc:
        message = str(exc)
        assert any(name in message for name in names), f"message {message!r} names none of {names}"
        if store is not None:
            assert_same_snapshot(snapshot(store), before)
        return False, exc


texts_arg = st.one_of(
    st.lists(good_text, min_size=1, max_size=4),
    st.lists(any_text_like, min_size=0, max_size=4),
    st.lists(st.one_of(good_text, huge_text), min_size=1, max_size=2),
    any_text_like,
)
ids_arg = st.one_of(
    st.none(),
    st.lists(st.one_of(st.none(), st.sampled_from(["a0", "b1", "new", "x"]), any_text_like), max_size=5),
    non_string,
    st.text(max_size=3),
)
stream_arg = st.one_of(
    st.sampled_from(["ana", "bob", "carol"]),
    any_text_like,
    st.lists(st.sampled_from(["ana", "bob", "zed"]), max_size=5),
)
metadatas_arg = st.one_of(st.none(), st.lists(metadata_values, max_size=5), non_string)
vector_arg = st.one_of(
    st.lists(st.floats(-2, 2, allow_nan=False), min_size=HASH_DIM, max_size=HASH_DIM),
    st.lists(
        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(math.nan)),
        min_size=HASH_DIM,
        max_size=HASH_DIM,
    ),
    st.lists(st.floats(-1, 1, allow_nan=False), max_size=20),
    st.just([0.0] * HASH_DIM),
    st.lists(st.lists(st.floats(-1, 1, allow_nan=False), min_size=HASH_DIM, max_size=HASH_DIM), min_size=1, max_size=2),
    any_text_like,
)
stream_ids_arg = st.one_of(
    st.none(),
    st.sampled_from(["ana", "bob", "nobody"]),
    st.lists(st.sampled_from(["ana", "bob", "nobody"]), max_size=3),
    any_text_like,
)


# ---------------------------------------------------------------------------------------- EvoStore
@fuzz(2850)
@given(texts=texts_arg, stream_id=stream_arg, ids=ids_arg, metadatas=metadatas_arg)
def test_store_add(texts, stream_id, ids, metadatas):
    CASES["EvoStore.add"] += 1
    store = fresh_store()
    before = set(store.ids())
    ok, result = rejected(
        lambda: store.add(texts, stream_id=stream_id, ids=ids, metadatas=metadatas),
        ("texts", "stream_id", "ids", "metadatas", "stream ids"),
        store=store,
    )
    if ok:
        texts_list = [texts] if isinstance(texts, str) else list(texts)
        assert len(result) == len(texts_list) == len(set(result))
        assert set(store.ids()) == before | set(result)
        for record, text in zip(store.get(result), texts_list):
            assert record.text == text
        assert len(store) == len(store.ids())


@fuzz(2800)
@given(query=any_text_like, k=k_values, stream_ids=stream_ids_arg, filter=filter_values)
def test_store_search(query, k, stream_ids, filter):
    CASES["EvoStore.search"] += 1
    store = fresh_store()
    ok, hits = rejected(
        lambda: store.search(query, k=k, stream_ids=stream_ids, filter=filter),
        ("query", "k must", "stream_ids", "filter"),
        store=store,
    )
    if ok:
        assert len(hits) <= min(k, len(store))
        assert all(h.id in store for h in hits)
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True) and all(-1.0001 <= s <= 1.0001 for s in scores)


@fuzz(900)
@given(
    vector=vector_arg,
    k=k_values,
    mmr=st.booleans(),
    fetch_k=k_values,
    lambda_mult=st.one_of(st.floats(allow_nan=True), st.integers(-1, 2)),
)
def test_store_search_by_vector_and_mmr(vector, k, mmr, fetch_k, lambda_mult):
    CASES["EvoStore.search_by_vector/mmr"] += 1
    store = fresh_store()
    if mmr:
        call = lambda: store.mmr_search_by_vector(vector, k=k, fetch_k=fetch_k, lambda_mult=lambda_mult)  # noqa: E731
    else:
        call = lambda: store.search_by_vector(vector, k=k)  # noqa: E731
    ok, hits = rejected(call, ("vector", "k must", "fetch_k", "lambda_mult"), store=store)
    if ok:
        assert len(hits) <= k and len({h.id for h in hits}) == len(hits) and all(h.id in store for h in hits)


@fuzz(1300)
@given(
    ids=st.one_of(
        st.lists(st.one_of(st.sampled_from(["a0", "b1", "missing"]), any_text_like), max_size=4), any_text_like
    ),
    op=st.sampled_from(["get", "delete", "vectors"]),
)
def test_store_get_delete_vectors(ids, op):
    CASES["EvoStore.get/delete/vectors"] += 1
    store = fresh_store()
    before = set(store.ids())
    try:
        ok, result = rejected(lambda: getattr(store, op)(ids), ("ids",), store=store)
    except KeyError as exc:  # documented for vectors(): unknown ids
        assert op == "vectors" and "unknown ids" in str(exc)
        return
    if ok and op == "delete":
        wanted = {ids} if isinstance(ids, str) else set(ids)
        assert result == len(before & wanted) and set(store.ids()) == before - wanted
    elif ok and op == "get":
        assert all(r.id in before for r in result)


@fuzz(500)
@given(query=any_text_like, stream_id=any_text_like)
def test_store_encode_query_and_streams(query, stream_id):
    CASES["EvoStore.encode_query/delete_stream"] += 1
    store = fresh_store()
    ok, vector = rejected(lambda: store.encode_query(query, stream_id), ("query", "stream_id"), store=store)
    if ok:
        assert vector.shape == (HASH_DIM,) and np.isfinite(vector).all()
    rejected(lambda: store.delete_stream(stream_id), ("stream_id",))


@fuzz(100)
@given(
    raw=st.sampled_from(["nan", "inf", "zero", "short", "ragged", "strings"]),
    texts=st.lists(good_text, min_size=1, max_size=3),
)
def test_store_rejects_a_misbehaving_embedder(raw, texts):
    CASES["EvoStore.add (bad embedder)"] += 1

    def bad_embedder(texts):
        n = len(texts)
        return {
            "nan": np.full((n, 4), np.nan),
            "inf": np.full((n, 4), np.inf),
            "zero": np.zeros((n, 4)),
            "short": np.ones((n + 1, 4)),
            "ragged": [[1.0, 1.0], [1.0]] * n,
            "strings": [["a"] * 4] * n,
        }[raw]

    store = EvoStore(embeddings=bad_embedder)
    ok, _ = rejected(lambda: store.add(texts), ("vectors", "embedder", "numeric"), store=store)
    assert not ok and len(store) == 0


# ---------------------------------------------------------------------------------------- LangChain (plain)
@fuzz(1900)
@given(
    texts=texts_arg,
    metadatas=metadatas_arg,
    ids=ids_arg,
    query=any_text_like,
    k=k_values,
    filter=filter_values,
    delete_ids=st.one_of(st.none(), st.lists(st.sampled_from(["a0", "b1", "zzz"]), max_size=3), non_string),
)
def test_langchain_vector_store(texts, metadatas, ids, query, k, filter, delete_ids):
    CASES["EvoVectorStore"] += 1
    vs = EvoVectorStore(store=fresh_store())
    names = ("texts", "stream_id", "ids", "metadatas", "stream ids")
    rejected(
        lambda: vs.add_texts(texts if not isinstance(texts, str) else [texts], metadatas, ids=ids),
        names,
        store=vs.store,
    )
    ok, docs = rejected(
        lambda: vs.similarity_search_with_score(query, k=k, filter=filter),
        ("query", "k must", "filter"),
        store=vs.store,
    )
    if ok:
        assert len(docs) <= k and all(doc.id in vs.store for doc, _ in docs)
    ok, _ = rejected(lambda: vs.delete(delete_ids), ("ids", "delete needs"), store=vs.store)
    if ok:
        assert not any(i in vs.store for i in delete_ids)
    assert all(doc.id in vs.store for doc in vs.get_by_ids(vs.store.ids()))


# ---------------------------------------------------------------------------------------- real model
model_texts = st.one_of(
    st.lists(good_text, min_size=1, max_size=2),
    st.lists(st.one_of(blank_text, surrogate_text, control_text, non_string), min_size=1, max_size=3),
    st.lists(st.one_of(good_text, blank_text, non_string), min_size=2, max_size=3),
    non_string,
)


@fuzz(60)
@given(texts=model_texts, query=st.one_of(good_text, blank_text, surrogate_text, non_string))
def test_evo_stream_add_and_encode_query(minilm_model, texts, query):
    CASES["EvoStream"] += 1
    stream = minilm_model.stream()
    stream.add(["Ana: I live in Oslo."])
    before = stream.state_dict()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ok, vectors = rejected(lambda: stream.add(texts), ("texts",))
    after = stream.state_dict()
    if ok:
        assert vectors.shape == (len(texts), minilm_model.output_dim) and np.isfinite(vectors).all()
        assert len(stream) == 1 + len(texts)
    else:
        assert after["meta"] == before["meta"] and np.array_equal(after["memory"].numpy(), before["memory"].numpy())
    ok, vector = rejected(lambda: stream.encode_query(query), ("query", "queries"))
    if ok:
        assert vector.shape == (minilm_model.output_dim,) and np.isfinite(vector).all()


@fuzz(60)
@given(texts=model_texts, query=st.one_of(good_text, blank_text, surrogate_text, non_string), stream_id=any_text_like)
def test_langchain_evo_embeddings(minilm_model, texts, query, stream_id):
    CASES["EvoEmbeddings"] += 1
    emb = EvoEmbeddings(minilm_model)
    ok, vectors = rejected(lambda: emb.embed_documents(texts), ("texts",))
    if ok:
        assert len(vectors) == len(texts) and all(len(v) == minilm_model.output_dim for v in vectors)
    rejected(lambda: emb.embed_query(query), ("query", "queries"))
    ok, _ = rejected(lambda: emb.stream(stream_id), ("stream_id",))
    assert emb.stream_id == (stream_id if ok else "default")


messages_arg = st.one_of(
    good_text,
    st.lists(good_text, min_size=1, max_size=2),
    st.lists(
        st.fixed_dictionaries(
            {
                "role": st.sampled_from(["user", "assistant", "system", "tool", ""]),
                "content": st.one_of(good_text, blank_text, non_string),
            }
        ),
        min_size=1,
        max_size=2,
    ),
    st.lists(st.dictionaries(st.sampled_from(["role", "text"]), st.text(max_size=5), max_size=2), max_size=2),
    blank_text,
    surrogate_text,
    non_string,
)


@pytest.fixture(scope="module")
def agent_memory_dir(minilm_model, tmp_path_factory):
    """A saved two-memory agent memory: each case loads its own copy (no forward pass needed)."""
    path = tmp_path_factory.mktemp("agent-memory")
    memory = EvoAgentMemory(path, model=minilm_model)
    memory.add(["I live in Oslo.", "I have a cat."], user_id="ana", session_id="s1", metadata={"n": 1})
    return path, minilm_model


@fuzz(100)
@given(
    messages=messages_arg,
    user_id=st.one_of(st.sampled_from(["ana", "bob"]), any_text_like),
    session_id=st.one_of(st.none(), st.just("s1"), any_text_like),
    metadata=metadata_values,
    query=st.one_of(good_text, blank_text, non_string),
    k=k_values,
    filters=filter_values,
    memory_id=st.one_of(st.just("missing"), any_text_like),
    limit=st.one_of(st.none(), k_values),
)
def test_agent_memory(agent_memory_dir, messages, user_id, session_id, metadata, query, k, filters, memory_id, limit):
    CASES["EvoAgentMemory"] += 1
    path, model = agent_memory_dir
    memory = EvoAgentMemory(path, model=model, autosave=False)  # loaded, never written back
    store = memory.store
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ok, ids = rejected(
            lambda: memory.add(messages, user_id=user_id, session_id=session_id, metadata=metadata),
            ("messages", "text", "user_id", "session_id", "metadata"),
            store=store,
        )
    if ok:
        assert all(memory.get(i)["user_id"] == user_id for i in ids)
        memory.delete(ids[0])
        assert memory.get(ids[0]) is None
    ok, results = rejected(
        lambda: memory.search(query, user_id=user_id, session_id=session_id, k=k, filters=filters),
        ("query", "queries", "user_id", "session_id", "k must", "filter"),
        store=store,
    )
    if ok:
        assert len(results) <= k and all(memory.get(r["id"]) is not None for r in results)
    rejected(lambda: memory.get(memory_id), ("memory_id",))
    rejected(
        lambda: memory.get_all(user_id=user_id, session_id=session_id, filters=filters, limit=limit),
        ("user_id", "session_id", "filter", "limit"),
        store=store,
    )
    try:
        rejected(lambda: memory.update(memory_id, "new text"), ("memory_id",), store=store)
    except KeyError as exc:  # documented: no such memory
        assert "no memory" in str(exc)


def test_total_fuzz_cases():
    total = sum(CASES.values())
    print(f"\nfuzz cases: {total} in all: " + ", ".join(f"{name} {n}" for name, n in sorted(CASES.items())))
    if len(CASES) < EXPECTED_TESTS:
        pytest.skip(f"only {len(CASES)} of the {EXPECTED_TESTS} fuzz tests ran (a -k selection): not counting")
    assert total >= MIN_CASES
