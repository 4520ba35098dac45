"""LightMem-style hooks on an EvoStore: :class:`EvoLightMemEmbedder` (``embed``) and :class:`EvoLightMemRetriever`.

>>> retriever = EvoLightMemRetriever()                                            # doctest: +SKIP
>>> embedder = EvoLightMemEmbedder(retriever)
>>> retriever.insert([embedder.embed(t) for t in texts], [{"memory": t} for t in texts])
>>> retriever.search(embedder.embed("Where does Ana live?"), limit=3, return_full=True)

The retriever mirrors LightMem's Qdrant retriever (``insert``, ``search``, ``exists``, ``get``,
``get_all``, ``update``, ``delete``, ``reset``). Entries are read in order by one stream
(``stream_id``); their vectors are computed by the store from ``payload[text_key]`` (the vectors
passed to ``insert`` / ``update`` are not used). ``embed(text)`` encodes ``text`` as a query against
that stream's current memory, so the vector LightMem then hands to ``search`` is context-aware;
``search`` also accepts the query text itself. Filters: ``{key: value}`` or ``{key: {"gte": a,
"lte": b}}`` as in LightMem (translated by :mod:`.filters`, like mem0's). ``update`` is
:meth:`EvoAgentMemory.update <evoembedding_integrations.memory.EvoAgentMemory.update>`. Scores are
cosines, higher is better.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import numpy as np

from ..memory import RESERVED_KEYS, EvoAgentMemory
from ..store import EvoStore
from . import resolve_store
from .filters import to_store_filter

__all__ = ["EvoLightMemEmbedder", "EvoLightMemRetriever"]


class EvoLightMemRetriever:
    """LightMem's embedding-retriever interface on one EvoStore stream."""

    def __init__(
        self, store: EvoStore | None = None, *, model=None, stream_id: str = "lightmem", text_key: str = "memory"
    ) -> None:
        self.store, self.stream_id, self.text_key = resolve_store(store, model), stream_id, text_key
        self.memory = EvoAgentMemory(store=self.store)

    def insert(self, vectors, payloads=None, ids=None) -> list[str]:
        """Store entries (text under ``payload[text_key]``) at the end of the stream; returns their ids."""
        if payloads is None:
            raise ValueError(f"EvoLightMemRetriever needs payloads with the entry text under {self.text_key!r}")
        for i, payload in enumerate(payloads):
            if not isinstance(payload, Mapping) or not isinstance(payload.get(self.text_key), str):
                raise ValueError(f"payloads[{i}] must be a dict with the entry text under {self.text_key!r}")
        ids = [str(i) for i in ids] if ids is not None else [str(uuid.uuid4()) for _ in payloads]
        texts = [p[self.text_key] for p in payloads]
        return self.store.add(texts, stream_id=self.stream_id, ids=ids, metadatas=[dict(p) for p in payloads])

    def search(
        self, query_vector, limit: int = 5, filters: dict | None = None, return_full: bool = False
    ) -> list[dict]:
        """Best ``limit`` entries for a query vector (from :class:`EvoLightMemEmbedder`) or query text."""
        options = dict(k=limit, stream_ids=self.stream_id, filter=to_store_filter(filters))
        if isinstance(query_vector, str):
            hits = self.store.search(query_vector, **options)
        else:
            hits = self.store.search_by_vector(np.asarray(query_vector, dtype=np.float32), **options)
        return [{"id": h.id, "score": h.score, **({"payload": self._payload(h)} if return_full else {})} for h in hits]

    def exists(self, vector_id) -> bool:
        """Whether an entry has this id."""
        return str(vector_id) in self.store

    def get(self, vector_id) -> dict | None:
        """One entry as ``{"id", "payload"}``, or ``None``."""
        records = self.store.get([str(vector_id)])
        return {"id": records[0].id, "payload": self._payload(records[0])} if records else None

    def get_all(self, with_vectors: bool = True, with_payload: bool = True) -> list[dict]:
        """Every entry of the stream, oldest first: ``{"id", "vector", "payload"}``."""
        ids = self.store.ids(self.stream_id)
        records = self.store.get(ids)
        vectors = self.store.vectors([r.id for r in records]) if with_vectors else None
        return [
            {
                "id": r.id,
                "vector": vectors[n].tolist() if with_vectors else None,
                "payload": self._payload(r) if with_payload else None,
            }
            for n, r in enumerate(records)
        ]

    def update(self, vector_id, vector=None, payload: dict | None = None) -> None:
        """Replace an entry's payload with :meth:`EvoAgentMemory.update`; ``vector`` is not used.

        The text (``payload[text_key]``, else the current one) is re-read at the end of the stream;
        the payload replaces the entry's metadata (reserved fields such as ``created_at`` are kept).
        Payloads read back always carry the entry's text under ``text_key``.

        Raises:
            KeyError: No entry has this id.
        """
        if payload is None:
            return
        if not isinstance(payload, Mapping):
            raise TypeError(f"payload must be a dict, got {type(payload).__name__}")
        metadata = {k: v for k, v in payload.items() if k not in RESERVED_KEYS}
        self.memory.update(str(vector_id), payload.get(self.text_key), metadata=metadata)

    def _payload(self, record) -> dict:
        return {**record.metadata, self.text_key: record.text}

    def delete(self, vector_id) -> None:
        """Remove an entry (a missing id is ignored)."""
        self.store.delete([str(vector_id)])

    def reset(self) -> None:
        """Remove this retriever's stream (entries and memory)."""
        self.store.delete_stream(self.stream_id)


class EvoLightMemEmbedder:
    """LightMem's text-embedder hook: ``embed(text)`` is ``text`` as a query against the retriever's stream memory."""

    def __init__(self, retriever: EvoLightMemRetriever) -> None:
        if not isinstance(retriever, EvoLightMemRetriever):
            raise TypeError(f"retriever must be an EvoLightMemRetriever, got {type(retriever).__name__}")
        self.retriever = retriever

    def embed(self, text: str) -> list[float]:
        """``text`` as a query against the retriever's stream memory."""
        return self.retriever.store.encode_query(text, self.retriever.stream_id).tolist()
