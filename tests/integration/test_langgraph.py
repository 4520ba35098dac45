"""EvoLangGraphStore: a conformance suite written from LangGraph's ``BaseStore`` contract (LangGraph
ships no store tests), checked against LangGraph's own ``InMemoryStore`` where the two must agree,
plus a compiled ``StateGraph`` whose node writes and reads memories, and langmem's memory tools."""

from __future__ import annotations

import json
import time
from typing import TypedDict

import numpy as np
import pytest

pytest.importorskip("langgraph")

from langgraph.store.base import (  # noqa: E402
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    MatchCondition,
    PutOp,
    SearchItem,
    SearchOp,
)
from langgraph.store.memory import InMemoryStore  # noqa: E402

from evoembedding_integrations.langgraph import UNINDEXED_STREAM, EvoLangGraphStore  # noqa: E402
from evoembedding_integrations.store import resolve_model  # noqa: E402

ANA = ["Ana moved to Oslo last spring.", "Ana has a cat called Miso.", "Ana works night shifts as a nurse."]
BOB = ["Bob lives in Lisbon.", "Bob plays the cello."]


@pytest.fixture(scope="module")
def model():
    return resolve_model()


@pytest.fixture
def store(model):
    return EvoLangGraphStore(model, query_memory=False, fields=["content"])


def fill(store: BaseStore) -> None:
    for n, text in enumerate(ANA):
        store.put(("memories", "ana"), f"a{n}", {"content": text, "n": n, "kind": "fact" if n else "move"})
    for n, text in enumerate(BOB):
        store.put(("memories", "bob"), f"b{n}", {"content": text, "n": n, "kind": "fact"})
    store.put(("prefs", "ana"), "theme", {"content": "dark mode", "tags": ["ui", "dark"], "meta": {"v": 2}})
    store.put(("prefs", "ana", "mobile"), "theme", {"content": "light mode", "meta": {"v": 3}})


@pytest.fixture(scope="module")
def filled(model):
    """This store and LangGraph's InMemoryStore holding the same items (read-only in the tests)."""
    ours, reference = EvoLangGraphStore(model, query_memory=False, fields=["content"]), InMemoryStore()
    fill(ours)
    fill(reference)
    return ours, reference


def plain(items) -> list[tuple]:
    return [(i.namespace, i.key, i.value) for i in items]


def test_put_get_update_delete_and_timestamps(store):
    assert isinstance(store, BaseStore) and store.supports_ttl is False
    assert store.get(("memories", "ana"), "missing") is None
    store.put(("memories", "ana"), "a0", {"content": ANA[0]})
    item = store.get(("memories", "ana"), "a0")
    assert type(item) is Item and (item.namespace, item.key, item.value) == (
        ("memories", "ana"),
        "a0",
        {"content": ANA[0]},
    )
    assert item.created_at == item.updated_at and item.created_at.tzinfo is not None
    time.sleep(0.01)
    store.put(("memories", "ana"), "a0", {"content": ANA[1]})
    updated = store.get(("memories", "ana"), "a0")
    assert updated.value == {"content": ANA[1]} and updated.created_at == item.created_at
    assert updated.updated_at > item.updated_at
    assert len(store.store) == 1  # an update replaces the item
    store.delete(("memories", "ana"), "a0")
    assert store.get(("memories", "ana"), "a0") is None and len(store.store) == 0
    store.delete(("memories", "ana"), "never-there")  # deleting a missing item is fine
    assert store.list_namespaces() == [] and len(store.store) == 0  # an emptied namespace is not listed
    reference = InMemoryStore()
    for target in (store, reference):
        target.put(("memories", "ana"), "x", {"content": ANA[0]})
        target.put(("memories", "ana"), "y", {"content": ANA[1]})
        target.put(("memories", "ana"), "x", {"content": ANA[2]})  # an update keeps its place in listings
    assert plain(store.search(("memories",))) == plain(reference.search(("memories",)))
    with pytest.raises(TypeError, match="JSON"):
        store.put(("memories",), "bad", {"when": object()})


