"""EvoVectorStore: a LangChain ``VectorStore`` on :class:`~evoembedding_integrations.store.EvoStore`.

With EvoEmbedding (the default) every stream is read in order by its own memory and each query is
encoded against the memory of every searched stream. Documents are read one stream per
``metadata["source"]`` by default (the stream key, see :mod:`.stream_keys`), and an edited
document's stream is read again from its start. Given any other LangChain ``Embeddings`` it is a
plain, safe FAISS store (no pickle). Streams, stable ids, metadata filters, MMR, hybrid BM25 search
and persistence (``path=`` for a durable store, or ``save_local``) all come from the store.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.runnables.config import run_in_executor
from langchain_core.vectorstores import VectorStore

from evoembedding_core.lexical import RRF_K
from evoembedding_core.validation import validate_id, validate_texts

from ..store import DEFAULT_STREAM, EvoStore, Hit, Record
from .embeddings import EvoEmbeddings
from .stream_keys import DEFAULT_STREAM_KEY, StreamKey, check_stream_key, stream_of, streams_of

__all__ = ["REREAD_MODES", "EvoVectorStore", "cosine_relevance", "fused_relevance"]

REREAD_MODES = ("documents", "always", "never")
"""The values of :class:`EvoVectorStore`'s ``reread`` option."""

_UNSET = object()


