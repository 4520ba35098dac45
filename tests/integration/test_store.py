"""EvoStore: per-stream memory search, ids, filters, MMR, validation, and verified atomic persistence."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest

from evoembedding_core import EvoEmbeddingConfig, EvoEmbeddingModel
from evoembedding_integrations.store import CorruptStoreError, EvoStore, ModelMismatchError, resolve_model

ANA = [
    "Ana: I grew up in Porto, near the river.",
    "Ana: Last spring I moved to Oslo for work.",
    "Ana: I adopted a cat.",
]
BOB = ["Bob: I am a nurse in Lyon.", "Bob: My dog Rex loves the park.", "Bob: I started learning the cello."]


@pytest.fixture(scope="module")
def model() -> EvoEmbeddingModel:
    return resolve_model()  # the cached default model, shared with the other integration tests


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory):
    store = EvoStore(model)
    store.add(ANA, stream_id="ana", ids=["a0", "a1", "a2"], metadatas=[{"n": 0}, {"n": 1, "tag": "move"}, {"n": 2}])
    store.add(BOB, stream_id="bob", ids=["b0", "b1", "b2"], metadatas=[{"n": 0}, {"n": 1, "tag": "pet"}, {"n": 2}])
    return store.save(tmp_path_factory.mktemp("saved") / "store")


@pytest.fixture
def store(model, saved) -> EvoStore:
    """A fresh two-stream store (loaded from one save, so the texts are encoded once per module)."""
    return EvoStore.load(saved, model)


def hash_embedder(texts):
    """A deterministic plain embedder: 16-d vectors seeded by the text."""
    return np.stack([np.random.default_rng(abs(hash(t)) % 2**32).normal(size=16) for t in texts])


def snapshot(store: EvoStore):
    """Everything observable about a store: ids, records, and each stream's memory."""
    records = [(r.id, r.text, r.metadata, r.stream_id, r.position) for r in store.get(store.ids())]
    memories = {s: store.stream(s).memory.numpy().copy() for s in store.streams()} if store.mode == "evo" else {}
    return records, memories


def assert_same(a, b):
    assert a[0] == b[0]
    assert a[1].keys() == b[1].keys()
    for key in a[1]:
        np.testing.assert_array_equal(a[1][key], b[1][key])


def test_vectors_and_scores_are_those_of_each_streams_memory(model, saved):
    store = EvoStore.load(saved, model, query_memory=True, hybrid=False)  # the method as specified
    reference = {}
    for sid, texts in (("ana", ANA), ("bob", BOB)):
        stream = model.stream()
        vectors = stream.add(texts)
        np.testing.assert_allclose(store.vectors(store.ids(sid)), vectors, atol=1e-5)
        reference[sid] = vectors @ stream.encode_query("Where does she live now?")
    hits = store.search("Where does she live now?", k=6)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for hit in hits:
        assert hit.score == pytest.approx(reference[hit.stream_id][hit.position], abs=1e-5)
    assert {h.id for h in hits} == {"a0", "a1", "a2", "b0", "b1", "b2"}
    only_bob = store.search("Where does she live now?", k=6, stream_ids="bob")
    assert [h.stream_id for h in only_bob] == ["bob"] * 3
    assert store.search("anything", stream_ids=["nobody"]) == []


def test_query_memory_off_reads_queries_over_an_empty_memory(model, saved):
    store = EvoStore.load(saved, model, hybrid=False)  # query_memory=False: the default
    fresh = model.stream()
    query = fresh.encode_query("Where does she live now?")  # an empty stream: no memory
    np.testing.assert_allclose(store.encode_query("Where does she live now?", "ana"), query, atol=1e-5)
    hits = store.search("Where does she live now?", k=6)
    for hit in hits:  # stored vectors keep their context; only the query changes
        assert hit.score == pytest.approx(float(store.vectors([hit.id])[0] @ query), abs=1e-5)
    with_memory = EvoStore.load(saved, model, query_memory=True, hybrid=False).search("Where does she live now?", k=6)
    assert [h.score for h in hits] != pytest.approx([h.score for h in with_memory], abs=1e-4)
    with pytest.raises(TypeError, match="query_memory"):
        EvoStore(model, query_memory="no")


def test_memory_makes_vectors_depend_on_earlier_texts(model):
    store = EvoStore(model)
    store.add(["I grew up in Porto."], stream_id="x", ids=["x0"])
    store.add(["Now I live in Oslo."], stream_id="x", ids=["x1"])
    store.add(["Now I live in Oslo."], stream_id="y", ids=["y0"])
    x1, y0 = store.vectors(["x1", "y0"])
    assert not np.allclose(x1, y0, atol=1e-4)  # same text, different history
    assert store.get("x1")[0].position == 1 and store.get("y0")[0].position == 0