def test_namespaces_map_to_streams_and_read_in_order(model, store):
    fill(store)
    assert store.store.streams() == ["memories.ana", "memories.bob", "prefs.ana", "prefs.ana.mobile"]
    ids = store.store.ids("memories.ana")
    assert [r.text for r in store.store.get(ids)] == ANA  # the "content" field is what is embedded
    np.testing.assert_allclose(store.store.vectors(ids), model.stream().add(ANA), atol=1e-5)  # no bleed from bob
    shared = EvoLangGraphStore(model, stream_depth=1, query_memory=False, fields=["content"])
    fill(shared)
    assert shared.store.streams() == ["memories", "prefs"]
    assert shared.stream_of(("memories", "ana")) == "memories"
    with pytest.raises(ValueError, match="stream_depth"):
        EvoLangGraphStore(model, stream_depth=0)


def test_query_search_ranks_within_the_prefix(model):
    store = EvoLangGraphStore(model, hybrid=False, fields=["content"])  # scores: cosine similarities
    fill(store)
    found = store.search(("memories", "ana"), query="Which pet does Ana have?")
    assert all(type(i) is SearchItem and i.namespace == ("memories", "ana") for i in found)
    assert found[0].key == "a1" and len(found) == 3
    assert [i.score for i in found] == sorted((i.score for i in found), reverse=True)
    vectors = model.stream().add(ANA)
    query = model.stream().encode_query("Which pet does Ana have?")  # query_memory=False: an empty memory
    assert {i.key: i.score for i in found} == pytest.approx(
        {f"a{n}": float(vectors[n] @ query) for n in range(3)}, abs=1e-5
    )
    everyone = store.search(("memories",), query="Who plays music?", limit=2)
    assert len(everyone) == 2 and everyone[0].key == "b1"
    paged = store.search(("memories",), query="Who plays music?", limit=2, offset=1)
    assert [i.key for i in paged] == [i.key for i in store.search(("memories",), query="Who plays music?", limit=3)][1:]
    assert [i.key for i in store.search(("memories",), query="x", filter={"kind": "move"})] == ["a0"]
    assert [i.key for i in store.search(("memories",), query="x", filter={"n": {"$gte": 1}, "kind": "fact"}, limit=9)]
    assert store.search(("nothing",), query="x") == [] and store.search(("memories",), query="x", limit=0) == []
    assert all(i.namespace[:2] == ("prefs", "ana") for i in store.search(("prefs", "ana"), query="theme"))


FILTERS = [
    None,
    {"kind": "fact"},
    {"meta": {"v": 2}},
    {"tags": ["ui", "dark"]},
    {"kind": {"$eq": "move"}},
    {"kind": {"$ne": "move"}},
    {"missing": "x"},
]
NUMERIC = [{"n": {"$gt": 0}}, {"n": {"$lte": 1, "$ne": 0}}, {"n": {"$lt": 2}, "kind": "fact"}]
PREFIXES = [(), ("memories",), ("memories", "ana"), ("prefs",), ("prefs", "ana", "mobile")]


@pytest.mark.parametrize("filter", FILTERS + NUMERIC)
def test_listing_and_filters_agree_with_langgraphs_in_memory_store(filled, filter):
    store, reference = filled
    # InMemoryStore raises on a numeric comparison with a missing field; this store reads it as no match
    prefixes = PREFIXES[1:3] if filter in NUMERIC else PREFIXES
    for prefix in prefixes:
        for limit, offset in [(10, 0), (2, 1), (1, 3)]:
            ours = store.search(prefix, filter=filter, limit=limit, offset=offset)
            theirs = reference.search(prefix, filter=filter, limit=limit, offset=offset)
            assert plain(ours) == plain(theirs), (prefix, limit, offset)
            assert all(i.score is None for i in ours)
    if filter in NUMERIC:
        assert plain(store.search((), filter=filter)) == plain(store.search(("memories",), filter=filter))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"prefix": ("memories",)},
        {"prefix": ("prefs", "*")},
        {"suffix": ("ana",)},
        {"suffix": ("*", "mobile")},
        {"prefix": ("prefs",), "max_depth": 2},
        {"max_depth": 1},
        {"limit": 2, "offset": 1},
        {"prefix": ("nothing",)},
    ],
)
def test_list_namespaces_agrees_with_langgraphs_in_memory_store(filled, kwargs):
    store, reference = filled
    assert store.list_namespaces(**kwargs) == reference.list_namespaces(**kwargs)