class EvoVectorStore(VectorStore):
    """A LangChain vector store on :class:`EvoStore`.

    **Streams.** Each text is read in a stream: the ``stream_id`` keyword if given, else its
    metadata's ``"stream_id"``, else its **stream key** (``stream_key="source"`` by default, so the
    chunks of each source file form their own stream), else ``"default"``. Searches cover every
    stream unless ``stream_id=`` (one id or several) or ``filter={"stream_id": ...}`` names some.

    **Edits re-read.** When an add replaces existing ids, or a delete removes entries, of a stream
    named by the stream key (a document), that stream is read again from its start, so its vectors
    equal a fresh read of what it now holds (chunks ordered by ``metadata["start_index"]`` when
    every chunk has one, e.g. from a text splitter with ``add_start_index=True``; else in their
    stored order). This is what LangChain's indexing API (``index()``) needs when a document is
    edited. ``reread="always"`` does the same for every stream, ``reread="never"`` for none (the
    stream's memory then keeps what was deleted).

    **Scores.** ``similarity_search_with_score`` returns cosine similarities (higher is better);
    with ``hybrid=True`` (an :class:`EvoStore` option, like ``query_memory``) similarity search
    fuses the vector ranking with BM25 and scores are the fused reciprocal-rank scores. Relevance
    scores (``similarity_search_with_relevance_scores``, the ``similarity_score_threshold``
    retriever) are in [0, 1]: see :func:`cosine_relevance` and :func:`fused_relevance`.

    Example:
        >>> store = EvoVectorStore.from_documents(chunks, query_memory=False, hybrid=True)  # doctest: +SKIP
        >>> store.similarity_search("Where does Ana live now?", k=1, filter={"stream_id": "notes.md"})  # doctest: +SKIP
    """

    def __init__(
        self,
        embedding: Any = None,
        *,
        store: EvoStore | None = None,
        index: str = "flat",
        stream_key: StreamKey = DEFAULT_STREAM_KEY,
        reread: str = "documents",
        **options: Any,
    ):
        """Create a store, or wrap an existing one.

        Args:
            embedding: ``None`` (the default EvoEmbedding model), an :class:`EvoEmbeddings`, an
                ``EvoEmbeddingModel`` / name / path (context-aware store), or any other LangChain
                ``Embeddings`` (plain store).
            store: An existing :class:`EvoStore` to wrap (then ``embedding`` must be ``None``).
            index: ``"flat"`` (exact) or ``"hnsw"``, as for :class:`EvoStore`.
            stream_key: The metadata key naming a text's stream when it has no ``"stream_id"``
                (default ``"source"``), a callable ``Document -> stream id``, or ``None``.
            reread: Which streams are read again from their start after an edit: ``"documents"``
                (streams named by the stream key), ``"always"`` or ``"never"``.
            **options: Other :class:`EvoStore` options (``query_memory``, ``hybrid``, ``hnsw_threshold``).

        Raises:
            ValueError: Both ``embedding`` and ``store`` are given, or an unknown ``reread``.
            TypeError: A bad ``stream_key`` or an unknown option.
        """
        self.stream_key = check_stream_key(stream_key)
        if reread not in REREAD_MODES:
            raise ValueError(f"reread must be one of {REREAD_MODES}, got {reread!r}")
        self.reread = reread
        if store is None:
            if isinstance(embedding, Embeddings) and not isinstance(embedding, EvoEmbeddings):
                store = EvoStore(embeddings=embedding, index=index, **options)
            else:
                model = embedding.model if isinstance(embedding, EvoEmbeddings) else embedding
                store = EvoStore(model, index=index, **options)
        elif embedding is not None:
            raise ValueError("pass either embedding or store, not both")
        elif options:
            raise TypeError(f"options {sorted(options)} cannot be given with an existing store")
        self.store = store
        self._embedding = embedding if isinstance(embedding, Embeddings) else None
        self._lock = threading.RLock()

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
        stream_key: Any = _UNSET,
        progress: Any = None,
        **kwargs: Any,
    ) -> list[str]:
        """Add texts to their streams, in order.

        Args:
            texts: The texts.
            metadatas: One metadata dict per text, or ``None``.
            ids: One id per text (``None`` entries get a UUID); re-adding an id replaces its entry
                (and re-reads its document's stream, see the class docstring).
            stream_id: The stream of every text; ``None`` takes each text's stream from its
                metadata (``"stream_id"``, else the stream key, else ``"default"``).
            stream_key: Overrides the store's stream key for this call.
            progress: As for :meth:`EvoStore.add`: ``None`` (a bar for bulk adds in a terminal),
                ``True`` / ``False``, or a callable ``(done, total)``.
            **kwargs: Ignored (LangChain's signature, e.g. the indexing API's ``batch_size``).

        Returns:
            The ids of the added texts.

        Raises:
            TypeError: ``texts`` is a string or not iterable, or an argument has the wrong type.
            ValueError: A text is empty, or the lengths of ``ids`` / ``metadatas`` do not match.
        """
        if isinstance(texts, (str, bytes, bytearray)) or not isinstance(texts, Iterable):
            raise TypeError(f"texts must be an iterable of strings, got {type(texts).__name__}")
        texts = list(texts)
        key = self.stream_key if stream_key is _UNSET else check_stream_key(stream_key)
        streams = stream_id if stream_id is not None else streams_of(texts, metadatas, key)
        with self._lock:
            given = [i for i in ids if i is not None] if isinstance(ids, Sequence) and not isinstance(ids, str) else []
            replaced = self.store.get(given) if given and self.reread != "never" else []
            reread = {r.stream_id for r in replaced if self._rereads(r)}
            if not reread:
                return self.store.add(texts, stream_id=streams, ids=ids, metadatas=metadatas, progress=progress)
            return self._add_rereading(texts, streams, ids, metadatas, reread, progress)

    def _add_rereading(self, texts, streams, ids, metadatas, reread: set[str], progress: Any = None) -> list[str]:
        """Add texts, reading the streams in ``reread`` again from their start with the new texts in place."""
        n = len(texts)
        streams = [streams] * n if isinstance(streams, str) else list(streams)
        ids = [str(uuid.uuid4()) if i is None else i for i in ids]
        metadatas = [{} if m is None else m for m in metadatas] if metadatas is not None else [{} for _ in range(n)]
        if not (len(streams) == len(ids) == len(metadatas) == n):
            return self.store.add(texts, stream_id=streams, ids=ids, metadatas=metadatas)  # raises the usual error
        _check_entries(texts, streams, ids, metadatas)  # before a stream is dropped: a bad call changes nothing
        new = {i: (t, m, s) for t, m, s, i in zip(texts, metadatas, streams, ids)}
        plans = {}
        for sid in sorted(reread):
            content = []
            for record in self.store.get(self.store.ids(sid)):
                if record.id not in new:
                    content.append((record.id, record.text, record.metadata))
                elif new[record.id][2] == sid:  # replaced in place
                    content.append((record.id, *new[record.id][:2]))
            placed = {c[0] for c in content}
            content += [(i, t, m) for i, (t, m, s) in new.items() if s == sid and i not in placed]
            plans[sid] = _reading_order(content)
        rest = [i for i in ids if new[i][2] not in plans]
        for sid, content in plans.items():
            self._replace_stream(sid, content, progress)
        if rest:
            self.store.add(
                [new[i][0] for i in rest],
                stream_id=[new[i][2] for i in rest],
                ids=rest,
                metadatas=[new[i][1] for i in rest],
                progress=progress,
            )
        return ids

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        """Delete entries by id (missing ids are ignored).

        A document's stream (see the class docstring) is then read again from its start, so its
        memory no longer holds the deleted text; other streams' memories are not rewound.

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
        with self._lock:
            gone = self.store.get(ids) if self.reread != "never" else []
            reread = {r.stream_id for r in gone if self._rereads(r)}
            self.store.delete(ids)
            for sid in sorted(reread):
                remaining = self.store.get(self.store.ids(sid))
                self._replace_stream(sid, _reading_order([(r.id, r.text, r.metadata) for r in remaining]))
        return True

    def stream_of(self, document: Document) -> str:
        """The stream a document would be added to (its ``"stream_id"``, else the stream key, else ``"default"``)."""
        return stream_of(document.page_content, document.metadata, self.stream_key)

    def _rereads(self, record: Record) -> bool:
        """Whether an edit of this entry re-reads its stream (never in a plain store: no memory, nothing to redo)."""
        if self.store.mode == "plain":
            return False
        if self.reread == "always":
            return True
        if self.reread == "never" or "stream_id" in record.metadata:
            return False
        named = stream_of(record.text, record.metadata, self.stream_key)
        return named == record.stream_id and named != DEFAULT_STREAM

    def _replace_stream(self, stream_id: str, content: list[tuple[str, str, dict]], progress: Any = None) -> None:
        """Drop a stream (entries and memory) and read ``(id, text, metadata)`` into it afresh, in order."""
        self.store.delete_stream(stream_id)
        if content:
            ids, texts, metadatas = (list(column) for column in zip(*content))
            self.store.add(texts, stream_id=stream_id, ids=ids, metadatas=metadatas, progress=progress)

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
            filter: A metadata filter in :meth:`EvoStore.search`'s language, or a callable. A
                top-level ``"stream_id"`` condition (an id, ``{"$eq": id}`` or ``{"$in": [...]}``)
                selects streams, however each text was given its stream.
            stream_id: One stream id, several, or ``None`` for all streams.
            **kwargs: Ignored.

        Returns:
            ``(document, score)`` pairs; each document carries its ``id``.
        """
        streams, filter = _where(filter, stream_id)
        if streams == []:
            return []
        return _scored(self.store.search(query, k=k, stream_ids=streams, filter=filter))

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        """The ``k`` best documents for ``query`` (arguments as for :meth:`similarity_search_with_score`)."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k, **kwargs)]

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: Any = None, stream_id: Any = None, **kwargs: Any
    ) -> list[Document]:
        """The ``k`` documents closest to a given query vector (the same vector in every stream)."""
        streams, filter = _where(filter, stream_id)
        if streams == []:
            return []
        hits = self.store.search_by_vector(embedding, k=k, stream_ids=streams, filter=filter)
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
        streams, filter = _where(filter, stream_id)
        if streams == []:
            return []
        hits = self.store.mmr_search(
            query, k=k, fetch_k=fetch_k, lambda_mult=lambda_mult, stream_ids=streams, filter=filter
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
        streams, filter = _where(filter, stream_id)
        if streams == []:
            return []
        hits = self.store.mmr_search_by_vector(
            embedding, k=k, fetch_k=fetch_k, lambda_mult=lambda_mult, stream_ids=streams, filter=filter
        )
        return [doc for doc, _ in _scored(hits)]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """:func:`fused_relevance` for a hybrid store, else :func:`cosine_relevance`."""
        return fused_relevance if self.store.hybrid else cosine_relevance

    # ------------------------------------------------------------------ construction and persistence
    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Any = None,
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        stream_id: str | None = None,
        **options: Any,
    ) -> EvoVectorStore:
        """A new store holding ``texts``.

        Args:
            texts: The texts, read in order within each stream.
            embedding: As for the constructor (``None``: the default EvoEmbedding model).
            metadatas: One metadata dict per text, or ``None``.
            ids: One id per text, or ``None``.
            stream_id: As for :meth:`add_texts`.
            **options: Every constructor option (``index``, ``stream_key``, ``reread``,
                ``query_memory``, ``hybrid``, ``hnsw_threshold``, ``store``).

        Returns:
            The new store.

        Raises:
            TypeError: An unknown option (options are never silently dropped).
        """
        store = cls(embedding, **options)
        store.add_texts(texts, metadatas, ids=ids, stream_id=stream_id)
        return store

    @classmethod
    def from_documents(cls, documents: list[Document], embedding: Any = None, **kwargs: Any) -> EvoVectorStore:
        """A new store holding ``documents`` (one stream per ``metadata["source"]`` by default).

        Args:
            documents: The documents; their ``id`` (if any) becomes the entry's id.
            embedding: As for the constructor (``None``: the default EvoEmbedding model).
            **kwargs: As for :meth:`from_texts` (``ids``, ``stream_id`` and every constructor option).

        Returns:
            The new store.
        """
        documents = list(documents)
        if "ids" not in kwargs and any(d.id is not None for d in documents):
            kwargs["ids"] = [d.id for d in documents]
        texts = [d.page_content for d in documents]
        return cls.from_texts(texts, embedding, [d.metadata for d in documents], **kwargs)

    @classmethod
    async def afrom_texts(
        cls, texts: list[str], embedding: Any = None, metadatas: list[dict] | None = None, **kwargs: Any
    ) -> EvoVectorStore:
        """:meth:`from_texts` in a worker thread."""
        return await run_in_executor(None, cls.from_texts, texts, embedding, metadatas, **kwargs)

    @classmethod
    async def afrom_documents(cls, documents: list[Document], embedding: Any = None, **kwargs: Any) -> EvoVectorStore:
        """:meth:`from_documents` in a worker thread."""
        return await run_in_executor(None, cls.from_documents, documents, embedding, **kwargs)

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
            **options: As for :meth:`EvoStore.load` (``index``, ``query_memory``, ``hybrid``), and
                this class's ``stream_key`` and ``reread``.

        Returns:
            The loaded store.

        Raises:
            CorruptStoreError: The directory is not a valid saved store.
            ModelMismatchError: The store was written with another model or embedder.
        """
        own = {name: options.pop(name) for name in ("stream_key", "reread") if name in options}
        if isinstance(embeddings, Embeddings) and not isinstance(embeddings, EvoEmbeddings):
            loaded = EvoStore.load(folder_path, embeddings=embeddings, **options)
        else:
            model = embeddings.model if isinstance(embeddings, EvoEmbeddings) else embeddings
            loaded = EvoStore.load(folder_path, model, **options)
        vectorstore = cls(store=loaded, **own)
        vectorstore._embedding = embeddings if isinstance(embeddings, Embeddings) else None
        return vectorstore


