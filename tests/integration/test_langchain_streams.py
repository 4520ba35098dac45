"""LangChain workflows as a user runs them: one stream per source, the indexing API with an edited
document, options through from_texts / from_documents, EvoEmbeddings in a third-party store,
threshold retrievers, and stream filters."""

from __future__ import annotations

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.indexing import InMemoryRecordManager, index
from langchain_core.vectorstores import InMemoryVectorStore

from evoembedding_integrations.langchain import EvoEmbeddings, EvoVectorStore
from evoembedding_integrations.langchain.vectorstores import cosine_relevance, fused_relevance
from evoembedding_integrations.store import resolve_model

NOTES = ["Ana grew up in Porto.", "Ana moved to Oslo last spring.", "Ana works as a nurse in Oslo."]
PETS = ["Miso the cat sleeps on the sofa all afternoon.", "Cats purr when they are content and relaxed."]
OTHER = ["The train to Porto leaves at nine in the morning.", "Quarterly revenue grew by twelve percent."]


@pytest.fixture(scope="module")
def model():
    return resolve_model()


def chunks(source: str, texts: list[str]) -> list[Document]:
    """What a splitter with add_start_index=True makes of a file: chunks with source and start_index."""
    out, start = [], 0
    for text in texts:
        out.append(Document(page_content=text, metadata={"source": source, "start_index": start}))
        start += len(text) + 1
    return out


def fresh(model, texts: list[str]) -> np.ndarray:
    return model.stream().add(texts)


def stream_vectors(vs: EvoVectorStore, stream_id: str) -> tuple[list[str], np.ndarray]:
    ids = vs.store.ids(stream_id)
    return [r.text for r in vs.store.get(ids)], vs.store.vectors(ids)


def test_from_documents_reads_each_source_in_its_own_stream(model):
    docs = chunks("notes.md", NOTES) + chunks("pets.md", PETS)
    vs = EvoVectorStore.from_documents(docs)  # no embedding argument: the default model
    assert vs.store.streams() == ["notes.md", "pets.md"]
    for source, texts in (("notes.md", NOTES), ("pets.md", PETS)):
        got_texts, vectors = stream_vectors(vs, source)
        assert got_texts == texts
        np.testing.assert_allclose(vectors, fresh(model, texts), atol=1e-5)  # not read over the other file
    hits = vs.similarity_search("cat", k=5, filter={"stream_id": "pets.md"})
    assert {d.page_content for d in hits} == set(PETS)


def test_stream_precedence_explicit_id_key_and_callable(model):
    vs = EvoVectorStore(model, stream_key="user")
    vs.add_documents(
        [
            Document(page_content="a", metadata={"user": "ana", "source": "x.md"}),
            Document(page_content="b", metadata={"user": "ana", "stream_id": "chat-7"}),
            Document(page_content="c", metadata={"source": "x.md"}),
        ],
        ids=["a", "b", "c"],
    )
    assert {r.id: r.stream_id for r in vs.store.get(["a", "b", "c"])} == {"a": "ana", "b": "chat-7", "c": "default"}
    by_length = EvoVectorStore(model, stream_key=lambda doc: f"len-{len(doc.page_content)}")
    by_length.add_texts(["hi", "hey", "yo"], ids=["1", "2", "3"])
    assert by_length.store.streams() == ["len-2", "len-3"]
    assert by_length.stream_of(Document(page_content="abc")) == "len-3"
    calls = []
    plain = EvoVectorStore(model, stream_key=None)
    plain.add_documents(chunks("notes.md", NOTES[:1]), progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1] == (1, 1)
    assert plain.store.streams() == ["default"]
    with pytest.raises(TypeError, match="stream_key"):
        EvoVectorStore(model, stream_key=3)
    with pytest.raises(ValueError, match="reread"):
        EvoVectorStore(model, reread="sometimes")