def test_index_fields_per_item_and_unindexed_items(model, store):
    whole = EvoLangGraphStore(model)  # default: the whole value as JSON, like InMemoryStore's "$"
    whole.put(("docs",), "d", {"title": "Oslo", "body": "Ana lives here."})
    assert whole.store.get(whole.store.ids())[0].text == json.dumps({"body": "Ana lives here.", "title": "Oslo"})
    store.put(("docs",), "t", {"content": "ignored", "title": "A cat called Miso"}, index=["title"])
    store.put(("docs",), "n", {"content": "Not searchable by meaning"}, index=False)
    store.put(("docs",), "e", {"other": "no content field"})  # nothing at the fields: no vector
    texts = {r.metadata["key"]: (r.text, r.stream_id) for r in store.store.get(store.store.ids())}
    assert texts["t"] == ("A cat called Miso", "docs")
    assert texts["n"][1] == texts["e"][1] == UNINDEXED_STREAM
    found = store.search(("docs",), query="pets")
    assert [i.key for i in found] == ["t", "n", "e"] and found[0].score is not None
    assert found[1].score is None and found[2].score is None  # filled in after the ranked items, as InMemoryStore does
    assert store.get(("docs",), "n").value == {"content": "Not searchable by meaning"}
    assert [i.key for i in store.search(("docs",))] == ["t", "n", "e"]


def test_namespace_rules_and_ttl(store):
    for bad in [(), ("langgraph", "x")]:
        with pytest.raises(InvalidNamespaceError):
            store.put(bad, "k", {"content": "x"})
    for bad in [("a.b",), ("",), ("ok", 3)]:
        with pytest.raises(InvalidNamespaceError):
            store.put(bad, "k", {"content": "x"})
        with pytest.raises(InvalidNamespaceError):
            store.batch([GetOp(bad, "k")])
    with pytest.raises(InvalidNamespaceError):
        store.batch([PutOp((), "k", {"content": "x"})])
    with pytest.raises(NotImplementedError, match="TTL"):
        store.put(("memories",), "k", {"content": "x"}, ttl=5)
    with pytest.raises(ValueError, match="Unknown operation"):
        store.batch(["not an op"])
    assert len(store.store) == 0


def test_batch_runs_operations_in_order(store):
    ns = ("memories", "ana")
    results = store.batch(
        [
            PutOp(ns, "a0", {"content": ANA[0]}),
            PutOp(ns, "a1", {"content": ANA[1]}),
            PutOp(ns, "a0", {"content": ANA[2]}),  # the last put of an item wins
            GetOp(ns, "a0"),
            SearchOp(("memories",), query="cat", limit=1),
            ListNamespacesOp(match_conditions=(MatchCondition("prefix", ("memories",)),)),
            PutOp(ns, "a1", None),
            GetOp(ns, "a1"),
            SearchOp(("memories",)),
        ]
    )
    assert results[:3] == [None, None, None]
    assert results[3].value == {"content": ANA[2]}
    assert [i.key for i in results[4]] == ["a1"]
    assert results[5] == [ns] and results[6] is None and results[7] is None
    assert [i.key for i in results[8]] == ["a0"]
    assert [r.text for r in store.store.get(store.store.ids("memories.ana"))] == [ANA[2]]