def cosine_relevance(score: float) -> float:
    """The relevance of a vector hit: its cosine similarity clipped to [0, 1].

    Vectors are unit length, so this is LangChain's cosine relevance (``1 - cosine distance``) with
    negative similarities read as 0: a ``score_threshold`` is a minimum cosine similarity.
    """
    return min(1.0, max(0.0, float(score)))


def fused_relevance(score: float) -> float:
    """The relevance of a hybrid hit: its fused reciprocal-rank score over the best one possible.

    1 means the text is first in both the vector and the BM25 ranking; about 0.5, first in one of
    them and absent from the other; it falls as the text ranks lower in either.
    """
    return min(1.0, max(0.0, float(score) * (RRF_K + 1) / 2.0))


def _where(filter: Any, stream_id: Any) -> tuple[list[str] | None, Any]:
    """Split a top-level ``"stream_id"`` condition off a filter: ``(streams or None, rest of the filter)``.

    ``streams`` is ``[]`` when the condition and ``stream_id`` select no stream in common.
    """
    wanted = None if stream_id is None else ([stream_id] if isinstance(stream_id, str) else list(stream_id))
    if not isinstance(filter, Mapping) or "stream_id" not in filter:
        return wanted, filter
    condition = filter["stream_id"]
    if isinstance(condition, str):
        named = [condition]
    elif isinstance(condition, Mapping) and set(condition) == {"$eq"} and isinstance(condition["$eq"], str):
        named = [condition["$eq"]]
    elif isinstance(condition, Mapping) and set(condition) == {"$in"} and isinstance(condition["$in"], (list, tuple)):
        named = [s for s in condition["$in"] if isinstance(s, str)]
    else:
        return wanted, filter  # another operator: applied to metadata["stream_id"] as written
    rest = {k: v for k, v in filter.items() if k != "stream_id"} or None
    if wanted is not None:
        named = [s for s in named if s in wanted]
    return named, rest


