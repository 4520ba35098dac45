"""EvoEmbedding: a context-aware LlamaIndex ``BaseEmbedding``.

Used as a transformation (in an ``IngestionPipeline`` or as ``embed_model``), it reads nodes in
document order, one stream per ``ref_doc_id``; plain text batches go to the current stream, and a
query is encoded against the current stream's memory. Its vectors depend on what was read before
(order matters). Streams are kept by a :class:`~evoembedding_integrations.streams.StreamPool`.

:class:`EvoStoreEmbedding` is the embed model of an index on an
:class:`~.vector_stores.EvoVectorStore` (``store.embed_model``): the store reads every node into
its document's stream itself, so this model computes nothing and LlamaIndex's own embedding pass
costs no forward pass.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.schema import BaseNode, MetadataMode
from pydantic import Field, PrivateAttr

from evoembedding_core import EvoEmbeddingModel
from evoembedding_core.validation import validate_id

from .. import defaults
from ..store import DEFAULT_STREAM, resolve_model
from ..streams import StreamPool

__all__ = ["EvoEmbedding", "EvoStoreEmbedding"]


class EvoEmbedding(BaseEmbedding):
    """Context-aware node embedder: one stream per document, queries against the current stream.

    Example:
        >>> embed_model = EvoEmbedding()                                     # doctest: +SKIP
        >>> embed_model(nodes)           # each document's nodes read in order by its own stream
        >>> embed_model.stream("chat").get_text_embedding_batch(["Ana moved to Oslo."])  # doctest: +SKIP
    """

    model_name: str = Field(default="evoembedding", description="Name of the EvoEmbedding model.")
    stream_id: str = Field(default=DEFAULT_STREAM, description="Stream read by plain text batches and queries.")
    _model: EvoEmbeddingModel = PrivateAttr()
    _pool: StreamPool = PrivateAttr()

    def __init__(
        self,
        model: EvoEmbeddingModel | str | os.PathLike | None = None,
        *,
        long_texts: str = defaults.LONG_TEXTS,
        **kwargs: Any,
    ) -> None:
        """Create the embedder.

        Args:
            model: An ``EvoEmbeddingModel``, a model name or directory, or ``None`` for the shipped
                default model (loaded once per process).
            long_texts: A text over the segment limit: ``"truncate"`` (default) or ``"split"``
                (read as consecutive segments, one vector per text, as in ``EvoStore``).
            **kwargs: ``BaseEmbedding`` fields (``stream_id``, ``embed_batch_size``, ...).
        """
        super().__init__(**kwargs)
        self._model = resolve_model(model)
        self._pool = StreamPool(self._model, long_texts)

    @classmethod
    def class_name(cls) -> str:
        return "EvoEmbedding"

    @property
    def model(self) -> EvoEmbeddingModel:
        """The EvoEmbedding model in use."""
        return self._model

    def stream(self, stream_id: str) -> EvoEmbedding:
        """Make ``stream_id`` the current stream (texts and queries without a document go there).

        Args:
            stream_id: The stream's id.

        Returns:
            ``self``, for chaining.

        Raises:
            TypeError: ``stream_id`` is not a string.
            ValueError: ``stream_id`` is empty or whitespace-only.
        """
        self.stream_id = validate_id(stream_id, "stream_id")
        return self

    def reset(self, stream_id: str | None = None) -> None:
        """Forget one stream's memory, or every stream's (``None``)."""
        self._pool.reset(stream_id)

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._pool.add(self.stream_id, list(texts)).tolist()

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embedding(text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._get_text_embeddings(texts)

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._pool.encode_query(self.stream_id, query).tolist()

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return self._get_query_embedding(query)

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        """Embed nodes as a transformation: each document's nodes are read in order by its own stream.

        Args:
            nodes: The nodes; those without a ``ref_doc_id`` go to the current stream.
            **kwargs: Ignored (LlamaIndex's signature).

        Returns:
            The same nodes, with ``embedding`` set.
        """
        groups: dict[str, list[BaseNode]] = defaultdict(list)
        for node in nodes:
            groups[node.ref_doc_id or self.stream_id].append(node)
        for stream_id, members in groups.items():
            texts = [n.get_content(metadata_mode=MetadataMode.EMBED) for n in members]
            for node, vector in zip(members, self._pool.add(stream_id, texts).tolist()):
                node.embedding = vector
        return nodes

    async def acall(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        """Async version of :meth:`__call__`."""
        return self(nodes, **kwargs)


class EvoStoreEmbedding(BaseEmbedding):
    """The embed model of an index on an ``EvoVectorStore``: computes nothing, so nodes are embedded once.

    ``VectorStoreIndex`` asks its embed model for a vector of every node before it hands the nodes
    to the vector store. An ``EvoVectorStore`` reads each node into its document's stream itself
    (the vector depends on the document's earlier nodes, which the embed model does not see), so
    this model answers every text with an empty placeholder vector (``[]``) and no forward pass;
    as the last transformation of an ``IngestionPipeline`` it marks the nodes the pipeline then
    writes to the store. Get it from ``EvoVectorStore.embed_model``.

    The store encodes queries from their text (``is_embedding_query=False``), so nothing asks this
    model for a query vector; a caller that does (another vector store, ``VectorMemoryBlock``)
    gets a ``ValueError`` instead of meaningless scores: use :class:`EvoEmbedding` there.

    Example:
        >>> store = EvoVectorStore()                                          # doctest: +SKIP
        >>> index = VectorStoreIndex.from_documents(
        ...     docs, storage_context=StorageContext.from_defaults(vector_store=store),
        ...     embed_model=store.embed_model)                                  # doctest: +SKIP
    """

    model_name: str = Field(default="evoembedding-store", description="Vectors are computed by the EvoVectorStore.")

    @classmethod
    def class_name(cls) -> str:
        return "EvoStoreEmbedding"

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return [[] for _ in texts]

    def _get_text_embedding(self, text: str) -> Embedding:
        return []

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return []

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._get_text_embeddings(texts)

    def _get_query_embedding(self, query: str) -> Embedding:
        raise ValueError(
            "EvoStoreEmbedding computes no vectors (EvoVectorStore encodes queries from their text); "
            "this caller needs real vectors: use EvoEmbedding (or EvoMemoryBlock for chat memory)"
        )

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return self._get_query_embedding(query)