async def test_async_methods(store):
    ns = ("memories", "ana")
    await store.aput(ns, "a0", {"content": ANA[0]})
    await store.aput(ns, "a1", {"content": ANA[1]})
    assert (await store.aget(ns, "a1")).value == {"content": ANA[1]}
    assert (await store.asearch(("memories",), query="cat", limit=1))[0].key == "a1"
    assert await store.alist_namespaces(prefix=("memories",)) == [ns]
    await store.adelete(ns, "a1")
    assert await store.aget(ns, "a1") is None
    results = await store.abatch([GetOp(ns, "a0"), SearchOp(ns)])
    assert results[0].key == "a0" and [i.key for i in results[1]] == ["a0"]


def test_durable_with_a_path_shared_by_two_stores(model, tmp_path):
    path = tmp_path / "memories"
    first = EvoLangGraphStore(model, path=path, query_memory=False, fields=["content"])
    fill(first)
    before = first.search(("memories",), query="Where does Ana live?")
    again = EvoLangGraphStore(model, path=path, query_memory=False, fields=["content"])  # as another process would
    assert plain(again.search(("memories",))) == plain(first.search(("memories",)))
    after = again.search(("memories",), query="Where does Ana live?")
    assert [(i.key, i.score) for i in after] == [(i.key, pytest.approx(i.score, abs=1e-6)) for i in before]
    assert again.get(("prefs", "ana"), "theme") == first.get(("prefs", "ana"), "theme")  # timestamps kept
    assert again.list_namespaces() == first.list_namespaces()
    again.put(("memories", "ana"), "a9", {"content": "Ana adopted a second cat."})  # continues the stream
    np.testing.assert_allclose(
        again.store.vectors(again.store.ids("memories.ana")),
        model.stream().add([*ANA, "Ana adopted a second cat."]),
        atol=1e-5,
    )
    first.put(("memories", "bob"), "b9", {"content": "Bob moved to Faro."})  # seen by the other store at once
    assert again.get(("memories", "bob"), "b9").value == {"content": "Bob moved to Faro."}
    in_memory = EvoLangGraphStore(model, fields=["content"])
    fill(in_memory)
    in_memory.save(tmp_path / "snapshot")
    reopened = EvoLangGraphStore(model, path=tmp_path / "snapshot", fields=["content"])
    assert plain(reopened.search(())) == plain(in_memory.search(()))


class State(TypedDict):
    user: str
    said: str
    recalled: list[str]


def test_a_compiled_graph_writes_and_reads_memories(model):
    from langgraph.graph import END, START, StateGraph
    from langgraph.runtime import Runtime

    def remember(state: State, runtime: Runtime) -> dict:
        namespace = ("memories", state["user"])
        key = f"m{len(runtime.store.search(namespace, limit=100))}"
        runtime.store.put(namespace, key, {"content": state["said"]})
        return {}

    def recall(state: State, runtime: Runtime) -> dict:
        found = runtime.store.search(("memories", state["user"]), query=state["said"], limit=2)
        return {"recalled": [i.value["content"] for i in found]}

    builder = StateGraph(State)
    builder.add_node("remember", remember)
    builder.add_node("recall", recall)
    builder.add_edge(START, "remember")
    builder.add_edge("remember", "recall")
    builder.add_edge("recall", END)
    store = EvoLangGraphStore(model, query_memory=False, fields=["content"])
    graph = builder.compile(store=store)
    for text in ANA:
        graph.invoke({"user": "ana", "said": text, "recalled": []})
    graph.invoke({"user": "bob", "said": BOB[0], "recalled": []})
    out = graph.invoke({"user": "ana", "said": "I am thinking about my cat Miso.", "recalled": []})
    assert out["recalled"][0] == "I am thinking about my cat Miso." and out["recalled"][1] == ANA[1]
    assert store.list_namespaces() == [("memories", "ana"), ("memories", "bob")]
    assert [i.value["content"] for i in store.search(("memories", "bob"))] == [BOB[0]]  # users stay apart