def _check_entries(texts: list, streams: list, ids: list, metadatas: list) -> None:
    """Raise what :meth:`EvoStore.add` would raise for these entries, before anything changes."""
    validate_texts(texts)
    for n, (stream, id_, metadata) in enumerate(zip(streams, ids, metadatas)):
        validate_id(stream, f"stream_id[{n}]")
        validate_id(id_, f"ids[{n}]")
        if not isinstance(metadata, Mapping):
            raise TypeError(f"metadatas[{n}] must be a dict or None, got {type(metadata).__name__}")
        try:
            json.dumps(dict(metadata), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"metadatas[{n}] must be JSON-serialisable with finite numbers: {exc}") from None
    if len(set(ids)) != len(ids):
        raise ValueError("ids contain a duplicate")


def _reading_order(content: list[tuple[str, str, dict]]) -> list[tuple[str, str, dict]]:
    """Entries ``(id, text, metadata)`` in reading order: by ``start_index`` if all have a number there."""
    starts = [c[2].get("start_index") if isinstance(c[2], Mapping) else None for c in content]
    if content and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in starts):
        return [c for _, c in sorted(zip(starts, content), key=lambda pair: pair[0])]
    return content


def to_document(hit: Hit, **extra: Any) -> Document:
    """A store hit (or record) as a LangChain ``Document``; ``extra`` is added to its metadata."""
    return Document(id=hit.id, page_content=hit.text, metadata={**hit.metadata, **extra} if extra else hit.metadata)


def _scored(hits: list[Hit]) -> list[tuple[Document, float]]:
    return [(to_document(h), h.score) for h in hits]