def test_ids_overwrite_get_and_delete(store):
    assert len(store) == 6 and store.get(["b1", "missing", "a0"])[0].metadata == {"n": 1, "tag": "pet"}
    length_before = len(store.stream("bob"))
    store.add(["Bob: Rex is now twelve."], stream_id="bob", ids=["a1"], metadatas=[{"new": True}])
    moved = store.get("a1")[0]
    assert (moved.text, moved.stream_id, moved.position, moved.metadata) == (
        "Bob: Rex is now twelve.",
        "bob",
        3,
        {"new": True},
    )
    assert len(store) == 6 and store.ids("ana") == ["a0", "a2"]
    assert store.delete(["a0", "missing", "a0"]) == 1
    assert "a0" not in store and store.get("a0") == [] and store.delete(["a0"]) == 0
    assert all(h.id != "a0" for h in store.search("Porto", k=10))
    # the memory is not rewound: the stream keeps its length and positions keep counting
    assert len(store.stream("bob")) == length_before + 1
    store.add(["Bob: bye."], stream_id="bob", ids=["b9"])
    assert store.get("b9")[0].position == 4
    assert store.delete_stream("bob") and not store.delete_stream("bob")
    assert store.streams() == ["ana"] and store.ids() == ["a2"]
    store.clear()
    assert len(store) == 0 and store.search("x") == []


def test_generated_ids_and_per_text_streams(model):
    store = EvoStore(model)
    ids = store.add(["one", "two", "three"], stream_id=["s1", "s2", "s1"], ids=[None, "fixed", None])
    assert ids[1] == "fixed" and len(set(ids)) == 3
    assert [r.position for r in store.get(ids)] == [0, 0, 1] and store.streams() == ["s1", "s2"]


def test_metadata_filters(store):
    def ids(filter, **kw):
        return {h.id for h in store.search("anything", k=10, filter=filter, **kw)}

    assert ids({"n": 1}) == {"a1", "b1"}
    assert ids({"n": {"$in": [0, 2]}}, stream_ids="ana") == {"a0", "a2"}
    assert ids({"tag": {"$ne": "pet"}}) == {"a0", "a1", "a2", "b0", "b2"}
    assert ids({"n": {"$gte": 1, "$lt": 2}}) == {"a1", "b1"}
    assert ids({"tag": {"$exists": True}}) == {"a1", "b1"}
    assert ids({"$or": [{"tag": "pet"}, {"n": 0}]}) == {"a0", "b0", "b1"}
    assert ids(lambda m: m.get("n") == 2) == {"a2", "b2"}
    assert ids({"n": 7}) == set()
    with pytest.raises(ValueError, match=r"\$regex"):
        store.search("x", filter={"n": {"$regex": "a"}})
    with pytest.raises(TypeError, match="filter"):
        store.search("x", filter=["n"])
    with pytest.raises(TypeError, match=r"\$in"):
        store.search("x", filter={"n": {"$in": 3}})


def test_mmr_prefers_diverse_results(model):
    base = hash_embedder(["q"])[0]
    vectors = {"near": base, "near-copy": base + 1e-3, "other": base + np.random.default_rng(1).normal(size=16) * 0.6}
    store = EvoStore(embeddings=lambda texts: np.stack([vectors[t] for t in texts]))
    store.add(list(vectors), ids=list(vectors))
    assert {h.id for h in store.search_by_vector(base, k=2)} == {"near", "near-copy"}
    diverse = store.mmr_search_by_vector(base, k=2, fetch_k=3, lambda_mult=0.3)
    assert {h.id for h in diverse} == {"other", diverse[0].id} and diverse[0].id in ("near", "near-copy")
    relevant = store.mmr_search_by_vector(base, k=2, fetch_k=3, lambda_mult=1.0)
    assert [h.id for h in relevant] == [h.id for h in store.search_by_vector(base, k=2)]
    with pytest.raises(ValueError, match="lambda_mult"):
        store.mmr_search_by_vector(base, lambda_mult=2)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda s: s.add([""], stream_id="ana"), ValueError, "empty"),
        (lambda s: s.add(["ok", 3], stream_id="ana"), TypeError, r"texts\[1\]"),
        (lambda s: s.add(["x", "y"], ids=["d", "d"]), ValueError, "duplicate"),
        (lambda s: s.add(["x", "y"], ids=["d"]), ValueError, "2 texts"),
        (lambda s: s.add(["x"], metadatas=[{"t": object()}]), TypeError, "JSON"),
        (lambda s: s.add(["x"], metadatas=[{"t": float("nan")}]), TypeError, "finite"),
        (lambda s: s.add(["x", "y"], stream_id=["ana"]), ValueError, "stream ids"),
        (lambda s: s.add(["x"], stream_id=""), ValueError, "stream_id"),
        (lambda s: s.add(["bad \ud800"], stream_id="ana"), ValueError, "surrogate"),
        (lambda s: s.search("x", k=0), ValueError, "k must"),
        (lambda s: s.search("x", k=True), ValueError, "k must"),
        (lambda s: s.search(None), TypeError, "query"),
        (lambda s: s.search_by_vector([np.nan] * 384), ValueError, "NaN"),
        (lambda s: s.search_by_vector([1.0] * 3), ValueError, "dimension"),
        (lambda s: s.delete([1]), TypeError, r"ids\[0\]"),
    ],
)
def test_rejected_calls_change_nothing(store, call, error, message):
    before = snapshot(store)
    with pytest.raises(error, match=message):
        call(store)
    assert_same(snapshot(store), before)


