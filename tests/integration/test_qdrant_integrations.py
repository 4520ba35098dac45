"""The framework classes take a Qdrant-backed store unchanged: the same calls give the same answers
as over an embedded store, with the store searching in the database (Qdrant's local mode, real)."""

from __future__ import annotations

import pytest

qdrant_client = pytest.importorskip("qdrant_client")

from langchain_core.documents import Document  # noqa: E402
from langgraph.store.base import BaseStore  # noqa: E402
from llama_index.core.schema import TextNode  # noqa: E402
from llama_index.core.vector_stores.types import VectorStoreQuery  # noqa: E402

from evoembedding_integrations import EvoStore  # noqa: E402
from evoembedding_integrations.langchain import EvoVectorStore as LangChainStore  # noqa: E402
from evoembedding_integrations.langgraph import EvoLangGraphStore  # noqa: E402
from evoembedding_integrations.llama_index import EvoVectorStore as LlamaIndexStore  # noqa: E402
from evoembedding_integrations.memory import EvoAgentMemory  # noqa: E402
from evoembedding_integrations.store.qdrant_backend import open_qdrant_store  # noqa: E402

TURNS = [
    "Ana: I grew up in Porto, by the river.",
    "Bob: My dog Rex hates the rain.",
    "Ana: Last spring I moved to Oslo for work.",
    "Bob: I started piano lessons on Tuesdays.",
    "Ana: My sister is a nurse in Lisbon.",
]
QUESTIONS = ["Where does Ana live now?", "What is the name of Bob's dog?", "Who is a nurse?"]


@pytest.fixture
def stores(minilm_model, tmp_path):
    """``make(**options)``: an embedded store and a Qdrant store searching in the database, alike."""
    clients = []

    def make(**options):
        client = qdrant_client.QdrantClient(path=str(tmp_path / f"q{len(clients)}"))
        clients.append(client)
        database = open_qdrant_store(client, "chats", search="database", model=minilm_model, **options)
        return EvoStore(minilm_model, **options), database

    yield make
    for client in clients:
        client.close()


def test_langchain_vector_store_over_qdrant(stores):
    embedded, database = stores(hybrid=False)
    answers = []
    for store in (embedded, database):
        vs = LangChainStore(store=store)
        docs = [Document(page_content=t, metadata={"n": n}) for n, t in enumerate(TURNS)]
        vs.add_documents(docs, ids=[f"t{n}" for n in range(len(TURNS))])
        answers.append(
            [[(d.id, d.page_content, d.metadata) for d in vs.similarity_search(q, k=2)] for q in QUESTIONS]
            + [[d.id for d in vs.similarity_search(QUESTIONS[0], k=3, filter={"n": {"$gte": 2}})]]
        )
    assert answers[0] == answers[1]
    assert answers[1][-1] and all(int(i[1:]) >= 2 for i in answers[1][-1])


def test_llama_index_vector_store_over_qdrant(stores):
    embedded, database = stores(hybrid=False)
    answers = []
    for store in (embedded, database):
        vs = LlamaIndexStore(store=store)
        vs.add([TextNode(text=t, id_=f"n{n}") for n, t in enumerate(TURNS)])
        result = [vs.query(VectorStoreQuery(query_str=q, similarity_top_k=2)) for q in QUESTIONS]
        answers.append([([n.node_id for n in r.nodes], [round(s, 4) for s in r.similarities]) for r in result])
        vs.delete_nodes(["n0"])
        answers.append(sorted(store.ids()))
    assert answers[:2] == answers[2:]
    assert "n0" not in answers[-1] and len(answers[-1]) == len(TURNS) - 1


def test_langgraph_store_over_qdrant(stores):
    embedded, database = stores(hybrid=False)
    answers = []
    for store in (embedded, database):
        graph_store = EvoLangGraphStore(store=store, fields=["content"])
        assert isinstance(graph_store, BaseStore)
        for n, turn in enumerate(TURNS):
            graph_store.put(("chats", "ana"), f"m{n}", {"content": turn})
        answers.append(
            [[(i.key, i.value["content"]) for i in graph_store.search(("chats",), query=q, limit=2)] for q in QUESTIONS]
            + [graph_store.get(("chats", "ana"), "m2").value]
        )
    assert answers[0] == answers[1]


def test_agent_memory_over_qdrant_with_per_user_word_statistics(stores):
    embedded, database = stores(lexical_scope="stream")  # what EvoAgentMemory uses: hybrid, per-user BM25
    answers = []
    for store in (embedded, database):
        memory = EvoAgentMemory(store=store)
        memory.add(TURNS[:3], user_id="ana")
        memory.add(TURNS[3:], user_id="bob")
        answers.append(
            [
                [(m["memory"], m["user_id"]) for m in memory.search(q, user_id=u, k=2)]
                for q in QUESTIONS
                for u in ("ana", "bob")
            ]
        )
    assert answers[0] == answers[1]
    assert all(user == "ana" for hits in answers[1][0::2] for _, user in hits)  # each user sees only their own
