"""EvoEmbeddings: context-aware LangChain ``Embeddings``.

``embed_documents`` appends texts to the current stream, in order, so a vector depends on the order
of the texts and on what the stream read before; ``embed_query`` encodes a query against the current
stream's memory (or over an empty one with ``query_memory=False``). Streams are kept by a
:class:`~evoembedding_integrations.streams.StreamPool`. Works with any LangChain vector store;
:meth:`EvoEmbeddings.add_documents_to` adds documents to such a store one stream per source
(or per any metadata key).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from evoembedding_core import EvoEmbeddingModel
from evoembedding_core.validation import validate_id, validate_texts

from .. import defaults
from ..store import DEFAULT_STREAM, resolve_model
from ..streams import StreamPool
from .stream_keys import DEFAULT_STREAM_KEY, StreamKey, check_stream_key, stream_of

__all__ = ["EvoEmbeddings"]


class EvoEmbeddings(Embeddings):
    """Context-aware, stateful LangChain embeddings: one EvoEmbedding stream per stream id.

    **In another vector store** (Chroma, PGVector, ``InMemoryVectorStore``, ...), use one stream per
    document, user or conversation; queries are read over an empty memory (the default), so one
    query vector fits every stream:

    >>> emb = EvoEmbeddings(stream_key="source")                               # doctest: +SKIP
    >>> store = InMemoryVectorStore(emb)                                       # doctest: +SKIP
    >>> emb.add_documents_to(store, chunks)  # each source's chunks read in order, in their own stream
    >>> store.similarity_search("Where does Ana live?")                        # doctest: +SKIP

    Example:
        >>> emb = EvoEmbeddings()                                              # doctest: +SKIP
        >>> emb.stream("ana").embed_documents(["I grew up in Porto.", "Now I live in Oslo."])  # doctest: +SKIP
        >>> emb.embed_query("Where does Ana live?")                           # doctest: +SKIP
    """

    def __init__(
        self,
        model: EvoEmbeddingModel | str | os.PathLike | None = None,
        *,
        stream_id: str = DEFAULT_STREAM,
        query_memory: bool = defaults.QUERY_MEMORY,
        stream_key: StreamKey = DEFAULT_STREAM_KEY,
        long_texts: str = defaults.LONG_TEXTS,
    ) -> None:
        """Create the embeddings.

        Args:
            model: An ``EvoEmbeddingModel``, a model name or directory, or ``None`` for the shipped
                default model (loaded once per process).
            stream_id: The stream used until :meth:`stream` switches to another.
            query_memory: Read queries over the current stream's memory (default ``False``: over
                an empty memory, the setting for a store holding many streams).
            stream_key: How :meth:`add_documents_to` picks each document's stream: a metadata key
                (default ``"source"``), a callable ``Document -> stream id``, or ``None``
                (``metadata["stream_id"]`` always wins; else ``"default"``).
            long_texts: A text over the segment limit: ``"truncate"`` (default) or ``"split"``
                (read as consecutive segments, one vector per text, as in ``EvoStore``).

        Raises:
            TypeError: ``stream_id`` is not a string, ``query_memory`` not a bool, or a bad ``stream_key``.
            ValueError: ``stream_id`` is empty.
        """
        if not isinstance(query_memory, bool):
            raise TypeError(f"query_memory must be a bool, got {type(query_memory).__name__}")
        self.model = resolve_model(model)
        self.query_memory = query_memory
        self.stream_key = check_stream_key(stream_key)
        self._pool = StreamPool(self.model, long_texts)
        self.stream(stream_id)

    @property
    def stream_id(self) -> str:
        """The stream that ``embed_documents`` appends to and ``embed_query`` reads."""
        return self._stream_id

    def stream(self, stream_id: str) -> EvoEmbeddings:
        """Switch to a stream (created empty on first use).

        Args:
            stream_id: The stream's id.

        Returns:
            ``self``, for chaining.

        Raises:
            TypeError: ``stream_id`` is not a string.
            ValueError: ``stream_id`` is empty or whitespace-only.
        """
        self._stream_id = validate_id(stream_id, "stream_id")
        return self

    def reset(self) -> None:
        """Clear the current stream's memory."""
        self._pool.reset(self._stream_id)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Append texts to the current stream, in order.

        Args:
            texts: Non-empty strings.

        Returns:
            One vector per text (L2-normalised).

        Raises:
            TypeError: ``texts`` is not a list of strings.
            ValueError: A text is empty or whitespace-only.
        """
        texts = validate_texts(texts)
        if not texts:
            return []
        return self._pool.add(self._stream_id, texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        """Encode a query against the current stream's memory (which it does not change), or
        against an empty memory with ``query_memory=False``.

        Args:
            text: The query.

        Returns:
            The query's vector (L2-normalised).

        Raises:
            TypeError: ``text`` is not a string.
            ValueError: ``text`` is empty or whitespace-only.
        """
        query = validate_id(text, "query")
        return self._pool.encode_query(self._stream_id, query, memory=self.query_memory).tolist()

    def add_documents_to(self, vectorstore: Any, documents: Sequence[Document], **kwargs: Any) -> list[str]:
        """Add documents to any LangChain vector store built on these embeddings, one stream per stream key.

        Documents are grouped by their stream (``metadata["stream_id"]``, else the stream key,
        else ``"default"``), keeping their order within each stream; each group is read in its own
        stream and added with ``vectorstore.add_documents``. The current stream is restored after.

        Args:
            vectorstore: A vector store whose embeddings are this object.
            documents: The documents, in reading order.
            **kwargs: Passed to ``vectorstore.add_documents`` (not ``ids``: set ``Document.id``).

        Returns:
            The ids the vector store returned, in the order of ``documents``.

        Raises:
            ValueError: ``ids`` is among ``kwargs``.
        """
        if "ids" in kwargs:
            raise ValueError("set Document.id instead of passing ids= (documents are regrouped by stream)")
        groups: dict[str, list[int]] = {}
        for n, doc in enumerate(documents):
            groups.setdefault(stream_of(doc.page_content, doc.metadata, self.stream_key), []).append(n)
        ids: list[Any] = [None] * len(documents)
        current = self._stream_id
        try:
            for stream_id, members in groups.items():
                self.stream(stream_id)
                added = vectorstore.add_documents([documents[n] for n in members], **kwargs)
                for n, id_ in zip(members, added):
                    ids[n] = id_
        finally:
            self._stream_id = current
        return ids
