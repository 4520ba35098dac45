"""LangChain integration: embeddings, a vector store, a retriever and a reranker built on EvoEmbedding.

* :class:`EvoEmbeddings` – a stateful ``Embeddings``: ``embed_documents`` appends texts to the current
  stream in order (so vectors depend on order and on what came before); ``embed_query`` encodes
  against the current memory. Works with any LangChain vector store.
* :class:`EvoVectorStore` – a ``VectorStore`` on :class:`~evoembedding_integrations.store.EvoStore`
  (streams, stable ids, filters, MMR, safe persistence). Given any other LangChain ``Embeddings`` it
  is a plain, safe FAISS store (no pickle).
* :class:`EvoRetriever` – a ``BaseRetriever`` over one stream: ``EvoRetriever(texts=[...])`` or
  ``messages=[...]``; ``invoke(query, k=1)``; documents carry ``id`` and ``score`` in metadata.
* :class:`EvoRerank` – a ``BaseDocumentCompressor`` (for ``ContextualCompressionRetriever``): streams
  the candidates in the given order, ranks them against the query encoded with that memory.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun, Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.embeddings import Embeddings
from langchain_core.messages import BaseMessage
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import VectorStore
from pydantic import ConfigDict, Field

from evoembedding_core import EvoEmbeddingModel, EvoStream
from evoembedding_core.client import fold_messages
from evoembedding_core.lexical import RRF_K
from evoembedding_core.stream import validate_texts

from .store import DEFAULT_STREAM, EvoStore, Hit, model_lock, resolve_model

__all__ = ["EvoEmbeddings", "EvoRerank", "EvoRetriever", "EvoVectorStore"]

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "user": "user", "assistant": "assistant"}


class EvoEmbeddings(Embeddings):
    """Context-aware LangChain embeddings (stateful: see the module docstring).

    >>> emb = EvoEmbeddings()                                              # doctest: +SKIP
    >>> emb.stream("ana").embed_documents(["I grew up in Porto.", "Now I live in Oslo."])  # doctest: +SKIP
    >>> emb.embed_query("Where does Ana live?")                           # doctest: +SKIP
    """

    def __init__(self, model: EvoEmbeddingModel | str | os.PathLike | None = None, *, stream_id: str = DEFAULT_STREAM):
        self.model = resolve_model(model)
        self._readers: dict[str, EvoStream] = {}
        self._lock = threading.RLock()
        self.stream(stream_id)

    @property
    def stream_id(self) -> str:
        """The stream that ``embed_documents`` appends to and ``embed_query`` reads."""
        return self._stream_id

    def stream(self, stream_id: str) -> "EvoEmbeddings":
        """Switch to stream ``stream_id`` (created empty if new); returns ``self`` for chaining."""
        stream_id = validate_texts([stream_id], "stream_id")[0] if isinstance(stream_id, str) else stream_id
        if not isinstance(stream_id, str):
            raise TypeError(f"stream_id must be a string, got {type(stream_id).__name__}")
        with self._lock:
            self._readers.setdefault(stream_id, EvoStream(self.model))
            self._stream_id = stream_id
        return self

    def reset(self) -> None:
        """Clear the current stream's memory."""
        with self._lock:
            self._readers[self._stream_id] = EvoStream(self.model)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Append ``texts`` to the current stream, in order; returns their vectors."""
        texts = validate_texts(texts)
        if not texts:
            return []
        with self._lock, model_lock(self.model):
            return self._readers[self._stream_id].add(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        """The query's vector against the current stream's memory (which it does not change)."""
        if not isinstance(text, str):
            raise TypeError(f"query must be a string, got {type(text).__name__}")
        with self._lock, model_lock(self.model):
            return self._readers[self._stream_id].encode_query(text).tolist()


class EvoVectorStore(VectorStore):
    """A LangChain vector store on :class:`EvoStore`.

    ``embedding``: ``None`` (the default EvoEmbedding model), an :class:`EvoEmbeddings`, an
    ``EvoEmbeddingModel`` / name / path (context-aware store), or any other LangChain ``Embeddings``
    (plain store). ``stream_id`` for adding comes from the ``stream_id`` keyword, else each
    metadata's ``"stream_id"``, else ``"default"``; searches cover all streams unless ``stream_id``
    (one or several) is given. Scores are cosine similarities (higher is better); with
    ``hybrid=True`` (passed to :class:`EvoStore`, like ``query_memory``) similarity search fuses them
    with BM25 and scores are the fused reciprocal-rank scores.
    """

    def __init__(self, embedding: Any = None, *, store: EvoStore | None = None, index: str = "flat", **options):
        if store is None:
            if isinstance(embedding, Embeddings) and not isinstance(embedding, EvoEmbeddings):
                store = EvoStore(embeddings=embedding, index=index, **options)
            else:
                model = embedding.model if isinstance(embedding, EvoEmbeddings) else embedding
                store = EvoStore(model, index=index, **options)
        elif embedding is not None:
            raise ValueError("pass either embedding or store, not both")
        self.store = store
        self._embedding = embedding if isinstance(embedding, Embeddings) else None

    @property
    def embeddings(self) -> Embeddings:
        if self._embedding is None:
            self._embedding = self.store.embeddings if self.store.mode == "plain" else EvoEmbeddings(self.store.model)
        return self._embedding

    # ------------------------------------------------------------------ writing
    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict] | None = None,
        *,
        ids: list[str | None] | None = None,
        stream_id: str | None = None,
        **kwargs: Any,
    ) -> list[str]:
        if isinstance(texts, (str, bytes, bytearray)) or not isinstance(texts, Iterable):
            raise TypeError(f"texts must be an iterable of strings, got {type(texts).__name__}")
        texts = list(texts)
        if stream_id is None:
            sources = (
                metadatas if isinstance(metadatas, Sequence) and len(metadatas) == len(texts) else [None] * len(texts)
            )
            stream_id = [
                (m or {}).get("stream_id", DEFAULT_STREAM) if isinstance(m, dict) else DEFAULT_STREAM for m in sources
            ]
        return self.store.add(texts, stream_id=stream_id, ids=ids, metadatas=metadatas)

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        """Delete by id (missing ids are ignored). The streams' memories are not rewound."""
        if ids is None:
            raise ValueError("delete needs a list of ids (use .store.clear() to remove everything)")
        self.store.delete(ids)
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        return [Document(id=r.id, page_content=r.text, metadata=r.metadata) for r in self.store.get(list(ids))]

    # ------------------------------------------------------------------ searching
    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: Any = None, stream_id: Any = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        return _scored(self.store.search(query, k=k, stream_ids=stream_id, filter=filter))

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k, **kwargs)]

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: Any = None, stream_id: Any = None, **kwargs: Any
    ) -> list[Document]:
        return [
            doc for doc, _ in _scored(self.store.search_by_vector(embedding, k=k, stream_ids=stream_id, filter=filter))
        ]

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Any = None,
        stream_id: Any = None,
        **kwargs: Any,
    ) -> list[Document]:
        hits = self.store.mmr_search(
            query, k=k, fetch_k=fetch_k, lambda_mult=lambda_mult, stream_ids=stream_id, filter=filter
        )
        return [doc for doc, _ in _scored(hits)]

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Any = None,
        stream_id: Any = None,
        **kwargs: Any,
    ) -> list[Document]:
        hits = self.store.mmr_search_by_vector(
            embedding, k=k, fetch_k=fetch_k, lambda_mult=lambda_mult, stream_ids=stream_id, filter=filter
        )
        return [doc for doc, _ in _scored(hits)]

    def _select_relevance_score_fn(self):
        if self.store.hybrid:  # fused score in (0, 2 / (k + 1)]: both rankings put the text first
            return lambda score: score * (RRF_K + 1) / 2.0
        return lambda score: (score + 1.0) / 2.0  # cosine in [-1, 1] -> relevance in [0, 1]

    # ------------------------------------------------------------------ construction and persistence
    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Any = None,
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        index: str = "flat",
        **kwargs: Any,
    ) -> "EvoVectorStore":
        store = cls(embedding, index=index)
        store.add_texts(texts, metadatas, ids=ids, **kwargs)
        return store

    def save_local(self, folder_path: str | os.PathLike) -> None:
        """Save atomically (FAISS vectors, texts, metadata, memories; no pickle)."""
        self.store.save(folder_path)

    @classmethod
    def load_local(
        cls,
        folder_path: str | os.PathLike,
        embeddings: Any = None,
        *,
        allow_dangerous_deserialization: bool = False,
        **options: Any,
    ) -> "EvoVectorStore":
        """Load a saved store, verified. ``embeddings`` as for the constructor (plain stores need theirs);
        ``options`` as for :meth:`EvoStore.load` (``index``, ``query_memory``, ``hybrid``).

        Unlike langchain-community's FAISS, nothing is unpickled: ``allow_dangerous_deserialization``
        is accepted (drop-in calls) and changes nothing.
        """
        if isinstance(embeddings, Embeddings) and not isinstance(embeddings, EvoEmbeddings):
            return cls(store=EvoStore.load(folder_path, embeddings=embeddings, **options))._with_embedding(embeddings)
        model = embeddings.model if isinstance(embeddings, EvoEmbeddings) else embeddings
        return cls(store=EvoStore.load(folder_path, model, **options))._with_embedding(embeddings)

    def _with_embedding(self, embedding) -> "EvoVectorStore":
        self._embedding = embedding if isinstance(embedding, Embeddings) else None
        return self