def test_save_load_round_trip_restores_memory_exactly(store, model, tmp_path):
    store.delete(["b2"])
    store.save(tmp_path / "s")
    loaded = EvoStore.load(tmp_path / "s", model)
    assert_same(snapshot(loaded), snapshot(store))
    query = "Who has a pet?"
    assert [(h.id, round(h.score, 5)) for h in loaded.search(query, k=5)] == [
        (h.id, round(h.score, 5)) for h in store.search(query, k=5)
    ]
    # continuing a loaded stream gives the same vectors as continuing the original
    for s in (store, loaded):
        s.add(["Bob: Rex is sick today."], stream_id="bob", ids=["b3"])
    np.testing.assert_allclose(loaded.vectors(["b3"]), store.vectors(["b3"]), atol=1e-6)
    assert loaded.get("b3")[0].position == store.get("b3")[0].position == 3


def test_save_is_atomic_and_cleans_up(store, tmp_path, monkeypatch):
    target = tmp_path / "s"
    store.save(target)
    first = sorted(os.listdir(target))
    store.add(["Ana: one more."], stream_id="ana", ids=["a3"])

    def crash(*args):  # the process dies right before the manifest is swapped in
        raise OSError("simulated crash")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        store.save(target)
    monkeypatch.undo()
    assert "a3" not in EvoStore.load(target)  # the previous save is intact
    store.save(target)
    files = sorted(os.listdir(target))
    assert len(files) == 3 and not set(files) & set(first) - {"manifest.json"}
    assert "a3" in EvoStore.load(target)


def test_hostile_and_corrupt_stores_are_refused(store, tmp_path):
    good = tmp_path / "good"
    store.save(good)
    manifest = json.loads((good / "manifest.json").read_text())
    arrays_name = next(n for n in manifest["files"] if n.startswith("arrays-"))

    def variant(name, mutate):
        directory = tmp_path / name
        directory.mkdir()
        for f in os.listdir(good):
            (directory / f).write_bytes((good / f).read_bytes())
        mutate(directory)
        return directory

    def flip(d):
        data = bytearray((d / arrays_name).read_bytes())
        data[len(data) // 2] ^= 0x01
        (d / arrays_name).write_bytes(bytes(data))

    def version(d):
        (d / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))

    def pickle_payload(d):
        marker = tmp_path / "pwned"
        payload = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
        (d / arrays_name).write_bytes(payload)
        files = {
            **manifest["files"],
            arrays_name: {"size": len(payload), "sha256": __import__("hashlib").sha256(payload).hexdigest()},
        }
        (d / "manifest.json").write_text(json.dumps({**manifest, "files": files}))

    def symlink(d):
        outside = tmp_path / "outside.json"
        outside.write_text((d / "manifest.json").read_text())
        (d / "manifest.json").unlink()
        (d / "manifest.json").symlink_to(outside)

    def escape(d):
        files = {"../" + arrays_name: manifest["files"][arrays_name], **manifest["files"]}
        (d / "manifest.json").write_text(json.dumps({**manifest, "files": files}))

    def truncate(d):
        (d / arrays_name).write_bytes((d / arrays_name).read_bytes()[:100])

    cases = [
        (flip, "checksum"),
        (version, "format_version 99"),
        (pickle_payload, "not a valid safetensors"),
        (symlink, "symlink"),
        (escape, "one records and one arrays"),
        (truncate, "truncated"),
    ]
    for mutate, message in cases:
        with pytest.raises(CorruptStoreError, match=message):
            EvoStore.load(variant(mutate.__name__, mutate))
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(FileNotFoundError):
        EvoStore.load(tmp_path / "nowhere")


def test_a_different_model_is_refused(store, tmp_path):
    store.save(tmp_path / "s")
    other = EvoEmbeddingModel(EvoEmbeddingConfig(memory_slots=4))
    with pytest.raises(ModelMismatchError, match="different model"):
        EvoStore.load(tmp_path / "s", other)
    with pytest.raises(ModelMismatchError, match="EvoEmbedding model"):
        EvoStore.load(tmp_path / "s", embeddings=hash_embedder)