def test_index_with_an_edited_document_equals_a_fresh_read(model):
    vs = EvoVectorStore(model, query_memory=True)  # queries read the stream's memory: what it holds shows
    manager = InMemoryRecordManager(namespace="evo/test")
    manager.create_schema()
    options = {"cleanup": "incremental", "source_id_key": "source", "key_encoder": "sha256"}
    first = index(chunks("notes.md", NOTES) + chunks("pets.md", PETS), manager, vs, **options)
    assert first["num_added"] == 5
    edited = ["Ana grew up in Braga.", *NOTES[1:]]  # the first chunk changes (same length), the others do not
    second = index(chunks("notes.md", edited), manager, vs, **options)
    assert (second["num_added"], second["num_deleted"], second["num_skipped"]) == (1, 1, 2)
    texts, vectors = stream_vectors(vs, "notes.md")
    assert texts == edited  # chunk order restored from start_index
    np.testing.assert_allclose(vectors, fresh(model, edited), atol=1e-5)  # the old text is not in memory
    reference = model.stream()
    reference.add(edited)
    np.testing.assert_allclose(vs.store.encode_query("Where?", "notes.md"), reference.encode_query("Where?"), atol=1e-5)
    _, pets = stream_vectors(vs, "pets.md")
    np.testing.assert_allclose(pets, fresh(model, PETS), atol=1e-5)  # the other document is untouched
    assert len(vs.store) == 5


def test_re_adding_a_documents_ids_rereads_its_stream(model):
    vs = EvoVectorStore(model)
    ids = ["n0", "n1", "n2"]
    vs.add_documents(chunks("notes.md", NOTES), ids=ids)
    vs.add_documents(chunks("pets.md", PETS), ids=["p0", "p1"])
    edited = [NOTES[0], "Ana moved to Bergen last spring.", NOTES[2]]
    vs.add_documents(chunks("notes.md", edited), ids=ids)
    texts, vectors = stream_vectors(vs, "notes.md")
    assert texts == edited and vs.store.ids("notes.md") == ids
    np.testing.assert_allclose(vectors, fresh(model, edited), atol=1e-5)
    with pytest.raises(ValueError):  # a rejected re-add changes nothing
        vs.add_documents([Document(page_content=" ", metadata={"source": "notes.md"})], ids=["n0"])
    assert stream_vectors(vs, "notes.md")[0] == edited
    vs.delete(["n1"])
    texts, vectors = stream_vectors(vs, "notes.md")
    np.testing.assert_allclose(vectors, fresh(model, [edited[0], edited[2]]), atol=1e-5)
    conversation = EvoVectorStore(model)  # a stream given by keyword keeps its memory on delete
    conversation.add_texts(NOTES, ids=ids, stream_id="ana")
    before = conversation.store.vectors(["n2"])
    conversation.delete(["n1"])
    np.testing.assert_allclose(conversation.store.vectors(["n2"]), before, atol=1e-6)
    forgetting = EvoVectorStore(model, reread="always")  # ... unless every edited stream is re-read
    forgetting.add_texts(NOTES, ids=ids, stream_id="ana")
    forgetting.delete(["n1"])
    np.testing.assert_allclose(forgetting.store.vectors(["n0", "n2"]), fresh(model, [NOTES[0], NOTES[2]]), atol=1e-5)


def test_from_texts_and_from_documents_pass_every_option_through(model):
    vs = EvoVectorStore.from_texts(NOTES, query_memory=False, hybrid=True, stream_id="ana", reread="never")
    assert (vs.store.query_memory, vs.store.hybrid, vs.reread, vs.store.streams()) == (False, True, "never", ["ana"])
    docs = EvoVectorStore.from_documents(chunks("a.md", NOTES[:1]), model, query_memory=False, index="hnsw")
    assert (docs.store.query_memory, docs.store.index_kind, docs.store.streams()) == (False, "hnsw", ["a.md"])
    with pytest.raises(TypeError):
        EvoVectorStore.from_texts(NOTES, model, query_mem=False)  # a misspelt option is an error, not dropped


async def test_async_from_documents_needs_no_embedding(model):
    vs = await EvoVectorStore.afrom_documents(chunks("a.md", NOTES), hybrid=True)
    assert vs.store.hybrid and vs.store.streams() == ["a.md"]
    assert (await vs.asimilarity_search("Where does Ana live?", k=1))[0].metadata["source"] == "a.md"


