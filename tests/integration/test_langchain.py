"""LangChain classes beyond the standard suites: order-aware embeddings, streams, persistence, retriever, rerank."""

from __future__ import annotations

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.vectorstores import InMemoryVectorStore

from evoembedding_integrations.langchain import EvoEmbeddings, EvoRerank, EvoRetriever, EvoVectorStore
from evoembedding_integrations.store import ModelMismatchError, resolve_model

TURNS = ["Ana: I grew up in Porto.", "Ana: Last spring I moved to Oslo.", "Ana: My cat is called Miso."]


@pytest.fixture(scope="module")
def model():
    return resolve_model()


def test_embeddings_follow_the_stream_order(model):
    emb = EvoEmbeddings(model, query_memory=True)
    reference = model.stream()
    expected = reference.add(TURNS)
    got = emb.embed_documents(TURNS[:2]) + emb.embed_documents(TURNS[2:])
    assert isinstance(got[0][0], float)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(emb.embed_query("Where?"), reference.encode_query("Where?"), atol=1e-5)
    default = EvoEmbeddings(model)  # queries over an empty memory
    default.embed_documents(TURNS)
    np.testing.assert_allclose(default.embed_query("Where?"), reference.encode_query("Where?", memory=False), atol=1e-5)
    fresh = emb.stream("other").embed_documents([TURNS[2]])[0]
    assert emb.stream_id == "other" and not np.allclose(fresh, got[2], atol=1e-4)  # same text, no history
    emb.stream("default").reset()
    np.testing.assert_allclose(emb.embed_documents([TURNS[2]])[0], fresh, atol=1e-5)


def test_embeddings_work_in_another_vector_store(model):
    store = InMemoryVectorStore(EvoEmbeddings(model))
    store.add_texts(TURNS)
    assert store.similarity_search("What is the name of the cat?", k=1)[0].page_content == TURNS[2]


def test_vector_store_streams_filters_and_persistence(model, tmp_path):
    store = EvoVectorStore(model)
    store.add_texts(TURNS, ids=["a", "b", "c"], stream_id="ana")
    store.add_documents(
        [Document(page_content="Bob: my dog is Rex.", metadata={"stream_id": "bob", "pet": True})], ids=["d"]
    )
    assert store.store.streams() == ["ana", "bob"] and store.store.get("d")[0].stream_id == "bob"
    assert [d.id for d in store.similarity_search("pet", k=4, stream_id="bob")] == ["d"]
    assert [d.id for d in store.similarity_search("pet", k=4, filter={"pet": True})] == ["d"]
    scored = store.similarity_search_with_score("Where does Ana live now?", k=4)
    assert len(scored) == 4 and scored[0][1] >= scored[-1][1] and scored[0][0].id in {"a", "b", "c", "d"}
    relevance = store.similarity_search_with_relevance_scores("Where does Ana live now?", k=2)
    assert all(0 <= r <= 1 for _, r in relevance)
    assert len(store.max_marginal_relevance_search("Ana", k=2, fetch_k=4)) == 2
    assert store.as_retriever(search_kwargs={"k": 1}).invoke("dog")[0].id == "d"
    store.save_local(tmp_path / "evo")
    loaded = EvoVectorStore.load_local(tmp_path / "evo", EvoEmbeddings(model))
    assert [(d.id, s) for d, s in loaded.similarity_search_with_score("cat", k=4)] == [
        (d.id, s) for d, s in store.similarity_search_with_score("cat", k=4)
    ]
    with pytest.raises(ValueError, match="ids"):
        store.delete()


def test_plain_vector_store_persists_without_pickle(tmp_path):
    emb = DeterministicFakeEmbedding(size=8)
    store = EvoVectorStore.from_texts(["x", "y"], emb, metadatas=[{"n": 1}, {"n": 2}], ids=["1", "2"])
    store.save_local(tmp_path / "plain")
    assert not any(p.suffix in (".pkl", ".pickle") for p in (tmp_path / "plain").iterdir())
    with pytest.raises(ModelMismatchError, match="embeddings="):
        EvoVectorStore.load_local(tmp_path / "plain")
    loaded = EvoVectorStore.load_local(tmp_path / "plain", emb)
    assert loaded.similarity_search("y", k=1) == [Document(id="2", page_content="y", metadata={"n": 2})]
    assert loaded.embeddings is emb


