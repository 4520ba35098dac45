"""LlamaIndex integration on real MiniLM weights: embedder, vector store, index + query engine, retriever, rerank."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.llms import MockLLM
from llama_index.core.schema import NodeRelationship, NodeWithScore, QueryBundle, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

from evoembedding_core import EvoStream
from evoembedding_integrations.llama_index import EvoEmbedding, EvoRerank, EvoRetriever, EvoVectorStore
from evoembedding_integrations.store import EvoStore, ModelMismatchError

DOCS = [
    Document(
        text="Ana grew up in Porto. Last year she moved to Oslo for a nursing job.",
        doc_id="ana",
        metadata={"person": "ana", "year": 2020, "tags": ["travel", "work"]},
    ),
    Document(
        text="Ben is a chef in Lyon. Every Friday he cooks grilled fish.",
        doc_id="ben",
        metadata={"person": "ben", "year": 2022, "tags": ["food"]},
    ),
    Document(
        text="Chen studies physics in Toronto and plays the cello.",
        doc_id="chen",
        metadata={"person": "chen", "year": 2023, "tags": ["music", "study"]},
    ),
]


def node(text, node_id, doc_id, **metadata):
    n = TextNode(text=text, id_=node_id, metadata=metadata)
    n.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=doc_id)
    return n


NODES = [
    node("Mia adopted a grey cat named Pixel.", "m1", "mia", topic="pets", rank=1),
    node("Mia works as a train driver in Bern.", "m2", "mia", topic="work", rank=2),
    node("Tom plays the trumpet in a jazz band.", "t1", "tom", topic="music", rank=3),
    node("Tom's dog Rex loves the beach.", "t2", "tom", topic="pets", rank=4),
]


@pytest.fixture()
def store(minilm_model):
    vs = EvoVectorStore(model=minilm_model)
    vs.add([n.model_copy() for n in NODES])
    return vs


def ids(result):
    return [n.node_id for n in result.nodes]


def query(vs, text, k=4, **kwargs):
    return vs.query(VectorStoreQuery(query_str=text, similarity_top_k=k, **kwargs))


def test_index_retriever_and_query_engine_answer_from_the_right_document(minilm_model):
    vs = EvoVectorStore(model=minilm_model)
    index = VectorStoreIndex.from_documents(
        DOCS, storage_context=StorageContext.from_defaults(vector_store=vs), embed_model=vs.embed_model
    )
    hits = index.as_retriever(similarity_top_k=2).retrieve("Which city does Ana live in now?")
    assert hits[0].node.ref_doc_id == "ana" and hits[0].score > hits[1].score
    response = index.as_query_engine(llm=MockLLM(), similarity_top_k=1).query("What does Ben cook on Fridays?")
    assert [n.node.ref_doc_id for n in response.source_nodes] == ["ben"]
    assert "grilled fish" in str(response)  # MockLLM echoes the prompt, which holds the retrieved context
    assert sorted(vs.store.streams()) == ["ana", "ben", "chen"]


def test_query_scores_are_cosines_against_each_documents_memory(minilm_model):
    store = EvoVectorStore(store=EvoStore(minilm_model, query_memory=True, hybrid=False))  # the method as specified
    store.add([n.model_copy() for n in NODES])
    result = query(store, "Who adopted a cat called Pixel?")
    assert ids(result)[0] == "m1"
    assert result.similarities == sorted(result.similarities, reverse=True)
    # the score of m1 is its stored vector against the query encoded with the "mia" stream's memory
    mia = EvoStream(minilm_model)
    vectors = mia.add([n.text for n in NODES[:2]])
    assert result.similarities[0] == pytest.approx(
        float(vectors[0] @ mia.encode_query("Who adopted a cat called Pixel?")), abs=1e-5
    )
    assert result.nodes[0].get_content() == NODES[0].text and result.nodes[0].metadata["topic"] == "pets"


def test_doc_ids_node_ids_and_metadata_filters(store):
    assert set(ids(query(store, "pets", doc_ids=["tom"]))) == {"t1", "t2"}
    assert ids(query(store, "pets", node_ids=["m2", "t1"], k=4)) in (["m2", "t1"], ["t1", "m2"])
    eq = MetadataFilters(filters=[MetadataFilter(key="topic", value="pets")])
    assert set(ids(query(store, "animal", filters=eq))) == {"m1", "t2"}
    gt_or = MetadataFilters(
        filters=[
            MetadataFilter(key="rank", value=3, operator=FilterOperator.GTE),
            MetadataFilter(key="topic", value="work"),
        ],
        condition=FilterCondition.OR,
    )
    assert set(ids(query(store, "x y", filters=gt_or))) == {"m2", "t1", "t2"}
    nested = MetadataFilters(
        filters=[
            MetadataFilter(key="topic", value=["pets", "music"], operator=FilterOperator.IN),
            MetadataFilters(
                filters=[MetadataFilter(key="rank", value=2, operator=FilterOperator.LT)], condition=FilterCondition.NOT
            ),
        ]
    )
    assert set(ids(query(store, "x y", filters=nested))) == {"t1", "t2"}
    text = MetadataFilters(
        filters=[MetadataFilter(key="topic", value="MUS", operator=FilterOperator.TEXT_MATCH_INSENSITIVE)]
    )
    assert ids(query(store, "band", filters=text)) == ["t1"]
    with pytest.raises(TypeError, match="needs a list"):
        query(
            store,
            "x",
            filters=MetadataFilters(filters=[MetadataFilter(key="rank", value=1, operator=FilterOperator.IN)]),
        )


def test_mmr_returns_relevant_then_diverse(store):
    plain = ids(query(store, "Mia", k=2))
    mmr = ids(query(store, "Mia", k=2, mode=VectorStoreQueryMode.MMR, mmr_threshold=0.0))
    assert len(mmr) == 2 and mmr[0] == plain[0]
    with pytest.raises(ValueError, match="query modes"):
        query(store, "Mia", mode=VectorStoreQueryMode.SVM)


def test_hybrid_mode_fuses_with_bm25(store):
    result = query(
        store,
        "Which animal is Pixel?",
        k=3,
        mode=VectorStoreQueryMode.HYBRID,
        filters=MetadataFilters(filters=[MetadataFilter(key="topic", value="pets")]),
    )
    expected = store.store.search("Which animal is Pixel?", k=3, hybrid=True, filter={"topic": "pets"})
    assert ids(result) == [h.id for h in expected] and ids(result)[0] == "m1"  # "Pixel" only in m1
    assert result.similarities == [h.score for h in expected]
    with pytest.raises(ValueError, match="need query_str"):
        store.query(VectorStoreQuery(query_embedding=[0.1] * 384, mode=VectorStoreQueryMode.HYBRID))


def test_delete_by_document_delete_nodes_get_nodes_clear(store):
    store.delete("tom")
    assert [n.node_id for n in store.get_nodes()] == ["m1", "m2"] and "tom" not in store.store.streams()
    store.delete_nodes(filters=MetadataFilters(filters=[MetadataFilter(key="topic", value="work")]))
    assert [n.node_id for n in store.get_nodes()] == ["m1"]
    store.delete_nodes(node_ids=["nope"])  # missing ids are ignored
    assert [n.text for n in store.get_nodes(node_ids=["m1"])] == [NODES[0].text]
    store.clear()
    assert store.get_nodes() == [] and query(store, "cat").nodes == []


def test_persist_and_reload_with_storage_context(minilm_model, adapted_minilm_model, tmp_path):
    vs = EvoVectorStore(model=minilm_model)
    index = VectorStoreIndex.from_documents(
        DOCS, storage_context=StorageContext.from_defaults(vector_store=vs), embed_model=vs.embed_model
    )
    index.storage_context.persist(persist_dir=tmp_path)
    assert (tmp_path / "default__vector_store" / "manifest.json").exists()
    before = query(vs, "Where does Ana live?", k=3)
    loaded = EvoVectorStore.from_persist_dir(tmp_path, model=minilm_model)
    after = query(loaded, "Where does Ana live?", k=3)
    assert ids(after) == ids(before) and np.allclose(after.similarities, before.similarities, atol=1e-6)
    reindexed = VectorStoreIndex.from_vector_store(loaded, embed_model=loaded.embed_model)
    assert reindexed.as_retriever(similarity_top_k=1).retrieve("Ben's cooking")[0].node.ref_doc_id == "ben"
    with pytest.raises(ModelMismatchError):
        EvoVectorStore.from_persist_dir(tmp_path, model=adapted_minilm_model)


def test_embedder_reads_each_document_in_its_own_stream(minilm_model):
    embed = EvoEmbedding(minilm_model)
    nodes = [n.model_copy() for n in NODES]
    embed(nodes)
    alone = EvoStream(minilm_model).add([n.get_content(metadata_mode="embed") for n in NODES[2:]])
    assert np.allclose([n.embedding for n in nodes[2:]], alone, atol=1e-5)  # tom's vectors ignore mia's nodes
    # plain batches go to the current stream, in order; queries are encoded against it
    embed.stream("chat")
    first = embed.get_text_embedding_batch(["Ana moved to Oslo.", "She likes it there."])
    reference = EvoStream(minilm_model)
    assert np.allclose(first, reference.add(["Ana moved to Oslo.", "She likes it there."]), atol=1e-5)
    assert np.allclose(embed.get_query_embedding("Where is Ana?"), reference.encode_query("Where is Ana?"), atol=1e-5)
    embed.reset("chat")
    assert np.allclose(
        embed.get_query_embedding("Where is Ana?"), EvoStream(minilm_model).encode_query("Where is Ana?"), atol=1e-5
    )


def test_retriever_and_rerank(minilm_model):
    retriever = EvoRetriever(model=minilm_model, similarity_top_k=2)
    retriever.add_nodes([n.model_copy() for n in NODES])
    hits = retriever.retrieve("Which pet belongs to Tom?")
    assert hits[0].node.node_id == "t2" and len(hits) == 2
    scoped = EvoRetriever(retriever.vector_store, similarity_top_k=4, doc_ids=["mia"]).retrieve("pets")
    assert {h.node.node_id for h in scoped} == {"m1", "m2"}
    rerank = EvoRerank(minilm_model, top_n=2)
    candidates = [NodeWithScore(node=n.model_copy(), score=0.0) for n in NODES]
    ranked = rerank.postprocess_nodes(candidates, query_str="Who plays jazz?")
    assert ranked[0].node.node_id == "t1" and len(ranked) == 2 and ranked[0].score >= ranked[1].score
    with pytest.raises(ValueError, match="needs the query"):
        rerank.postprocess_nodes(candidates)
    assert rerank.postprocess_nodes([], query_bundle=QueryBundle("x")) == []


def test_bad_input_is_rejected_without_changes(store):
    with pytest.raises(ValueError, match="empty"):
        store.add([node("   ", "bad", "mia")])
    with pytest.raises(TypeError, match="llama-index node"):
        store.add(["not a node"])
    with pytest.raises(ValueError, match="query_str"):
        store.query(VectorStoreQuery(similarity_top_k=1))
    with pytest.raises(ValueError, match="node_ids or filters"):
        store.delete_nodes()
    assert len(store.get_nodes()) == len(NODES)


def test_llamaindex_rag_example_runs(minilm_model, capsys):
    path = Path(__file__).resolve().parents[2] / "examples" / "llamaindex_rag.py"
    spec = importlib.util.spec_from_file_location("llamaindex_rag_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    results = example.main(model=minilm_model, use_local_llm=False)
    assert [sources[0] for _, _, sources in results] == ["ana", "ben"]
    assert "MockLLM" in capsys.readouterr().out


def test_metadata_filters_are_translated_into_the_store_language():
    from evoembedding_integrations.llama_index import NODE_ID_KEY, compile_metadata_filters, to_store_filter
    from evoembedding_integrations.store import compile_filter

    def f(key, value, op=FilterOperator.EQ):
        return MetadataFilter(key=key, value=value, operator=op)

    assert to_store_filter(None) is None and compile_metadata_filters(None) is None
    assert to_store_filter(MetadataFilters(filters=[f("topic", "pets")])) == {"topic": {"$eq": "pets"}}
    assert to_store_filter(MetadataFilters(filters=[f("rank", 2, FilterOperator.GTE)]), ["m1"]) == {
        "$and": [{"rank": {"$gte": 2}}, {NODE_ID_KEY: {"$in": ["m1"]}}]
    }
    assert to_store_filter(MetadataFilters(filters=[f("tags", ["a"], FilterOperator.ANY)])) == {"tags": {"$any": ["a"]}}
    assert to_store_filter(MetadataFilters(filters=[f("t", 5, FilterOperator.TEXT_MATCH)])) == {"t": {"$contains": "5"}}
    rows = [{"tags": ["a", "b"]}, {"tags": []}, {"tags": None}, {"tags": ""}, {}]

    def keep(filters):
        predicate = compile_filter(to_store_filter(filters))
        return [i for i, row in enumerate(rows) if predicate is None or predicate(row)]

    assert keep(MetadataFilters(filters=[f("tags", None, FilterOperator.IS_EMPTY)])) == [1, 2, 3, 4]
    assert keep(MetadataFilters(filters=[f("tags", ["a", "z"], FilterOperator.ANY)])) == [0]
    assert keep(MetadataFilters(filters=[f("tags", ["a", "z"], FilterOperator.ALL)])) == []
    assert keep(MetadataFilters(filters=[f("tags", [], FilterOperator.ALL)])) == [0, 1]  # lists only
    assert keep(MetadataFilters(filters=[])) == [0, 1, 2, 3, 4]
    assert keep(MetadataFilters(filters=[], condition=FilterCondition.OR)) == []
    assert keep(MetadataFilters(filters=[], condition=FilterCondition.NOT)) == [0, 1, 2, 3, 4]
    predicate = compile_metadata_filters(MetadataFilters(filters=[f("tags", "b", FilterOperator.CONTAINS)]))
    assert [i for i, row in enumerate(rows) if predicate(row)] == [0]
    with pytest.raises(TypeError, match="MetadataFilters"):
        to_store_filter({"topic": "pets"})