def test_langmem_memory_tools(model):
    pytest.importorskip("langmem")
    from langgraph.graph import END, START, StateGraph
    from langmem import create_manage_memory_tool, create_search_memory_tool

    store = EvoLangGraphStore(model, query_memory=False, fields=["content"])
    namespace = ("memories", "{langgraph_user_id}")
    manage = create_manage_memory_tool(namespace=namespace, store=store)
    search = create_search_memory_tool(namespace=namespace, store=store)
    ana = {"configurable": {"langgraph_user_id": "ana"}}
    for text in ANA:
        assert manage.invoke({"content": text, "action": "create"}, config=ana).startswith("created memory")
    manage.invoke({"content": BOB[0], "action": "create"}, config={"configurable": {"langgraph_user_id": "bob"}})
    found = json.loads(search.invoke({"query": "Which pet does Ana have?", "limit": 2}, config=ana))
    assert [m["value"]["content"] for m in found][0] == ANA[1] and len(found) == 2
    assert all(m["namespace"] == ["memories", "ana"] for m in found)
    memory_id = found[0]["key"]
    manage.invoke({"content": "Ana's cat is now called Tofu.", "action": "update", "id": memory_id}, config=ana)
    assert store.get(("memories", "ana"), memory_id).value == {"content": "Ana's cat is now called Tofu."}
    manage.invoke({"action": "delete", "id": memory_id}, config=ana)
    assert store.get(("memories", "ana"), memory_id) is None

    class Turn(TypedDict):
        query: str
        found: list[str]

    in_graph_search = create_search_memory_tool(namespace=namespace)  # no store: the graph's store is used

    def node(state: Turn) -> dict:
        return {"found": [m["value"]["content"] for m in json.loads(in_graph_search.invoke({"query": state["query"]}))]}

    builder = StateGraph(Turn)
    builder.add_node("search", node)
    builder.add_edge(START, "search")
    builder.add_edge("search", END)
    graph = builder.compile(store=store)
    out = graph.invoke(
        {"query": "Where does Bob live?", "found": []}, config={"configurable": {"langgraph_user_id": "bob"}}
    )
    assert out["found"] == [BOB[0]]


def test_the_langgraph_memory_example_runs(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    source = Path(__file__).resolve().parents[2] / "examples" / "langgraph_memory.py"
    spec = importlib.util.spec_from_file_location("langgraph_memory", source)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    recalled = example.main(["--path", str(tmp_path / "mem")])
    assert recalled[0] == "Last spring I moved to Oslo for a new job." and len(recalled) == 2
    assert "namespaces: [('memories', 'ana'), ('memories', 'bob')]" in capsys.readouterr().out
    assert (tmp_path / "mem").is_dir()


def test_a_search_does_not_wait_for_a_long_put_in_another_thread(model):
    import threading

    store = EvoLangGraphStore(model, query_memory=False, fields=["content"])
    store.put(("memories", "ana"), "a0", {"content": ANA[1]})
    notes = [f"Bob's note number {n} about his cello." for n in range(5000)]
    started = time.perf_counter()
    model.stream().add(notes[:20])
    rate = 20 / (time.perf_counter() - started)
    count = int(min(5000, max(100, 8.0 * rate)))  # about 8 s of embedding on this machine
    ops = [PutOp(("memories", "bob"), f"b{n}", {"content": text}) for n, text in enumerate(notes[:count])]
    writer = threading.Thread(target=store.batch, args=(ops,))
    writer.start()
    time.sleep(0.5)  # the writer is embedding by now
    started = time.perf_counter()
    found = store.search(("memories", "ana"), query="Which pet does Ana have?")
    elapsed = time.perf_counter() - started
    still_writing = writer.is_alive()
    writer.join()
    assert [i.key for i in found] == ["a0"]
    assert still_writing, f"the search ({elapsed:.1f} s) waited for the put of {count} items"
    assert len(store.search(("memories", "bob"), limit=count)) == count