def test_retriever_from_messages_returns_ids_and_scores(model):
    retriever = EvoRetriever(
        model=model,
        messages=[
            HumanMessage("I grew up in Porto."),
            AIMessage("Nice city!"),
            {"role": "user", "content": "Last spring I moved to Oslo."},
        ],
    )
    assert (
        retriever.vectorstore.store.get(retriever.vectorstore.store.ids())[0].text
        == "User: I grew up in Porto.\nAssistant: Nice city!"
    )
    docs = retriever.invoke("Where do I live now?")
    assert len(docs) == 2 and all(d.id and isinstance(d.metadata["score"], float) for d in docs)
    assert docs[0].metadata["score"] >= docs[1].metadata["score"]
    assert len(retriever.invoke("Where do I live now?", k=1)) == 1
    retriever.add_texts(["Tagged fact."], metadatas=[{"kind": "fact"}])
    assert [d.page_content for d in retriever.invoke("x", filter={"kind": "fact"})] == ["Tagged fact."]
    assert EvoRetriever(model=model).invoke("anything") == []


def test_rerank_streams_candidates_in_order(model):
    docs = [Document(page_content=t, id=str(i)) for i, t in enumerate(TURNS)]
    reranked = EvoRerank(model=model, top_n=2).compress_documents(docs, "Where does Ana live now?")
    stream = model.stream()
    scores = stream.add(TURNS) @ stream.encode_query("Where does Ana live now?")
    assert [d.id for d in reranked] == [str(i) for i in np.argsort(-scores)[:2]]
    assert [d.metadata["relevance_score"] for d in reranked] == pytest.approx(sorted(scores)[::-1][:2], abs=1e-5)
    assert docs[0].metadata == {}  # inputs are not mutated
    retriever = EvoRetriever(model=model, texts=TURNS, k=3)
    chain = retriever | RunnableLambda(lambda found: EvoRerank(model=model, top_n=1).compress_documents(found, "cat"))
    assert len(chain.invoke("cat")) == 1


def test_vector_store_can_read_queries_without_memory(model):
    store = EvoVectorStore(model, query_memory=False, hybrid=False)
    store.add_texts(TURNS, ids=["t0", "t1", "t2"])
    query = model.stream().encode_query("Where does Ana live now?")  # empty memory
    hits = store.similarity_search_with_score("Where does Ana live now?", k=3)
    vectors = dict(zip(["t0", "t1", "t2"], store.store.vectors(["t0", "t1", "t2"])))
    for doc, score in hits:
        assert score == pytest.approx(float(vectors[doc.id] @ query), abs=1e-5)


def test_vector_store_hybrid_search_and_relevance(model, tmp_path):
    store = EvoVectorStore(model, hybrid=True)
    store.add_texts(TURNS, ids=["t0", "t1", "t2"])
    hybrid = store.similarity_search_with_score("Where does Ana live now?", k=3)
    expected = store.store.search("Where does Ana live now?", k=3)
    assert [(d.id, s) for d, s in hybrid] == [(h.id, h.score) for h in expected]
    relevance = store.similarity_search_with_relevance_scores("Where does Ana live now?", k=3)
    assert all(0 < r <= 1 for _, r in relevance)
    assert relevance[0][1] == pytest.approx(hybrid[0][1] * 61 / 2)
    store.save_local(tmp_path / "h")
    loaded = EvoVectorStore.load_local(
        tmp_path / "h", EvoEmbeddings(model), hybrid=True, allow_dangerous_deserialization=True
    )
    assert [d.id for d in loaded.similarity_search("Where does Ana live now?", k=3)] == [d.id for d, _ in hybrid]
    assert EvoVectorStore.load_local(tmp_path / "h", EvoEmbeddings(model)).store.hybrid  # the default
    assert not EvoVectorStore.load_local(tmp_path / "h", EvoEmbeddings(model), hybrid=False).store.hybrid


def test_one_stream_pool_serves_both_embedders(model):
    from llama_index.core.base.embeddings.base import BaseEmbedding

    from evoembedding_integrations.llama_index import EvoEmbedding
    from evoembedding_integrations.streams import StreamPool

    pool = StreamPool(model)
    vectors = pool.add("ana", TURNS[:2])
    np.testing.assert_allclose(vectors, model.stream().add(TURNS[:2]), atol=1e-5)
    np.testing.assert_allclose(pool.encode_query("nobody", "Where?"), model.stream().encode_query("Where?"), atol=1e-5)
    assert pool.stream_ids() == ["ana"] and "nobody" not in pool  # reading a stream does not create it
    pool.reset("ana")
    assert len(pool) == 0
    assert isinstance(EvoEmbeddings(model)._pool, StreamPool)
    llama = EvoEmbedding(model)
    assert isinstance(llama, BaseEmbedding) and isinstance(llama._pool, StreamPool)


def test_importing_the_store_loads_no_framework_and_no_torch():
    import subprocess
    import sys

    code = (
        "import sys, evoembedding_integrations, evoembedding_integrations.store\n"
        "heavy = ('langchain_core', 'llama_index', 'torch', 'peft')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
