"""LlamaIndex integration: an embedder, a vector store, a retriever and a reranker on EvoEmbedding.

>>> from llama_index.core import Document, StorageContext, VectorStoreIndex        # doctest: +SKIP
>>> store = EvoVectorStore()                                                      # doctest: +SKIP
>>> index = VectorStoreIndex.from_documents(
...     docs, storage_context=StorageContext.from_defaults(vector_store=store), embed_model=EvoEmbedding())
>>> index.as_retriever(similarity_top_k=2).retrieve("Where does Ana live now?")     # doctest: +SKIP

* :class:`EvoEmbedding` (``BaseEmbedding``) reads nodes in document order, one stream per
  ``ref_doc_id``, and embeds a query against the current stream's memory. Use it in ingestion
  pipelines or with any vector store. Its vectors depend on what was read before (order matters).
* :class:`EvoVectorStore` (``BasePydanticVectorStore``) keeps nodes in an
  :class:`~.store.EvoStore`, one stream per document (``ref_doc_id``; nodes without one go to the
  ``"default"`` stream). It computes the context-aware vectors itself when nodes are added (the
  node's own ``embedding`` is not used) and encodes each query against every searched document's
  memory (``is_embedding_query=False``: the index does not embed queries for it). Supports
  ``doc_ids``, ``node_ids``, ``MetadataFilters`` (all operators, nested, AND / OR / NOT), MMR,
  delete by document or node, ``get_nodes``, ``clear`` and safe persistence (no pickle).
  Similarities are cosines, higher is better.
* :class:`EvoRetriever` (``BaseRetriever``) and :class:`EvoRerank` (``BaseNodePostprocessor``: the
  candidates are read in the given order, then ranked against the query encoded with that memory).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import BaseNode, MetadataMode, NodeWithScore, QueryBundle
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict
from pydantic import Field, PrivateAttr

from evoembedding_core import EvoEmbeddingModel, EvoStream
from evoembedding_core.stream import validate_texts

from .store import DEFAULT_STREAM, EvoStore, model_lock, resolve_model

NODE_ID_KEY = "_node_id"
PERSIST_NAME = "default__vector_store"


# ---------------------------------------------------------------------------------------- embedder
class EvoEmbedding(BaseEmbedding):
    """Context-aware node embedder: one stream per document, queries against the current stream."""

    model_name: str = Field(default="evoembedding", description="Name of the EvoEmbedding model.")
    stream_id: str = Field(default=DEFAULT_STREAM, description="Stream read by plain text batches and queries.")
    _model: EvoEmbeddingModel = PrivateAttr()
    _streams: dict = PrivateAttr(default_factory=dict)

    def __init__(self, model: EvoEmbeddingModel | str | os.PathLike | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._model = resolve_model(model)

    @classmethod
    def class_name(cls) -> str:
        return "EvoEmbedding"

    @property
    def model(self) -> EvoEmbeddingModel:
        return self._model

    def stream(self, stream_id: str) -> "EvoEmbedding":
        """Make ``stream_id`` the current stream (texts and queries without a document go there)."""
        self.stream_id = validate_texts([stream_id], "stream_id")[0]
        return self

    def reset(self, stream_id: str | None = None) -> None:
        """Forget one stream's memory, or every stream's (``None``)."""
        with model_lock(self._model):
            if stream_id is None:
                self._streams.clear()
            else:
                self._streams.pop(stream_id, None)

    def _read(self, stream_id: str, texts: list[str]) -> list[Embedding]:
        with model_lock(self._model):
            reader = self._streams.get(stream_id) or self._streams.setdefault(stream_id, EvoStream(self._model))
            return reader.add(texts).tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._read(self.stream_id, list(texts))

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embedding(text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._get_text_embeddings(texts)

    def _get_query_embedding(self, query: str) -> Embedding:
        with model_lock(self._model):
            reader = self._streams.get(self.stream_id) or EvoStream(self._model)
            return reader.encode_query(query).tolist()

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return self._get_query_embedding(query)

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        """Embed nodes as a transformation: each document's nodes are read in order by its own stream."""
        groups: dict[str, list[BaseNode]] = defaultdict(list)
        for node in nodes:
            groups[node.ref_doc_id or self.stream_id].append(node)
        for stream_id, members in groups.items():
            texts = [n.get_content(metadata_mode=MetadataMode.EMBED) for n in members]
            for node, vector in zip(members, self._read(stream_id, texts)):
                node.embedding = vector
        return nodes

    async def acall(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        return self(nodes, **kwargs)


# ---------------------------------------------------------------------------------------- filters
def _operator_test(f: MetadataFilter) -> Callable[[dict], bool]:
    op, value, key = FilterOperator(getattr(f, "operator", FilterOperator.EQ)), f.value, f.key
    if op == FilterOperator.IS_EMPTY:
        return lambda m: m.get(key) in (None, "", [])
    if op in (FilterOperator.IN, FilterOperator.NIN, FilterOperator.ANY, FilterOperator.ALL) and not isinstance(
        value, list
    ):
        raise TypeError(f"metadata filter {key!r} {op.value} needs a list value, got {type(value).__name__}")
    compare = {
        FilterOperator.EQ: lambda v: v == value,
        FilterOperator.NE: lambda v: v != value,
        FilterOperator.GT: lambda v: v > value,
        FilterOperator.GTE: lambda v: v >= value,
        FilterOperator.LT: lambda v: v < value,
        FilterOperator.LTE: lambda v: v <= value,
        FilterOperator.IN: lambda v: v in value,
        FilterOperator.NIN: lambda v: v not in value,
        FilterOperator.CONTAINS: lambda v: isinstance(v, list) and value in v,
        FilterOperator.ANY: lambda v: isinstance(v, list) and any(x in v for x in value),
        FilterOperator.ALL: lambda v: isinstance(v, list) and all(x in v for x in value),
        FilterOperator.TEXT_MATCH: lambda v: isinstance(v, str) and str(value) in v,
        FilterOperator.TEXT_MATCH_INSENSITIVE: lambda v: isinstance(v, str) and str(value).lower() in v.lower(),
    }[op]

    def test(metadata: dict) -> bool:
        if key not in metadata or metadata[key] is None:
            return op in (FilterOperator.NE, FilterOperator.NIN)
        try:
            return bool(compare(metadata[key]))
        except TypeError:  # e.g. "a" > 3: not a match
            return False

    return test


def compile_metadata_filters(filters: MetadataFilters | None) -> Callable[[dict], bool] | None:
    """LlamaIndex ``MetadataFilters`` (nested, AND / OR / NOT) as a predicate on metadata (``None``: no filter)."""
    if filters is None:
        return None
    if not isinstance(filters, MetadataFilters):
        raise TypeError(f"filters must be llama-index MetadataFilters, got {type(filters).__name__}")
    tests = [
        compile_metadata_filters(f) if isinstance(f, MetadataFilters) else _operator_test(f) for f in filters.filters
    ]
    condition = FilterCondition(filters.condition or FilterCondition.AND)
    if condition == FilterCondition.AND:
        return lambda m: all(t(m) for t in tests)
    if condition == FilterCondition.OR:
        return lambda m: any(t(m) for t in tests)
    return lambda m: not any(t(m) for t in tests)


def _predicate(filters: MetadataFilters | None, node_ids: Sequence[str] | None) -> Callable[[dict], bool] | None:
    metadata_test = compile_metadata_filters(filters)
    if node_ids is None:
        return metadata_test
    wanted = set(node_ids)
    if metadata_test is None:
        return lambda m: m.get(NODE_ID_KEY) in wanted
    return lambda m: m.get(NODE_ID_KEY) in wanted and metadata_test(m)


# ---------------------------------------------------------------------------------------- vector store
class EvoVectorStore(BasePydanticVectorStore):
    """LlamaIndex vector store on :class:`~.store.EvoStore`: one stream per document (see the module docstring)."""

    stores_text: bool = True
    is_embedding_query: bool = False
    flat_metadata: bool = False
    mmr_fetch_k: int = Field(default=20, description="Candidates fetched before an MMR re-selection.")
    _store: EvoStore = PrivateAttr()

    def __init__(self, store: EvoStore | None = None, *, model=None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if store is not None and model is not None:
            raise ValueError("pass either store= or model=, not both")
        if store is not None and not isinstance(store, EvoStore):
            raise TypeError(f"store must be an EvoStore, got {type(store).__name__}")
        self._store = store if store is not None else EvoStore(model)

    @classmethod
    def class_name(cls) -> str:
        return "EvoVectorStore"

    @property
    def client(self) -> EvoStore:
        return self._store

    @property
    def store(self) -> EvoStore:
        return self._store

    # ------------------------------------------------------------------ writing
    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """Read the nodes into their documents' streams, in the given order; returns their ids."""
        if not nodes:
            return []
        texts, streams, ids, metadatas = [], [], [], []
        for i, node in enumerate(nodes):
            if not isinstance(node, BaseNode):
                raise TypeError(f"nodes[{i}] must be a llama-index node, got {type(node).__name__}")
            metadata = node_to_metadata_dict(node, remove_text=True, flat_metadata=self.flat_metadata)
            metadata[NODE_ID_KEY] = node.node_id
            texts.append(node.get_content(metadata_mode=MetadataMode.NONE))
            streams.append(node.ref_doc_id or DEFAULT_STREAM)
            ids.append(node.node_id)
            metadatas.append(metadata)
        return self._store.add(validate_texts(texts, "node texts"), stream_id=streams, ids=ids, metadatas=metadatas)

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Remove a document: its nodes and its stream's memory."""
        self._store.delete_stream(ref_doc_id)

    def delete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **kwargs: Any
    ) -> None:
        """Remove nodes by id and/or filter (missing ids are ignored). The streams' memories are kept."""
        if node_ids is None and filters is None:
            raise ValueError("delete_nodes needs node_ids or filters (use clear() to remove everything)")
        self._store.delete([n.node_id for n in self.get_nodes(node_ids, filters)])

    def get_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **kwargs: Any
    ) -> list[BaseNode]:
        """Stored nodes (text included) by id and/or filter; all nodes when both are ``None``."""
        predicate = _predicate(filters, node_ids)
        records = self._store.get(node_ids if node_ids is not None else self._store.ids())
        return [self._node(r) for r in records if predicate is None or predicate(r.metadata)]

    def clear(self) -> None:
        self._store.clear()

    # ------------------------------------------------------------------ querying
    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Nodes most similar to the query, best first: each document searched with its own memory."""
        mode = VectorStoreQueryMode(query.mode)
        if mode not in (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.MMR, VectorStoreQueryMode.HYBRID):
            raise ValueError(f"EvoVectorStore supports query modes 'default', 'hybrid' and 'mmr', got {mode.value!r}")
        if query.query_str is None and query.query_embedding is None:
            raise ValueError(
                "the query needs query_str (preferred: encoded against each document's memory) or query_embedding"
            )
        if mode == VectorStoreQueryMode.HYBRID and query.query_str is None:
            raise ValueError("hybrid queries need query_str (BM25 matches its words)")
        # empty doc_ids / node_ids mean "no constraint" (VectorStoreIndex passes node_ids=[] to text-storing stores)
        filter_ = _predicate(query.filters, query.node_ids or None)
        options = dict(k=query.similarity_top_k, stream_ids=query.doc_ids or None, filter=filter_)
        if mode == VectorStoreQueryMode.MMR:
            lambda_mult = 0.5 if query.mmr_threshold is None else query.mmr_threshold
            options.update(fetch_k=max(self.mmr_fetch_k, query.similarity_top_k), lambda_mult=lambda_mult)
        if mode == VectorStoreQueryMode.HYBRID:  # reciprocal rank fusion with BM25 (query.alpha is not used)
            hits = self._store.search(query.query_str, hybrid=True, **options)
        elif query.query_str is not None:
            search = self._store.mmr_search if mode == VectorStoreQueryMode.MMR else self._store.search
            hits = search(query.query_str, **options)
        else:
            search = (
                self._store.mmr_search_by_vector if mode == VectorStoreQueryMode.MMR else self._store.search_by_vector
            )
            hits = search(np.asarray(query.query_embedding, dtype=np.float32), **options)
        return VectorStoreQueryResult(
            nodes=[self._node(h) for h in hits], similarities=[h.score for h in hits], ids=[h.id for h in hits]
        )

    @staticmethod
    def _node(record) -> BaseNode:
        metadata = {k: v for k, v in record.metadata.items() if k != NODE_ID_KEY}
        return metadata_dict_to_node(metadata, text=record.text)

    # ------------------------------------------------------------------ persistence
    def persist(self, persist_path: str, fs: Any = None) -> None:
        """Save the store as a directory (a ``.json`` suffix from StorageContext is dropped)."""
        if fs is not None and getattr(fs, "protocol", "file") not in ("file", ("file", "local")):
            raise ValueError("EvoVectorStore persists to the local filesystem only")
        self._store.save(_store_dir(persist_path))

    @classmethod
    def from_persist_path(cls, persist_path: str | os.PathLike, model=None, **kwargs: Any) -> "EvoVectorStore":
        """Load a store written by :meth:`persist` (verified; never runs code from the directory)."""
        return cls(EvoStore.load(_store_dir(persist_path), model), **kwargs)

    @classmethod
    def from_persist_dir(
        cls, persist_dir: str | os.PathLike = "./storage", model=None, **kwargs: Any
    ) -> "EvoVectorStore":
        """Load the store that ``StorageContext.persist(persist_dir)`` wrote."""
        return cls.from_persist_path(Path(persist_dir) / PERSIST_NAME, model, **kwargs)


def _store_dir(persist_path: str | os.PathLike) -> Path:
    path = Path(persist_path)
    return path.with_suffix("") if path.suffix == ".json" else path


# ---------------------------------------------------------------------------------------- retriever
class EvoRetriever(BaseRetriever):
    """Retrieve nodes from an :class:`EvoVectorStore` (a new one on ``model`` when not given)."""

    def __init__(
        self,
        vector_store: EvoVectorStore | None = None,
        *,
        model=None,
        similarity_top_k: int = 4,
        doc_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        mode: str = "default",
        **kwargs: Any,
    ) -> None:
        if vector_store is not None and model is not None:
            raise ValueError("pass either vector_store= or model=, not both")
        if not isinstance(similarity_top_k, int) or isinstance(similarity_top_k, bool) or similarity_top_k < 1:
            raise ValueError(f"similarity_top_k must be a positive integer, got {similarity_top_k!r}")
        self.vector_store = vector_store if vector_store is not None else EvoVectorStore(model=model)
        self.similarity_top_k, self.doc_ids, self.filters = similarity_top_k, doc_ids, filters
        self.mode = VectorStoreQueryMode(mode)
        super().__init__(**kwargs)

    def add_nodes(self, nodes: Sequence[BaseNode]) -> list[str]:
        """Read nodes into their documents' streams (in order)."""
        return self.vector_store.add(nodes)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        query = VectorStoreQuery(
            query_str=query_bundle.query_str,
            similarity_top_k=self.similarity_top_k,
            doc_ids=self.doc_ids,
            filters=self.filters,
            mode=self.mode,
        )
        result = self.vector_store.query(query)
        return [NodeWithScore(node=n, score=s) for n, s in zip(result.nodes, result.similarities)]


# ---------------------------------------------------------------------------------------- reranker
class EvoRerank(BaseNodePostprocessor):
    """Rerank candidate nodes: read them in the given order, then rank by the query against that memory."""

    top_n: int = Field(default=4, ge=1, description="How many nodes to keep.")
    _model: EvoEmbeddingModel = PrivateAttr()

    def __init__(self, model: EvoEmbeddingModel | str | os.PathLike | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._model = resolve_model(model)

    @classmethod
    def class_name(cls) -> str:
        return "EvoRerank"

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        if query_bundle is None:
            raise ValueError("EvoRerank needs the query (query_bundle or query_str)")
        if not nodes:
            return []
        texts = validate_texts([n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes], "node texts")
        with model_lock(self._model):
            stream = EvoStream(self._model)
            scores = stream.add(texts) @ stream.encode_query(query_bundle.query_str)
        order = np.argsort(-scores, kind="stable")[: self.top_n]
        return [NodeWithScore(node=nodes[i].node, score=float(scores[i])) for i in order]


__all__ = [
    "EvoEmbedding",
    "EvoRerank",
    "EvoRetriever",
    "EvoVectorStore",
    "compile_metadata_filters",
]