def test_plain_mode_is_a_cosine_faiss_store(tmp_path):
    store = EvoStore(embeddings=hash_embedder, hybrid=False)
    store.add(["alpha", "beta", "gamma"], ids=["1", "2", "3"], metadatas=[{"g": 1}, {"g": 2}, {"g": 1}])
    top = store.search("beta", k=3)
    assert top[0].id == "2" and top[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.id for h in store.search("beta", k=3, filter={"g": 1})] == [h.id for h in top if h.id != "2"]
    store.save(tmp_path / "p")
    with pytest.raises(ModelMismatchError, match="embeddings="):
        EvoStore.load(tmp_path / "p")
    loaded = EvoStore.load(tmp_path / "p", embeddings=hash_embedder, hybrid=False)
    assert [(h.id, h.score) for h in loaded.search("beta", k=3)] == [(h.id, h.score) for h in top]
    with pytest.raises(ValueError, match="dimension"):
        loaded.search_by_vector(np.ones(3))
    with pytest.raises(ValueError, match="zero vector"):
        EvoStore(embeddings=lambda texts: np.zeros((len(texts), 4))).add(["x"])


def test_hnsw_index_finds_exact_neighbours_and_survives_deletes(tmp_path):
    rng = np.random.default_rng(0)
    table = {f"t{i}": rng.normal(size=16) for i in range(200)}
    store = EvoStore(embeddings=lambda texts: np.stack([table[t] for t in texts]), index="hnsw", hnsw_threshold=50)
    store.add(list(table), ids=list(table))
    assert all(store.search(t, k=1)[0].id == t for t in list(table)[:20])
    store.delete(["t0", "t1"])
    assert store.search("t0", k=1)[0].id != "t0" and store.search("t5", k=1)[0].id == "t5"
    store.save(tmp_path / "h")
    loaded = EvoStore.load(tmp_path / "h", embeddings=store.embeddings)
    assert loaded.index_kind == "hnsw" and len(loaded) == 198 and loaded.search("t7", k=1)[0].id == "t7"


def test_concurrent_adds_and_searches_lose_nothing(model):
    store = EvoStore(model)
    errors = []

    def worker(n):
        try:
            for i in range(3):
                store.add([f"user {n} says thing {i}"], stream_id=f"u{n % 2}", ids=[f"{n}-{i}"])
                hits = store.search("thing", k=3)
                assert all(h.id in store for h in hits)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(store) == 12
    assert sorted(len(store.stream(s)) for s in store.streams()) == [6, 6]


def test_hybrid_search_fuses_vector_and_bm25_rankings(store, model, saved):
    from rank_bm25 import BM25Okapi

    from evoembedding_core.lexical import lexical_tokens, reciprocal_rank_fusion

    query = "Who plays the cello?"
    dense = [h.id for h in store.search(query, k=100)]
    hits = store.search(query, k=6, hybrid=True)
    # BM25 with the word statistics of all the store's texts; only texts sharing a word with the query
    scores = BM25Okapi([lexical_tokens(t) for t in ANA + BOB]).get_scores(lexical_tokens(query))
    ids = ["a0", "a1", "a2", "b0", "b1", "b2"]
    lexical_ids = [ids[i] for i in np.argsort(-scores, kind="stable") if scores[i] > 0]
    assert lexical_ids and lexical_ids[0] == "b2"  # "cello" is Bob's third text
    expected = reciprocal_rank_fusion([dense, lexical_ids])
    assert [(h.id, h.score) for h in hits] == [(i, pytest.approx(s)) for i, s in expected.items()]
    assert hits[0].id == "b2"
    # a hybrid store does the same by default; its BM25 index follows adds and deletes
    hybrid = EvoStore.load(saved, model, hybrid=True)
    assert [h.id for h in hybrid.search(query, k=6)] == [h.id for h in hits]
    assert [h.id for h in hybrid.search(query, k=6, hybrid=False)] == dense[:6]
    hybrid.delete(["b2"])
    hybrid.add(["Cid: my cello teacher is strict."], stream_id="cid", ids=["c0"])
    found = [h.id for h in hybrid.search(query, k=10)]
    assert "b2" not in found and "c0" in found
    assert [h.id for h in hybrid.search(query, k=10, filter={"tag": "pet"})] == ["b1"]  # both rankings filtered
    with pytest.raises(TypeError, match="hybrid"):
        EvoStore(model, hybrid=1)
    with pytest.raises(TypeError, match="hybrid"):
        hybrid.search(query, hybrid="yes")
