"""Drop-in adapters on real MiniLM weights: LightMem-style hooks, and A-MEM / mem0 driven through their real packages.

A-MEM and mem0 run fully offline: A-MEM's Chroma retriever is never built (our retriever replaces
it) and its LLM is a scripted fake (evolution decisions only); mem0 is built from a config whose
OpenAI clients are never called (``infer=False``: no fact extraction) and a local, throw-away Qdrant
for construction, then its embedder and vector store are swapped for ours.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from evoembedding_core import EvoStream
from evoembedding_integrations.adapters.lightmem import EvoLightMemEmbedder, EvoLightMemRetriever
from evoembedding_integrations.store import EvoStore

FACTS = ["Ana grew up in Porto.", "Ana moved to Oslo last year.", "Ana's brother Rui is a pilot."]


@pytest.fixture()
def store(minilm_model):
    return EvoStore(minilm_model)


def test_lightmem_hooks(store, minilm_model):
    retriever = EvoLightMemRetriever(store)
    embedder = EvoLightMemEmbedder(retriever)
    ids = retriever.insert([embedder.embed(t) for t in FACTS], [{"memory": t, "n": i} for i, t in enumerate(FACTS)])
    assert len(ids) == 3 and all(retriever.exists(i) for i in ids) and not retriever.exists("nope")
    query = embedder.embed("What is Rui's job?")
    reference = EvoStream(minilm_model)
    reference.add(FACTS)
    expected = reference.encode_query("What is Rui's job?", memory=False)  # the store's default: an empty memory
    assert np.allclose(query, expected, atol=1e-5)
    hits = retriever.search(query, limit=2, return_full=True)
    assert hits[0]["id"] == ids[2] and hits[0]["payload"]["memory"] == FACTS[2] and hits[0]["score"] >= hits[1]["score"]
    text_hits = retriever.search("Which city did Ana move to?", limit=3)  # text queries: the store's own search
    assert [h["id"] for h in text_hits] == [h.id for h in store.search("Which city did Ana move to?", k=3)]
    assert {h["id"] for h in retriever.search(query, limit=3, filters={"n": {"gte": 1, "lte": 2}})} == set(ids[1:])
    everything = retriever.get_all()
    assert [p["id"] for p in everything] == ids and len(everything[0]["vector"]) == 384
    retriever.update(ids[0], payload={"memory": "Ana grew up in Faro.", "n": 0})
    assert retriever.get(ids[0])["payload"]["memory"] == "Ana grew up in Faro."
    retriever.delete(ids[1])
    assert not retriever.exists(ids[1]) and len(retriever.get_all(with_vectors=False)) == 2
    with pytest.raises(ValueError, match="memory"):
        retriever.insert([[0.0]], [{"text": "wrong key"}])
    with pytest.raises(KeyError):
        retriever.update("missing", payload={"memory": "x"})
    retriever.reset()
    assert retriever.get_all() == []


# ---------------------------------------------------------------------------------------- A-MEM
NO_EVOLUTION = json.dumps(
    {
        "should_evolve": False,
        "actions": [],
        "suggested_connections": [],
        "tags_to_update": [],
        "new_context_neighborhood": [],
        "new_tags_neighborhood": [],
    }
)


@pytest.fixture()
def amem(store, monkeypatch):
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm must not fetch its price list
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")
    pytest.importorskip("agentic_memory.memory_system", reason="a-mem not installed (pip install evoembedding[amem])")
    from evoembedding_integrations.adapters.amem import EvoAMemRetriever, agentic_memory_system

    system = agentic_memory_system(EvoAMemRetriever(store), llm_backend="openai", api_key="offline-never-used")
    prompts = []

    def scripted_llm(prompt, response_format=None, **kwargs):  # a fake LLM: never evolve, remember the prompt
        prompts.append(prompt)
        return NO_EVOLUTION

    system.llm_controller.llm.get_completion = scripted_llm
    return system, prompts


def test_amem_system_runs_on_the_evo_retriever(amem):
    system, prompts = amem
    ids = [
        system.add_note(text, keywords=[f"k{i}"], context="Ana's life", tags=["biography"], category="people")
        for i, text in enumerate(FACTS)
    ]
    retriever = system.retriever
    assert (
        retriever.count() == 3
        and retriever.get_all_ids() == ids
        and retriever.get_all_ids(limit=1, offset=1) == ids[1:2]
    )
    assert len(prompts) == 2 and FACTS[0] in prompts[-1]  # neighbours came from our retriever
    results = system.search("What is Rui's job?", k=2)
    assert (
        results[0]["id"] == ids[2] and results[0]["score"] <= results[1]["score"]
    )  # Chroma distances: lower is better
    raw = retriever.search("Where does Ana live now?", k=3)
    assert raw["ids"][0][0] == ids[1] and raw["metadatas"][0][0]["keywords"] == ["k1"]
    assert raw["documents"][0][0].startswith(FACTS[1]) and "context: Ana's life" in raw["documents"][0][0]
    assert system.read(ids[0]).content == FACTS[0]
    assert set(retriever.get_by_ids([ids[0], "nope"])) == {ids[0]} and retriever.get_by_id("nope") is None
    filtered = retriever.search_with_filter(query="Ana", where={"keywords": {"$eq": ["k0"]}}, k=5)
    assert filtered["ids"] == [[ids[0]]]
    assert retriever.search_with_filter(where={"category": "people"}, k=2)["ids"] == [ids[:2]]
    assert system.update(ids[0], content="Ana grew up in Faro.")
    assert retriever.get_by_id(ids[0])["content"] == "Ana grew up in Faro."
    assert system.delete(ids[1]) and retriever.count() == 2


# ---------------------------------------------------------------------------------------- mem0
@pytest.fixture()
def mem0_memory(store, tmp_path, monkeypatch):
    monkeypatch.setenv("MEM0_DIR", str(tmp_path / "mem0"))
    monkeypatch.setenv("MEM0_TELEMETRY", "False")
    mem0 = pytest.importorskip("mem0", reason="mem0ai not installed (pip install evoembedding[mem0])")
    from evoembedding_integrations.adapters.mem0 import use_evoembedding

    config = {
        "vector_store": {
            "provider": "qdrant",
            "config": {"path": str(tmp_path / "qdrant"), "embedding_model_dims": 384},
        },
        "embedder": {"provider": "openai", "config": {"api_key": "offline-never-used"}},
        "llm": {"provider": "openai", "config": {"api_key": "offline-never-used"}},
        "history_db_path": str(tmp_path / "history.db"),
    }
    return use_evoembedding(mem0.Memory.from_config(config), store)


def test_mem0_memory_runs_on_the_evo_store(mem0_memory, store):
    memory = mem0_memory
    added = memory.add([{"role": "user", "content": f} for f in FACTS], user_id="ana", infer=False)["results"]
    memory.add([{"role": "user", "content": "Bo keeps bees on his roof."}], user_id="bo", infer=False)
    ids = [r["id"] for r in added]
    assert store.ids("ana") == ids and store.streams() == ["ana", "bo"]  # one stream per user, in order
    found = memory.search("What does Rui do for a living?", filters={"user_id": "ana"}, top_k=2)["results"]
    assert found[0]["id"] == ids[2] and found[0]["memory"] == FACTS[2] and found[0]["user_id"] == "ana"
    assert found[0]["score"] >= found[-1]["score"]
    assert all(r["user_id"] == "bo" for r in memory.search("bees", filters={"user_id": "bo"})["results"])
    assert memory.get(ids[0])["memory"] == FACTS[0]
    assert [m["id"] for m in memory.get_all(filters={"user_id": "ana"})["results"]] == ids
    memory.update(ids[0], text="Ana grew up in Faro.")
    assert memory.get(ids[0])["memory"] == "Ana grew up in Faro." and store.get(ids[0])[0].stream_id == "ana"
    memory.delete(ids[1])
    assert memory.get(ids[1]) is None
    memory.delete_all(user_id="ana")
    assert store.ids("ana") == [] and len(store) == 1
    memory.reset()
    assert len(store) == 0


def test_mem0_filters_translate(store):
    pytest.importorskip("mem0", reason="mem0ai not installed")
    from evoembedding_integrations.adapters.mem0 import EvoMem0VectorStore, compile_mem0_filters

    vs = EvoMem0VectorStore(store)
    vs.insert([None] * 3, [{"data": t, "user_id": "ana", "n": i} for i, t in enumerate(FACTS)], ["a", "b", "c"])
    pick = lambda f: sorted(r.id for r in vs.list(filters=f)[0])  # noqa: E731
    assert pick({"user_id": "ana", "n": {"gte": 1}}) == ["b", "c"]
    assert pick({"OR": [{"n": 0}, {"n": 2}]}) == ["a", "c"]
    assert pick({"NOT": [{"n": {"in": [0, 1]}}]}) == ["c"]
    assert pick({"n": "*"}) == ["a", "b", "c"] and pick({"data": {"icontains": "x"}}) == []
    with pytest.raises(ValueError, match="unknown mem0 filter operators"):
        compile_mem0_filters({"n": {"regex": "x"}})


# ---------------------------------------------------------------------------------------- filter translators
ROWS = {
    "one": {"n": 1, "tag": "Pet", "tags": ["a", "b"]},
    "null": {"n": None, "tag": None},
    "missing": {},
    "three": {"n": 3, "tag": "work", "tags": []},
    "text": {"n": "x", "tag": "petals", "tags": ["b"]},
}


def matching(filter_) -> list[str]:
    from evoembedding_integrations.store import compile_filter

    predicate = compile_filter(filter_)
    return [name for name, row in ROWS.items() if predicate is None or predicate(row)]


def test_mem0_filters_are_translated_into_the_store_language():
    from evoembedding_integrations.adapters.filters import compile_mem0_filters, to_store_filter

    assert to_store_filter(None) is None and to_store_filter({}) is None
    assert to_store_filter({"user_id": "ana", "n": {"gte": 1, "lt": 3}}) == {
        "$and": [{"user_id": {"$eq": "ana"}}, {"n": {"$gte": 1, "$lt": 3}}]
    }
    assert to_store_filter({"n": "*"}) == {"n": {"$exists": True}}
    assert to_store_filter({"NOT": [{"n": 1}, {"n": 3}]}) == {"$not": {"$or": [{"n": {"$eq": 1}}, {"n": {"$eq": 3}}]}}
    assert to_store_filter({"tag": {"icontains": 7}}) == {"tag": {"$icontains": "7"}}
    assert matching(to_store_filter({"OR": []})) == [] and matching(to_store_filter({"NOT": []})) == list(ROWS)
    assert matching(to_store_filter({"n": {}})) == list(ROWS)  # no operator: no constraint, as in mem0
    assert compile_mem0_filters(None) is None and compile_mem0_filters({"n": 1})(ROWS["one"])
    with pytest.raises(ValueError, match="unknown mem0 filter operators"):
        to_store_filter({"n": {"regex": "x"}})
    with pytest.raises(ValueError, match="needs a list"):
        to_store_filter({"AND": {"n": 1}})
    with pytest.raises(TypeError, match="must be a dict"):
        to_store_filter([("n", 1)])


def test_lightmem_filters_use_the_same_translator(store):
    retriever = EvoLightMemRetriever(store)
    retriever.insert([None] * 3, [{"memory": t, "n": i} for i, t in enumerate(FACTS)], ["a", "b", "c"])
    found = retriever.search("Ana", limit=3, filters={"n": {"gte": 1}, "memory": {"icontains": "OSLO"}})
    assert [h["id"] for h in found] == ["b"]


def test_llama_index_and_mem0_filters_follow_the_store_rules():
    """One condition written three ways (store dict, LlamaIndex, mem0) matches the same rows: a
    missing key matches only the negative operators, None is a value like any other."""
    pytest.importorskip("llama_index.core")
    from llama_index.core.vector_stores.types import FilterCondition, MetadataFilters
    from llama_index.core.vector_stores.types import FilterOperator as Op
    from llama_index.core.vector_stores.types import MetadataFilter as F

    from evoembedding_integrations.adapters.filters import to_store_filter as from_mem0
    from evoembedding_integrations.llama_index import to_store_filter as from_llama

    def llama(*filters, condition=FilterCondition.AND):
        return MetadataFilters(filters=list(filters), condition=condition)

    cases = [
        ({"n": 1}, llama(F(key="n", value=1)), {"n": 1}, ["one"]),
        ({"n": None}, llama(F(key="n", value=None)), {"n": None}, ["null"]),
        ({"n": {"$ne": 1}}, llama(F(key="n", value=1, operator=Op.NE)), {"n": {"ne": 1}}, ["null", "missing", "three", "text"]),
        ({"n": {"$gt": 1}}, llama(F(key="n", value=1, operator=Op.GT)), {"n": {"gt": 1}}, ["three"]),
        ({"n": {"$lte": 3}}, llama(F(key="n", value=3, operator=Op.LTE)), {"n": {"lte": 3}}, ["one", "three"]),
        ({"n": {"$in": [1, 3]}}, llama(F(key="n", value=[1, 3], operator=Op.IN)), {"n": {"in": [1, 3]}}, ["one", "three"]),
        ({"n": {"$nin": [1]}}, llama(F(key="n", value=[1], operator=Op.NIN)), {"n": {"nin": [1]}}, ["null", "missing", "three", "text"]),
        ({"tags": {"$contains": "b"}}, llama(F(key="tags", value="b", operator=Op.CONTAINS)), {"tags": {"contains": "b"}}, ["one", "text"]),
        ({"tag": {"$icontains": "PET"}}, llama(F(key="tag", value="PET", operator=Op.TEXT_MATCH_INSENSITIVE)), {"tag": {"icontains": "PET"}}, ["one", "text"]),
        ({"$not": {"n": 1}}, llama(F(key="n", value=1), condition=FilterCondition.NOT), {"NOT": [{"n": 1}]}, ["null", "missing", "three", "text"]),
        ({"$or": [{"n": 3}, {"tag": "Pet"}]}, llama(F(key="n", value=3), F(key="tag", value="Pet"), condition=FilterCondition.OR), {"OR": [{"n": 3}, {"tag": "Pet"}]}, ["one", "three"]),
        ({"n": {"$exists": True}}, None, {"n": "*"}, ["one", "null", "three", "text"]),
    ]  # fmt: skip
    for store_filter, llama_filter, mem0_filter, expected in cases:
        assert matching(store_filter) == expected, store_filter
        assert matching(from_mem0(mem0_filter)) == expected, mem0_filter
        if llama_filter is not None:
            assert matching(from_llama(llama_filter)) == expected, llama_filter
