"""mem0 adapter: an ``EmbeddingBase`` and a ``VectorStoreBase`` for a mem0 ``Memory``, served by an EvoStore.

>>> from mem0 import Memory                                                       # doctest: +SKIP
>>> memory = use_evoembedding(Memory.from_config(config))                          # doctest: +SKIP
>>> memory.add([{"role": "user", "content": "I moved to Oslo."}], user_id="ana", infer=False)
>>> memory.search("Where does Ana live?", filters={"user_id": "ana"})             # doctest: +SKIP

One stream per user (the payload's ``user_id``, else ``agent_id``, else ``run_id``, else
``"default"``), as in :class:`~evoembedding_integrations.memory.EvoAgentMemory`. ``search`` encodes
the query *text* mem0 passes along against the memory of the user named in ``filters`` (every
stream when none is named) and ignores the memory-less vector mem0 computed; scores are cosines,
higher is better. Filters: ``{key: value}``, operator dicts (``eq ne gt gte lt lte in nin contains
icontains``), ``"*"`` (key present) and ``AND`` / ``OR`` / ``NOT`` lists, translated by
:mod:`.filters` into the store's filter language. ``update`` is
:meth:`EvoAgentMemory.update <evoembedding_integrations.memory.EvoAgentMemory.update>`. ``reset``
clears the whole store (share a store with other adapters only if that is what you want).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from mem0.embeddings.base import EmbeddingBase
from mem0.vector_stores.base import VectorStoreBase

from evoembedding_core import EvoStream

from ..memory import RESERVED_KEYS, EvoAgentMemory
from ..store import DEFAULT_STREAM, EvoStore
from . import resolve_store
from .filters import compile_mem0_filters, to_store_filter

__all__ = [
    "TEXT_KEY",
    "EvoMem0Embedder",
    "EvoMem0VectorStore",
    "Mem0Result",
    "compile_mem0_filters",
    "stream_of",
    "use_evoembedding",
]

TEXT_KEY = "data"


@dataclass
class Mem0Result:
    """What mem0 reads from a vector store: ``id``, ``score`` (higher is better) and ``payload``."""

    id: str
    score: float | None
    payload: dict = field(default_factory=dict)


def _record_to_result(record) -> Mem0Result:
    return Mem0Result(record.id, getattr(record, "score", None), {**record.metadata, TEXT_KEY: record.text})


def stream_of(payload: Mapping) -> str:
    """The stream a mem0 payload belongs to: its user, else agent, else run, else ``"default"``."""
    for key in ("user_id", "agent_id", "run_id"):
        if isinstance(payload.get(key), str) and payload[key].strip():
            return payload[key]
    return DEFAULT_STREAM


# ---------------------------------------------------------------------------------------- classes
class EvoMem0Embedder(EmbeddingBase):
    """mem0 embedder: memory-less EvoEmbedding vectors (queries in query form). The vector store re-embeds in context."""

    def __init__(self, store: EvoStore | None = None, *, model=None, config=None) -> None:
        super().__init__(config)
        self.store = resolve_store(store, model)
        if self.store.model is None:
            raise TypeError("EvoMem0Embedder needs an EvoEmbedding store (not a plain one)")

    def embed(self, text, memory_action=None) -> list[float]:
        """A memory-less vector: ``text`` in query form for ``memory_action="search"``, else as a document."""
        model = self.store.model
        with model.lock:
            reader = EvoStream(model)
            vector = reader.encode_query(text) if memory_action == "search" else reader.add([text])[0]
        return vector.tolist()


class EvoMem0VectorStore(VectorStoreBase):
    """mem0 vector store on an EvoStore: one stream per user, context-aware search (see the module docstring)."""

    def __init__(self, store: EvoStore | None = None, *, model=None, collection_name: str = "mem0") -> None:
        self.store, self.collection_name = resolve_store(store, model), collection_name
        self.memory = EvoAgentMemory(store=self.store)

    def insert(self, vectors, payloads=None, ids=None) -> list[str]:
        """Store ``payloads[i]["data"]`` texts in their users' streams (the given vectors are not used)."""
        if payloads is None:
            raise ValueError("EvoMem0VectorStore needs payloads with the memory text under 'data'")
        ids = list(ids) if ids is not None else [str(uuid.uuid4()) for _ in payloads]
        for i, payload in enumerate(payloads):
            if not isinstance(payload, Mapping) or not isinstance(payload.get(TEXT_KEY), str):
                raise ValueError(f"payloads[{i}] must be a dict with the memory text under {TEXT_KEY!r}")
        return self.store.add(
            [p[TEXT_KEY] for p in payloads],
            stream_id=[stream_of(p) for p in payloads],
            ids=[str(i) for i in ids],
            metadatas=[{k: v for k, v in p.items() if k != TEXT_KEY} for p in payloads],
        )

    def search(self, query, vectors, top_k=5, filters=None) -> list[Mem0Result]:
        """Best ``top_k`` memories: ``query`` encoded against the filtered user's stream (all streams if none)."""
        user = (filters or {}).get("user_id")
        streams = user if isinstance(user, str) else None
        filter_ = to_store_filter(filters)
        if isinstance(query, str) and query.strip():
            hits = self.store.search(query, k=top_k, stream_ids=streams, filter=filter_)
        else:
            vector = np.asarray(vectors[0] if np.ndim(vectors) == 2 else vectors, dtype=np.float32)
            hits = self.store.search_by_vector(vector, k=top_k, stream_ids=streams, filter=filter_)
        return [_record_to_result(h) for h in hits]

    def delete(self, vector_id) -> None:
        """Forget one memory (a missing id is ignored)."""
        self.store.delete([str(vector_id)])

    def update(self, vector_id, vector=None, payload=None) -> None:
        """Replace a memory's payload with :meth:`EvoAgentMemory.update`; ``vector`` is not used.

        The text (``payload["data"]``, else the current one) is re-read at the end of the memory's
        stream; the other keys replace its metadata, except the reserved fields (``user_id``,
        ``created_at``, ...), which are kept (``updated_at`` becomes now).

        Raises:
            KeyError: No memory has this id.
        """
        if payload is None:
            return
        if not isinstance(payload, Mapping):
            raise TypeError(f"payload must be a dict, got {type(payload).__name__}")
        metadata = {k: v for k, v in payload.items() if k != TEXT_KEY and k not in RESERVED_KEYS}
        self.memory.update(str(vector_id), payload.get(TEXT_KEY), metadata=metadata)

    def get(self, vector_id) -> Mem0Result | None:
        """One memory by id, or ``None``."""
        records = self.store.get([str(vector_id)])
        return _record_to_result(records[0]) if records else None

    def list(self, filters=None, top_k=None) -> list[list[Mem0Result]]:
        """Memories matching ``filters``, oldest first per stream, as ``[[results]]`` (mem0's convention)."""
        predicate = compile_mem0_filters(filters)
        user = (filters or {}).get("user_id")
        records = self.store.get(self.store.ids(user if isinstance(user, str) else None))
        results = [_record_to_result(r) for r in records if predicate is None or predicate(r.metadata)]
        return [results[:top_k] if top_k else results]

    def create_col(self, name=None, vector_size=None, distance=None) -> None:
        """Collections are implicit (one store)."""

    def list_cols(self) -> list[str]:
        """The one collection name."""
        return [self.collection_name]

    def delete_col(self) -> None:
        """Remove every memory of the store."""
        self.store.clear()

    def col_info(self) -> dict:
        """The collection name, the number of memories, the streams and the vector dimension."""
        return {
            "name": self.collection_name,
            "count": len(self.store),
            "streams": self.store.streams(),
            "dim": self.store.dim,
        }

    def reset(self) -> None:
        """Remove every memory of the store (all users)."""
        self.store.clear()


def use_evoembedding(memory, store: EvoStore | None = None, *, model=None):
    """Point a mem0 ``Memory``'s ``embedding_model`` and ``vector_store`` at one EvoStore; returns the memory."""
    store = resolve_store(store, model)
    memory.embedding_model = EvoMem0Embedder(store)
    memory.vector_store = EvoMem0VectorStore(store, collection_name=getattr(memory, "collection_name", None) or "mem0")
    return memory