def test_evo_embeddings_in_a_third_party_store_one_stream_per_source(model):
    emb = EvoEmbeddings(model, query_memory=False)
    store = InMemoryVectorStore(emb)
    docs = chunks("notes.md", NOTES) + chunks("pets.md", PETS)
    ids = emb.add_documents_to(store, docs)
    assert len(ids) == 5 and set(emb._pool.stream_ids()) == {"notes.md", "pets.md"}
    assert emb.stream_id == "default"
    stored = store.get_by_ids(ids)
    vectors = {d.page_content: store.store[d.id]["vector"] for d in stored}
    np.testing.assert_allclose([vectors[t] for t in PETS], fresh(model, PETS), atol=1e-5)
    np.testing.assert_allclose(
        emb.stream("notes.md").embed_query("Where?"), model.stream().encode_query("Where?"), atol=1e-5
    )
    assert store.similarity_search("What is the cat called?", k=1)[0].page_content in PETS
    with pytest.raises(TypeError, match="query_memory"):
        EvoEmbeddings(model, query_memory="no")


def test_threshold_retriever_keeps_the_relevant_documents(model):
    # BM25 statistics are per stream: a third chunk without "cat" gives the word weight in pets.md
    docs = chunks("pets.md", [*PETS, "We repainted the kitchen in May."])
    docs += chunks("train.md", OTHER[:1]) + chunks("report.md", OTHER[1:])
    vs = EvoVectorStore.from_documents(docs, model, hybrid=False)
    scored = vs.similarity_search_with_relevance_scores("Tell me about my cat", k=5)
    assert all(0.0 <= r <= 1.0 for _, r in scored)
    raw = vs.similarity_search_with_score("Tell me about my cat", k=5)
    assert [(d.id, r) for d, r in scored] == [(d.id, cosine_relevance(s)) for d, s in raw]
    retriever = vs.as_retriever(search_type="similarity_score_threshold", search_kwargs={"score_threshold": 0.25})
    assert {d.page_content for d in retriever.invoke("Tell me about my cat")} == set(PETS)
    hybrid = EvoVectorStore.from_documents(docs, model)  # hybrid: the default
    fused = hybrid.similarity_search_with_relevance_scores("Tell me about my cat", k=5)
    assert fused[0][0].page_content == PETS[0] and fused[0][1] > 0.95  # first in both rankings
    assert all(r < 0.6 for _, r in fused[1:])
    strict = hybrid.as_retriever(search_type="similarity_score_threshold", search_kwargs={"score_threshold": 0.9})
    assert [d.page_content for d in strict.invoke("Tell me about my cat")] == [PETS[0]]
    assert cosine_relevance(-0.3) == 0.0 and cosine_relevance(0.4) == 0.4 and fused_relevance(2 / 61) == 1.0


def test_filter_on_stream_id_works_when_the_stream_was_given_by_keyword(model):
    vs = EvoVectorStore(model)
    vs.add_texts(NOTES, stream_id="ana", ids=["a0", "a1", "a2"], metadatas=[{"n": i} for i in range(3)])
    vs.add_texts(PETS, stream_id="miso", ids=["m0", "m1"])
    assert {d.id for d in vs.similarity_search("x", k=9, filter={"stream_id": "ana"})} == {"a0", "a1", "a2"}
    assert {d.id for d in vs.similarity_search("x", k=9, filter={"stream_id": {"$in": ["miso"]}})} == {"m0", "m1"}
    assert [d.id for d in vs.similarity_search("x", k=9, filter={"stream_id": {"$eq": "ana"}, "n": 2})] == ["a2"]
    assert vs.similarity_search("x", k=9, filter={"stream_id": "ana"}, stream_id="miso") == []
    assert len(vs.max_marginal_relevance_search("x", k=2, filter={"stream_id": "miso"})) == 2
    vector = vs.store.encode_query("cat", "miso").tolist()
    assert {d.id for d in vs.similarity_search_by_vector(vector, k=9, filter={"stream_id": "miso"})} == {"m0", "m1"}
