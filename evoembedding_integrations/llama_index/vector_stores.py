"""EvoVectorStore: a LlamaIndex ``BasePydanticVectorStore`` on :class:`~evoembedding_integrations.store.EvoStore`.

Nodes are kept one stream per document (``ref_doc_id``; nodes without one go to the ``"default"``
stream). The store computes the context-aware vectors itself when nodes are added (the node's own
``embedding`` is not used) and encodes each query against every searched document's memory
(``is_embedding_query=False``: the index does not embed queries for it). Build indexes with
``embed_model=store.embed_model`` (an :class:`~.embeddings.EvoStoreEmbedding`, which computes
nothing) so that each node is embedded once. ``doc_ids``, ``node_ids`` and ``MetadataFilters``
are translated by :mod:`.filters` into the store's filter language. Similarities are cosines,
higher is better.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core.schema import BaseNode, MetadataMode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict
from pydantic import Field, PrivateAttr

from evoembedding_core.validation import validate_texts

from ..store import DEFAULT_STREAM, EvoStore, Record, compile_filter
from .embeddings import EvoStoreEmbedding
from .filters import NODE_ID_KEY, to_store_filter

__all__ = ["PERSIST_NAME", "EvoVectorStore"]

PERSIST_NAME = "default__vector_store"
"""The directory name ``StorageContext.persist`` gives the vector store."""

_MODES = (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.MMR, VectorStoreQueryMode.HYBRID)


class EvoVectorStore(BasePydanticVectorStore):
    """LlamaIndex vector store on :class:`EvoStore`: one stream per document (see the module docstring).

    Example:
        >>> from llama_index.core import StorageContext, VectorStoreIndex              # doctest: +SKIP
        >>> store = EvoVectorStore()                                                  # doctest: +SKIP
        >>> index = VectorStoreIndex.from_documents(
        ...     docs, storage_context=StorageContext.from_defaults(vector_store=store), embed_model=store.embed_model)
    """

    stores_text: bool = True
    is_embedding_query: bool = False
    flat_metadata: bool = False
    mmr_fetch_k: int = Field(default=20, description="Candidates fetched before an MMR re-selection.")
    _store: EvoStore = PrivateAttr()
    _embed_model: EvoStoreEmbedding = PrivateAttr(default_factory=EvoStoreEmbedding)
    _warned_embeddings: bool = PrivateAttr(default=False)

    def __init__(self, store: EvoStore | None = None, *, model=None, **kwargs: Any) -> None:
        """Create a vector store, or wrap an existing :class:`EvoStore`.

        Args:
            store: An existing store to wrap.
            model: The model of a new store (an ``EvoEmbeddingModel``, a name or path; ``None``:
                the shipped default). Not with ``store``.
            **kwargs: Pydantic fields (``mmr_fetch_k``, ``flat_metadata``).

        Raises:
            ValueError: Both ``store`` and ``model`` are given.
            TypeError: ``store`` is not an :class:`EvoStore`.
        """
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
        """The underlying :class:`EvoStore` (LlamaIndex's name)."""
        return self._store

    @property
    def store(self) -> EvoStore:
        """The underlying :class:`EvoStore`."""
        return self._store

    @property
    def embed_model(self) -> EvoStoreEmbedding:
        """The embed model for indexes on this store: it computes nothing (the store reads the nodes).

        Pass it as ``VectorStoreIndex(..., embed_model=store.embed_model)`` (or set
        ``Settings.embed_model = store.embed_model`` when every index of the application is on an
        ``EvoVectorStore``) so that LlamaIndex's own embedding pass costs no forward pass.
        """
        return self._embed_model

    # ------------------------------------------------------------------ writing
    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """Read nodes into their documents' streams, in the given order.

        Args:
            nodes: LlamaIndex nodes with non-empty text.
            **kwargs: Ignored (LlamaIndex's signature).

        Returns:
            The node ids.

        Raises:
            TypeError: An item is not a LlamaIndex node.
            ValueError: A node's text is empty.
        """
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
        self._warn_if_embedded(nodes)
        return self._store.add(validate_texts(texts, "node texts"), stream_id=streams, ids=ids, metadatas=metadatas)

    def _warn_if_embedded(self, nodes: Sequence[BaseNode]) -> None:
        """Warn once per store when nodes arrive with vectors that an embed model computed in vain."""
        if self._warned_embeddings or not any(node.embedding for node in nodes):
            return
        self._warned_embeddings = True
        warnings.warn(
            "EvoVectorStore reads each node into its document's stream and ignores node.embedding, so the "
            "embed model's vectors were computed in vain: build the index with embed_model=store.embed_model "
            "(in an IngestionPipeline writing to this store, end the transformations with store.embed_model)",
            UserWarning,
            stacklevel=3,
        )

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Remove a document: its nodes and its stream's memory."""
        self._store.delete_stream(ref_doc_id)

    def delete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **kwargs: Any
    ) -> None:
        """Remove nodes by id and/or filter (missing ids are ignored); the streams' memories are kept.

        Raises:
            ValueError: Neither ``node_ids`` nor ``filters`` is given (use :meth:`clear`).
        """
        if node_ids is None and filters is None:
            raise ValueError("delete_nodes needs node_ids or filters (use clear() to remove everything)")
        self._store.delete([n.node_id for n in self.get_nodes(node_ids, filters)])

    def get_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **kwargs: Any
    ) -> list[BaseNode]:
        """Stored nodes (text included) by id and/or filter; all nodes when both are ``None``."""
        predicate = compile_filter(to_store_filter(filters, node_ids))
        records = self._store.get(node_ids if node_ids is not None else self._store.ids())
        return [self._node(r) for r in records if predicate is None or predicate(r.metadata)]

    def clear(self) -> None:
        """Remove every node and stream."""
        self._store.clear()

    # ------------------------------------------------------------------ querying
    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """The nodes most similar to the query, best first; each document searched with its own memory.

        Args:
            query: ``query_str`` (preferred: encoded against each document's memory) or
                ``query_embedding``; ``similarity_top_k``, ``doc_ids``, ``node_ids``, ``filters``;
                ``mode`` ``"default"``, ``"mmr"`` (``mmr_threshold`` is the lambda) or ``"hybrid"``
                (reciprocal-rank fusion with BM25; ``alpha`` is not used).
            **kwargs: Ignored.

        Returns:
            Nodes, similarities and ids.

        Raises:
            ValueError: Another query mode, no query at all, or a hybrid query without ``query_str``.
        """
        mode = VectorStoreQueryMode(query.mode)
        if mode not in _MODES:
            raise ValueError(f"EvoVectorStore supports query modes 'default', 'hybrid' and 'mmr', got {mode.value!r}")
        if query.query_str is None and query.query_embedding is None:
            raise ValueError(
                "the query needs query_str (preferred: encoded against each document's memory) or query_embedding"
            )
        if mode == VectorStoreQueryMode.HYBRID and query.query_str is None:
            raise ValueError("hybrid queries need query_str (BM25 matches its words)")
        # empty doc_ids / node_ids mean "no constraint" (VectorStoreIndex passes node_ids=[] to text-storing stores)
        filter_ = to_store_filter(query.filters, query.node_ids or None)
        options = dict(k=query.similarity_top_k, stream_ids=query.doc_ids or None, filter=filter_)
        if mode == VectorStoreQueryMode.MMR:
            lambda_mult = 0.5 if query.mmr_threshold is None else query.mmr_threshold
            options.update(fetch_k=max(self.mmr_fetch_k, query.similarity_top_k), lambda_mult=lambda_mult)
        if mode == VectorStoreQueryMode.HYBRID:
            hits = self._store.search(query.query_str, hybrid=True, **options)
        elif query.query_str is not None:
            search = self._store.mmr_search if mode == VectorStoreQueryMode.MMR else self._store.search
            hits = search(query.query_str, **options)
        else:
            mmr = mode == VectorStoreQueryMode.MMR
            search = self._store.mmr_search_by_vector if mmr else self._store.search_by_vector
            hits = search(np.asarray(query.query_embedding, dtype=np.float32), **options)
        return VectorStoreQueryResult(
            nodes=[self._node(h) for h in hits], similarities=[h.score for h in hits], ids=[h.id for h in hits]
        )

    @staticmethod
    def _node(record: Record) -> BaseNode:
        metadata = {k: v for k, v in record.metadata.items() if k != NODE_ID_KEY}
        return metadata_dict_to_node(metadata, text=record.text)

    # ------------------------------------------------------------------ persistence
    def persist(self, persist_path: str, fs: Any = None) -> None:
        """Save the store as a directory (a ``.json`` suffix from ``StorageContext`` is dropped).

        Raises:
            ValueError: ``fs`` is not the local filesystem.
        """
        if fs is not None and getattr(fs, "protocol", "file") not in ("file", ("file", "local")):
            raise ValueError("EvoVectorStore persists to the local filesystem only")
        self._store.save(_store_dir(persist_path))

    @classmethod
    def from_persist_path(cls, persist_path: str | os.PathLike, model=None, **kwargs: Any) -> EvoVectorStore:
        """Load a store written by :meth:`persist` (verified; never runs code from the directory).

        Raises:
            CorruptStoreError: The directory is not a valid saved store.
            ModelMismatchError: It was written with another model.
        """
        return cls(EvoStore.load(_store_dir(persist_path), model), **kwargs)

    @classmethod
    def from_persist_dir(
        cls, persist_dir: str | os.PathLike = "./storage", model=None, **kwargs: Any
    ) -> EvoVectorStore:
        """Load the store that ``StorageContext.persist(persist_dir)`` wrote."""
        return cls.from_persist_path(Path(persist_dir) / PERSIST_NAME, model, **kwargs)


def _store_dir(persist_path: str | os.PathLike) -> Path:
    path = Path(persist_path)
    return path.with_suffix("") if path.suffix == ".json" else path
