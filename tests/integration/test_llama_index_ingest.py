"""LlamaIndex ingest on real MiniLM weights: each node embedded once, no OpenAI default, one stream per document.

Forward passes are counted by wrapping the model's ``represent`` / ``evolve`` (the model stays real).
"""

from __future__ import annotations

import contextlib
import importlib.util

import numpy as np
import pytest
from llama_index.core import Document, Settings, StorageContext, VectorStoreIndex
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.llms import MockLLM
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import MetadataMode, TextNode

from evoembedding_core import EvoStream
from evoembedding_integrations.llama_index import EvoEmbedding, EvoStoreEmbedding, EvoVectorStore

FACTS = [
    "grew up in Porto by the sea.",
    "moved to Oslo for a nursing job.",
    "adopted a grey cat named Pixel.",
    "plays the cello in an orchestra.",
    "cooks grilled fish every Friday.",
]
DOCS = [Document(text=" ".join(f"{name} {fact}" for fact in FACTS), doc_id=name.lower()) for name in ("Ana", "Ben")]
SPLITTER = SentenceSplitter(chunk_size=32, chunk_overlap=0)


@contextlib.contextmanager
def counted(model):
    """Count the segments the model represents and evolves (the real methods still run)."""
    counts = {"represent": 0, "evolve": 0}
    represent, evolve = model.represent, model.evolve

    def counting_represent(memories, segments):
        counts["represent"] += len(segments)
        return represent(memories, segments)

    def counting_evolve(memories, segments):
        counts["evolve"] += len(segments)
        return evolve(memories, segments)

    model.represent, model.evolve = counting_represent, counting_evolve
    try:
        yield counts
    finally:
        del model.represent, model.evolve


def has_module(name):
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def storage(store):
    return StorageContext.from_defaults(vector_store=store)


def test_index_with_store_embed_model_represents_each_node_once(minilm_model):
    nodes = SPLITTER.get_nodes_from_documents(DOCS)
    assert len(nodes) >= 4
    store = EvoVectorStore(model=minilm_model)
    assert isinstance(store.embed_model, EvoStoreEmbedding)
    with counted(minilm_model) as counts:
        index = VectorStoreIndex(nodes=nodes, storage_context=storage(store), embed_model=store.embed_model)
    assert counts == {"represent": len(nodes), "evolve": len(nodes)}
    assert len(store.store) == len(nodes)
    # a later insert is read once too, into its own stream
    with counted(minilm_model) as counts:
        index.insert(Document(text="Chen studies physics in Toronto.", doc_id="chen"))
    assert counts == {"represent": 1, "evolve": 1} and sorted(store.store.streams()) == ["ana", "ben", "chen"]
    assert index.as_retriever(similarity_top_k=1).retrieve("Who has a cat called Pixel?")[0].node.ref_doc_id in (
        "ana",
        "ben",
    )


def test_async_index_and_chat_engines_need_no_vector_from_the_embed_model(minilm_model):
    nodes = SPLITTER.get_nodes_from_documents(DOCS)
    store = EvoVectorStore(model=minilm_model)
    with counted(minilm_model) as counts:
        index = VectorStoreIndex(
            nodes=nodes, storage_context=storage(store), embed_model=store.embed_model, use_async=True
        )
    assert counts["represent"] == len(nodes)
    for mode in ("context", "condense_plus_context"):
        response = index.as_chat_engine(chat_mode=mode, llm=MockLLM(), similarity_top_k=1).chat("Who cooks fish?")
        assert len(response.source_nodes) == 1


def test_an_evo_embedding_as_embed_model_is_the_costly_path_and_warns(minilm_model):
    nodes = SPLITTER.get_nodes_from_documents(DOCS)
    store = EvoVectorStore(model=minilm_model)
    with counted(minilm_model) as counts, pytest.warns(UserWarning, match="embed_model=store.embed_model"):
        VectorStoreIndex(nodes=nodes, storage_context=storage(store), embed_model=EvoEmbedding(minilm_model))
    assert counts["represent"] == 2 * len(nodes)  # the embedder's pass, then the store's own


def test_ingestion_pipeline_writing_to_the_store_represents_each_node_once(minilm_model):
    store = EvoVectorStore(model=minilm_model)
    # the pipeline writes only nodes that carry an embedding: store.embed_model marks them, computing nothing
    pipeline = IngestionPipeline(transformations=[SPLITTER, store.embed_model], vector_store=store)
    with counted(minilm_model) as counts:
        nodes = pipeline.run(documents=DOCS)
    assert counts["represent"] == len(nodes) == len(store.store) >= 4
    index = VectorStoreIndex.from_vector_store(store, embed_model=store.embed_model)
    assert index.as_retriever(similarity_top_k=1).retrieve("Who moved to Oslo?")[0].node.ref_doc_id in ("ana", "ben")


def test_from_documents_without_embed_model_argument(minilm_model, monkeypatch):
    monkeypatch.setattr(Settings, "_embed_model", None)  # restored after the test
    store = EvoVectorStore(model=minilm_model)
    if not has_module("llama_index.embeddings.openai"):
        # LlamaIndex's own default: no embed model anywhere means OpenAI
        with pytest.raises(ImportError, match="llama-index-embeddings-openai"):
            VectorStoreIndex.from_documents(DOCS, storage_context=storage(store))
    Settings.embed_model = store.embed_model  # LlamaIndex's documented global default
    with counted(minilm_model) as counts:
        index = VectorStoreIndex.from_documents(DOCS, storage_context=storage(store))
    assert counts["represent"] == len(store.store) == 2  # one node per (short) document
    hits = index.as_retriever(similarity_top_k=2).retrieve("Who cooks fish on Fridays?")
    assert len(hits) == 2 and hits[0].score >= hits[1].score
    response = index.as_query_engine(llm=MockLLM(), similarity_top_k=1).query("Who adopted a cat?")
    assert len(response.source_nodes) == 1
    assert store.embed_model.get_text_embedding_batch(["a", "b"]) == [[], []]  # placeholders: the store embeds
    with pytest.raises(ValueError, match="use EvoEmbedding"):  # a caller that needs real query vectors is told so
        store.embed_model.get_query_embedding("anything")


def test_documents_go_to_their_own_streams(minilm_model):
    store = EvoVectorStore(model=minilm_model)
    VectorStoreIndex.from_documents(
        DOCS, storage_context=storage(store), embed_model=store.embed_model, transformations=[SPLITTER]
    )
    assert store.store.streams() == ["ana", "ben"]
    for doc_id in ("ana", "ben"):
        nodes = store.get_nodes(filters=None, node_ids=store.store.ids(doc_id))
        assert len(nodes) >= 2 and {n.ref_doc_id for n in nodes} == {doc_id}
        # each document's vectors are a fresh read of that document alone: the other one is never in its memory
        alone = EvoStream(minilm_model).add([n.get_content(metadata_mode=MetadataMode.NONE) for n in nodes])
        assert np.allclose(store.store.vectors([n.node_id for n in nodes]), alone, atol=1e-5)
    # nodes without a document share the "default" stream
    store.add([TextNode(text="A loose note about the weather.")])
    assert store.store.streams() == ["ana", "ben", "default"]