def _scored(hits: list[Hit]) -> list[tuple[Document, float]]:
    return [(Document(id=h.id, page_content=h.text, metadata=h.metadata), h.score) for h in hits]


def _messages_to_dicts(messages: Sequence[Any]) -> list[dict]:
    if isinstance(messages, (str, dict)) or not isinstance(messages, Sequence):
        raise TypeError("messages must be a list of {'role', 'content'} dicts or LangChain messages")
    out = []
    for i, message in enumerate(messages):
        if isinstance(message, BaseMessage):
            role = _ROLES.get(message.type)
            if role is None or not isinstance(message.content, str):
                raise ValueError(f"messages[{i}]: unsupported message type {message.type!r} or non-text content")
            message = {"role": role, "content": message.content}
        out.append(message)
    return out


class EvoRetriever(BaseRetriever):
    """Retrieve from one stream of an :class:`EvoVectorStore` (by default a fresh one on the default model).

    >>> retriever = EvoRetriever(texts=["Ana grew up in Porto.", "Ana moved to Oslo."], k=1)  # doctest: +SKIP
    >>> retriever.invoke("Where does Ana live now?")                                        # doctest: +SKIP

    Returned documents have ``id`` set and ``score``, ``stream_id`` and ``position`` in metadata.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    vectorstore: EvoVectorStore | None = None
    k: int = Field(default=4, ge=1)
    stream_id: str | list[str] | None = DEFAULT_STREAM
    """Stream(s) searched and appended to (``None`` searches all streams; adding then goes to "default")."""
    filter: Any = None

    def __init__(
        self,
        *,
        texts: Sequence[str] | None = None,
        messages: Sequence[Any] | None = None,
        metadatas: list[dict] | None = None,
        model: EvoEmbeddingModel | str | os.PathLike | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if self.vectorstore is None:
            self.vectorstore = EvoVectorStore(model)
        elif model is not None:
            raise ValueError("pass either vectorstore or model, not both")
        if texts is not None:
            self.add_texts(texts, metadatas=metadatas)
        if messages is not None:
            self.add_messages(messages)

    @property
    def _target_stream(self) -> str:
        return self.stream_id if isinstance(self.stream_id, str) else DEFAULT_STREAM

    def add_texts(
        self, texts: Sequence[str], metadatas: list[dict] | None = None, ids: list[str] | None = None
    ) -> list[str]:
        """Stream texts in, in order; returns their ids."""
        return self.vectorstore.store.add(texts, stream_id=self._target_stream, ids=ids, metadatas=metadatas)

    def add_messages(self, messages: Sequence[Any]) -> list[str]:
        """Stream chat messages in (dicts or LangChain messages); a user message and the reply after it form one turn."""
        turns, _ = fold_messages([*_messages_to_dicts(messages), {"role": "user", "content": "end"}])
        return self.add_texts(turns, metadatas=[{"kind": "turn"} for _ in turns])  # the sentinel above is dropped

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None, filter: Any = None
    ) -> list[Document]:
        hits = self.vectorstore.store.search(
            query,
            k=self.k if k is None else k,
            stream_ids=self.stream_id,
            filter=self.filter if filter is None else filter,
        )
        return [
            Document(
                id=h.id,
                page_content=h.text,
                metadata={**h.metadata, "score": h.score, "stream_id": h.stream_id, "position": h.position},
            )
            for h in hits
        ]


class EvoRerank(BaseDocumentCompressor):
    """Rerank candidate documents the EvoEmbedding way: read them in order, then rank by the query.

    >>> from langchain_classic.retrievers import ContextualCompressionRetriever  # doctest: +SKIP
    >>> ContextualCompressionRetriever(base_compressor=EvoRerank(top_n=2), base_retriever=...)  # doctest: +SKIP

    Each returned document gets ``relevance_score`` (cosine) in its metadata.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: Any = None
    """An ``EvoEmbeddingModel``, a name or path, or ``None`` for the default model."""
    top_n: int | None = Field(default=3, ge=1)

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        if not documents:
            return []
        model = resolve_model(self.model)
        texts = validate_texts([d.page_content for d in documents], "documents' page_content")
        stream = model.stream()
        with model_lock(model):
            scores = stream.add(texts) @ stream.encode_query(query)
        order = np.argsort(-scores, kind="stable")[: self.top_n]
        return [
            documents[i].model_copy(update={"metadata": {**documents[i].metadata, "relevance_score": float(scores[i])}})
            for i in order
        ]
