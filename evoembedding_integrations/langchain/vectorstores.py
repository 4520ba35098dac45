"""EvoVectorStore: a LangChain ``VectorStore`` on :class:`~evoembedding_integrations.store.EvoStore`.

With EvoEmbedding (the default) every stream is read in order by its own memory and each query is
encoded against the memory of every searched stream. Given any other LangChain ``Embeddings`` it is
a plain, safe FAISS store (no pickle). Streams, stable ids, metadata filters, MMR, hybrid BM25 search
and the verified persistence all come from the store.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from evoembedding_core.lexical import RRF_K

from ..store import DEFAULT_STREAM, EvoStore, Hit
from .embeddings import EvoEmbeddings

__all__ = ["EvoVectorStore"]


class EvoVectorStore(VectorStore):
    """A LangChain vector store on :class:`EvoStore`.

    Texts are added to the stream given by the ``stream_id`` keyword, else by each metadata's
    ``"stream_id"``, else to ``"default"``. Searches cover every stream unless ``stream_id`` (one id
    or several) is given. Scores are cosine similarities (higher is better); with ``hybrid=True``
    (an :class:`EvoStore` option, like ``query_memory``) similarity search fuses the vector ranking
    with BM25 and scores are the fused reciprocal-rank scores.

    Example:
        >>> store = EvoVectorStore()                                                   # doctest: +SKIP
        >>> store.add_texts(["Ana: I grew up in Porto.", "Ana: I moved to Oslo."], stream_id="ana")  # doctest: +SKIP
        >>> store.similarity_search("Where does Ana live now?", k=1)                   # doctest: +SKIP
    """

    def __init__(self, embedding: Any = None, *, store: EvoStore | None = None, index: str = "flat", **options: Any):
        """Create a store, or wrap an existing one.

        Args:
            embedding: ``None`` (the default EvoEmbedding model), an :class:`EvoEmbeddings`, an
                ``EvoEmbeddingModel`` / name / path (context-aware store), or any other LangChain
                ``Embeddings`` (plain store).
            store: An existing :class:`EvoStore` to wrap (then ``embedding`` must be ``None``).
            index: ``"flat"`` (exact) or ``"hnsw"``, as for :class:`EvoStore`.
            **options: Other :class:`EvoStore` options (``query_memory``, ``hybrid``, ``hnsw_threshold``).

        Raises:
            ValueError: Both ``embedding`` and ``store`` are given.
        """
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
        """The embeddings in use: the plain store's own, or an :class:`EvoEmbeddings` on the store's model."""
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
        """Add texts to their streams, in order.

        Args:
            texts: The texts.
            metadatas: One metadata dict per text, or ``None``.
            ids: One id per text (``None`` entries get a UUID); re-adding an id replaces its entry.
            stream_id: The stream of every text; ``None`` takes each metadata's ``"stream_id"``
                (default ``"default"``).
            **kwargs: Ignored (LangChain's signature).

        Returns:
            The ids of the added texts.

        Raises:
            TypeError: ``texts`` is a string or not iterable, or an argument has the wrong type.
            ValueError: A text is empty, or the lengths of ``ids`` / ``metadatas`` do not match.
        """
        if isinstance(texts, (str, bytes, bytearray)) or not isinstance(texts, Iterable):
            raise TypeError(f"texts must be an iterable of strings, got {type(texts).__name__}")
        texts = list(texts)
        streams = stream_id if stream_id is not None else _streams_from_metadata(metadatas, len(texts))
        return self.store.add(texts, stream_id=streams, ids=ids, metadatas=metadatas)

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        """Delete entries by id (missing ids are ignored); the streams' memories are not rewound.

        Args:
            ids: The ids to delete.
            **kwargs: Ignored (LangChain's signature).

        Returns:
            ``True``.

        Raises:
            ValueError: ``ids`` is ``None`` (use ``.store.clear()`` to remove everything).
        """
        if ids is None:
            raise ValueError("delete needs a list of ids (use .store.clear() to remove everything)")
        self.store.delete(ids)
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The stored documents with these ids (missing ids are skipped), in the given order."""
        return [Document(id=r.id, page_content=r.text, metadata=r.metadata) for r in self.store.get(list(ids))]

    # ------------------------------------------------------------------ searching
    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: Any = None, stream_id: Any = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """The ``k`` best documents for ``query`` with their scores, best first.

        Args:
            query: The query, encoded against each searched stream's memory.
            k: How many documents to return.
            filter: A metadata filter in :meth:`EvoStore.search`'s language, or a callable.
            stream_id: One stream id, several, or ``None`` for all streams.
            **kwargs: Ignored.

        Returns:
            ``(document, score)`` pairs; each document carries its ``id``.
        """
        return _scored(self.store.search(query, k=k, stream_ids=stream_id, filter=filter))

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        """The ``k`` best documents for ``query`` (arguments as for :meth:`similarity_search_with_score`)."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k, **kwargs)]

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: Any = None, stream_id: Any = None, **kwargs: Any
    ) -> list[Document]:
        """The ``k`` documents closest to a given query vector (the same vector in every stream)."""
        hits = self.store.search_by_vector(embedding, k=k, stream_ids=stream_id, filter=filter)
        return [doc for doc, _ in _scored(hits)]

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
        """Maximal marginal relevance: the ``fetch_k`` best candidates, then ``k`` relevant and diverse ones."""
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
        """Maximal marginal relevance search for a given query vector."""
        hits = self.store.mmr_search_by_vector(
            embedding, k=k, fetch_k=fetch_k, lambda_mult=lambda_mult, stream_ids=stream_id, filter=filter
        )
        return [doc for doc, _ in _scored(hits)]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
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
    ) -> EvoVectorStore:
        """A new store holding ``texts`` (``embedding`` as for the constructor; ``kwargs`` go to :meth:`add_texts`)."""
        store = cls(embedding, index=index)
        store.add_texts(texts, metadatas, ids=ids, **kwargs)
        return store

    def save_local(self, folder_path: str | os.PathLike) -> None:
        """Save atomically: FAISS vectors, texts, metadata and memories, no pickle.

        Args:
            folder_path: The directory to write (created if missing).
        """
        self.store.save(folder_path)

    @classmethod
    def load_local(
        cls,
        folder_path: str | os.PathLike,
        embeddings: Any = None,
        *,
        allow_dangerous_deserialization: bool = False,
        **options: Any,
    ) -> EvoVectorStore:
        """Load a saved store, verified; nothing is unpickled.

        Args:
            folder_path: A directory written by :meth:`save_local`.
            embeddings: As for the constructor; a plain store needs its own ``Embeddings``.
            allow_dangerous_deserialization: Accepted for drop-in calls; changes nothing.
            **options: As for :meth:`EvoStore.load` (``index``, ``query_memory``, ``hybrid``).

        Returns:
            The loaded store.

        Raises:
            CorruptStoreError: The directory is not a valid saved store.
            ModelMismatchError: The store was written with another model or embedder.
        """
        if isinstance(embeddings, Embeddings) and not isinstance(embeddings, EvoEmbeddings):
            loaded = EvoStore.load(folder_path, embeddings=embeddings, **options)
        else:
            model = embeddings.model if isinstance(embeddings, EvoEmbeddings) else embeddings
            loaded = EvoStore.load(folder_path, model, **options)
        vectorstore = cls(store=loaded)
        vectorstore._embedding = embeddings if isinstance(embeddings, Embeddings) else None
        return vectorstore


def _streams_from_metadata(metadatas: Any, n: int) -> list[str]:
    """Each text's stream: its metadata's ``"stream_id"``, else ``"default"``."""
    if not isinstance(metadatas, Sequence) or len(metadatas) != n:
        return [DEFAULT_STREAM] * n
    return [m.get("stream_id", DEFAULT_STREAM) if isinstance(m, dict) else DEFAULT_STREAM for m in metadatas]


def to_document(hit: Hit, **extra: Any) -> Document:
    """A store hit (or record) as a LangChain ``Document``; ``extra`` is added to its metadata."""
    return Document(id=hit.id, page_content=hit.text, metadata={**hit.metadata, **extra} if extra else hit.metadata)


def _scored(hits: list[Hit]) -> list[tuple[Document, float]]:
    return [(to_document(h), h.score) for h in hits]
