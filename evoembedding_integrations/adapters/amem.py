"""A-MEM adapter: :class:`EvoAMemRetriever` replaces ``agentic_memory``'s ``ChromaRetriever``.

>>> from agentic_memory.memory_system import AgenticMemorySystem                 # doctest: +SKIP
>>> system = agentic_memory_system(llm_backend="openai", api_key=...)           # doctest: +SKIP
>>> system.retriever                      # an EvoAMemRetriever; no Chroma, no downloaded embedder

or, on a system you already built: ``system.retriever = EvoAMemRetriever(store)``.

All notes go to one stream (``stream_id="amem"``), read in the order they are added. As with
Chroma, the embedded text is the note enriched with its context, keywords and tags, and results come
as Chroma-style nested lists; ``distances`` are cosine distances (``1 - cosine``, lower is better).
Metadata is kept as JSON (lists stay lists), so nothing has to be re-parsed.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from ..memory import EvoAgentMemory
from ..store import EvoStore, compile_filter
from . import resolve_store

__all__ = ["EvoAMemRetriever", "agentic_memory_system", "enhanced_text"]

_CONSTRUCTION_LOCK = threading.Lock()


def enhanced_text(document: str, metadata: Mapping) -> str:
    """The note as A-MEM's Chroma retriever embeds it: content + context + keywords + tags."""
    text = document
    if metadata.get("context") and metadata["context"] != "General":
        text += f" context: {metadata['context']}"
    for key in ("keywords", "tags"):
        values = metadata.get(key)
        if values and isinstance(values, (list, tuple)):
            text += f" {key}: {', '.join(map(str, values))}"
    return text


class EvoAMemRetriever:
    """A-MEM's retriever interface (``add_document``, ``search``, ``get_by_id``, ...) on an EvoStore."""

    def __init__(self, store: EvoStore | None = None, *, model=None, stream_id: str = "amem") -> None:
        self.store, self.stream_id = resolve_store(store, model), stream_id
        self.memory = EvoAgentMemory(store=self.store)

    def add_document(self, document: str, metadata: dict, doc_id: str) -> None:
        """Store a note (re-adding an id replaces it) at the end of the stream."""
        if not isinstance(metadata, Mapping):
            raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
        text = enhanced_text(document, metadata) if isinstance(document, str) else document
        self.store.add(
            [text], stream_id=self.stream_id, ids=[doc_id], metadatas=[{**metadata, "enhanced_content": text}]
        )

    def delete_document(self, doc_id: str) -> None:
        """Forget a note (a missing id is ignored)."""
        self.store.delete([doc_id])

    def update_document(self, doc_id: str, metadata: dict, content: str | None = None) -> None:
        """Replace a note's metadata and content (default: its current content) with
        :meth:`EvoAgentMemory.update`; the note is re-read at the end of the stream. Unknown ids are ignored."""
        if not isinstance(metadata, Mapping):
            raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
        records = self.store.get([doc_id])
        if not records:
            return
        if content is None:
            content = records[0].metadata.get("content", records[0].text)
        text = enhanced_text(content, metadata) if isinstance(content, str) else content
        try:
            self.memory.update(doc_id, text, metadata={**metadata, "enhanced_content": text})
        except KeyError:  # deleted meanwhile
            return

    def search(self, query: str, k: int = 5) -> dict:
        """The ``k`` notes closest to ``query`` (against the stream's memory), Chroma-style."""
        return self._results(self.store.search(query, k=k, stream_ids=self.stream_id))

    def search_with_filter(self, query: str | None = None, where: dict | None = None, k: int = 10) -> dict:
        """Semantic search with a Chroma ``where`` filter, or (no query) the first ``k`` matching notes."""
        if query:
            return self._results(self.store.search(query, k=k, stream_ids=self.stream_id, filter=where))
        predicate = compile_filter(where)
        records = [
            r for r in self.store.get(self.store.ids(self.stream_id)) if predicate is None or predicate(r.metadata)
        ]
        results = self._results(records[:k])
        results["distances"] = [[]]
        return results

    @staticmethod
    def _results(records) -> dict:
        return {
            "ids": [[r.id for r in records]],
            "documents": [[r.text for r in records]],
            "metadatas": [[r.metadata for r in records]],
            "distances": [[1.0 - getattr(r, "score", 1.0) for r in records]],
        }

    def get_by_id(self, doc_id: str) -> dict | None:
        """A note's metadata, or ``None``."""
        records = self.store.get([doc_id])
        return records[0].metadata if records else None

    def get_by_ids(self, doc_ids: list[str]) -> dict[str, dict]:
        """The metadata of the notes with these ids (missing ids are skipped), by id."""
        return {r.id: r.metadata for r in self.store.get(list(doc_ids))}

    def count(self) -> int:
        """How many notes the stream holds."""
        return len(self.store.ids(self.stream_id))

    def get_all_ids(self, limit: int | None = None, offset: int = 0) -> list[str]:
        """The note ids, oldest first, from ``offset``, at most ``limit`` of them."""
        ids = self.store.ids(self.stream_id)[offset:]
        return ids if limit is None else ids[:limit]


def agentic_memory_system(retriever: EvoAMemRetriever | None = None, **kwargs):
    """Build an ``agentic_memory.AgenticMemorySystem`` whose retriever is ``retriever`` (default: a new one).

    Chroma and its sentence-transformers embedder are never constructed (nothing is downloaded).
    Other keyword arguments go to ``AgenticMemorySystem`` (LLM backend, model, api_key, ...).
    """
    from unittest import mock

    from agentic_memory import memory_system

    retriever = retriever if retriever is not None else EvoAMemRetriever()
    with _CONSTRUCTION_LOCK, mock.patch.object(memory_system, "ChromaRetriever", lambda *a, **k: retriever):
        return memory_system.AgenticMemorySystem(**kwargs)
