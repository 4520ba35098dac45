"""A distributed vector database behind an :class:`~.EvoStore`: Qdrant holds vectors, texts and stream states.

Why Qdrant (``qdrant-client``, ``pip install "evoembedding[qdrant]"``): a widely run vector
database whose client talks to a server or cluster by URL, and whose *local mode* runs the same
API in-process (``":memory:"`` or a folder), so the same code is tested here and deployed there.

What the database holds, so that any worker on any machine can continue any stream:

* ``<collection>``: one point per entry, its unit vector (dot product: the vectors are stored
  unchanged) and payload ``id``, ``stream_id``, ``position``, ``text``, ``metadata`` (the JSON
  object, for the database's own filters) and ``metadata_json`` (the exact text read back). The
  point id is derived from the stream and position, so a write that is retried lands on the same
  point.
* ``<collection>__streams``: one point (no vector) per stream: its creation rank, its length and,
  in EvoEmbedding mode, its memory latents (float32, base64) with their shapes and counters; plus
  one header point (mode, encoder identity, dimension, index options).

Search does not run in the database: each process builds the store's in-memory index (FAISS,
BM25, per-stream memories) from the database when it opens the store, so filters, hybrid search,
delete and per-stream isolation behave exactly as in the embedded store. The database is the
durable, shared copy; a process sees what others wrote when it opens the store again.

Writes (:meth:`QdrantBackend.apply`, one per ``add`` / ``delete`` / ``delete_stream`` /
``clear``): Qdrant has no multi-point transactions, so a change is written in an order that makes
the stream point the commit point of an add: entries first, then the streams' lengths and memories.
:meth:`QdrantBackend.open` ignores entries at or past their stream's stored length (a change cut
short), and the next write at those positions overwrites them. Before writing, ``apply`` checks
that every stream it extends still has the length this process read (else
:class:`StaleStreamError`, nothing written): a second writer's out-of-date continuation is
refused. The check and the write are two requests, so two writers racing on one stream within
milliseconds are not excluded by the database: keep one writer per stream (the Ray ingest does).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from . import format as fmt
from .backend import Change
from .format import StreamSnapshot
from .records import CorruptStoreError, ModelMismatchError

STREAMS_SUFFIX = "__streams"
WRITE_BATCH = 256
"""Points per upsert request."""
SCROLL_PAGE = 1024
_NAMESPACE = uuid.UUID("6f1d3c1e-8a3b-4f0e-9d53-2b1c5e7a9f10")
_HEADER_ID = str(uuid.uuid5(_NAMESPACE, "header"))


class StaleStreamError(RuntimeError):
    """Another writer extended a stream since this process read it; nothing was written."""


def _point_id(kind: str, *parts) -> str:
    return str(uuid.uuid5(_NAMESPACE, "\x00".join([kind, *map(str, parts)])))


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode("ascii")


def _unb64(text, shape, what: str) -> np.ndarray:
    try:
        raw = base64.b64decode(text, validate=True)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)
    except (TypeError, ValueError) as exc:
        raise CorruptStoreError(f"Qdrant: a stream's {what} is not {shape} float32 values ({exc})") from None


class QdrantBackend:
    """An EvoStore's durable layer in a Qdrant collection (see the module docstring).

    Args:
        client: A ``qdrant_client.QdrantClient`` (``location=":memory:"``, ``path=``, or ``url=``).
        collection: The entries' collection name (the streams live in ``<collection>__streams``).
        memory_state: Turns a stream memory into ``{"memory", "chunk_memory", "meta"}`` arrays.
    """

    def __init__(self, client, collection: str, memory_state: Callable[[Any], dict | None]) -> None:
        from qdrant_client import models

        if not isinstance(collection, str) or not collection:
            raise ValueError(f"collection must be a non-empty string, got {collection!r}")
        self.client, self.collection, self.memory_state, self.models = client, collection, memory_state, models
        self.streams = collection + STREAMS_SUFFIX
        self._header: dict | None = None
        self._lengths: dict[str, int] = {}  # each stream's length as this process last read or wrote it
        self._order: dict[str, int] = {}
        if not client.collection_exists(self.streams):
            client.create_collection(self.streams, vectors_config={})

    # ------------------------------------------------------------------ header
    def header(self) -> dict | None:
        """The stored header, or ``None`` (a new collection)."""
        points = self.client.retrieve(self.streams, [_HEADER_ID], with_payload=True)
        if not points:
            return None
        header = fmt.parse_json(str(points[0].payload.get("header", "")).encode(), "Qdrant header")
        if not isinstance(header, dict) or header.get("mode") not in fmt.MODES:
            raise CorruptStoreError(f"Qdrant collection {self.collection!r} has no store header")
        fmt.manifest_dim(header)
        self._header = header
        return header

    def create(self, header: dict) -> None:
        """Write the header of a new store (its dimension may still be ``None``)."""
        self._write_header(header)

    def _write_header(self, header: dict) -> None:
        payload = {"kind": "header", "header": json.dumps(header, allow_nan=False)}
        self.client.upsert(self.streams, [self.models.PointStruct(id=_HEADER_ID, vector={}, payload=payload)])
        if header.get("dim") is not None and not self.client.collection_exists(self.collection):
            params = self.models.VectorParams(size=int(header["dim"]), distance=self.models.Distance.DOT)
            self.client.create_collection(self.collection, vectors_config=params)
        self._header = header

    def close(self) -> None:
        """Close the client (a local-mode folder can then be opened by another client)."""
        self.client.close()

    # ------------------------------------------------------------------ reading
    def _scroll(self, collection: str, *, vectors: bool, filter=None):
        offset = None
        while True:
            points, offset = self.client.scroll(
                collection, scroll_filter=filter, limit=SCROLL_PAGE, offset=offset, with_vectors=vectors
            )
            yield from points
            if offset is None:
                return

    def open(self) -> list[StreamSnapshot]:
        """Every stream with its committed entries and memory, verified, in creation order."""
        header = self._header or self.header()
        if header is None:
            return []
        dim, with_memory = fmt.manifest_dim(header), header["mode"] == "evo"
        kind = self.models.Filter(
            must=[self.models.FieldCondition(key="kind", match=self.models.MatchValue(value="stream"))]
        )
        streams = sorted((p.payload for p in self._scroll(self.streams, vectors=False, filter=kind)), key=_rank)
        by_stream: dict[str, list] = {s.get("stream_id"): [] for s in streams}
        lengths = {s.get("stream_id"): s.get("length") for s in streams}
        if dim is not None and self.client.collection_exists(self.collection):
            for point in self._scroll(self.collection, vectors=True):
                p = point.payload
                sid, position = p.get("stream_id"), p.get("position")
                if sid in by_stream and isinstance(position, int) and isinstance(lengths[sid], int):
                    if position < lengths[sid]:  # else written by a change that never committed
                        by_stream[sid].append((position, p, point.vector))
        docs, arrays = [], {}
        for n, s in enumerate(streams):
            sid, items = s.get("stream_id"), sorted(by_stream[s.get("stream_id")], key=lambda item: item[0])
            records = [
                {"id": p.get("id"), "position": pos, "text": p.get("text"), "metadata": _metadata(p)}
                for pos, p, _ in items
            ]
            docs.append({"id": sid, "length": s.get("length"), "records": records})
            vectors = [v for _, _, v in items]
            arrays[f"{n}/vectors"] = (
                np.asarray(vectors, dtype=np.float32).reshape(len(vectors), dim or 0)
                if vectors
                else np.zeros((0, dim or 0), np.float32)
            )
            if with_memory:
                state = _memory(s)
                arrays[f"{n}/memory"], arrays[f"{n}/chunk_memory"] = state["memory"], state["chunk_memory"]
                docs[-1]["memory"] = state["meta"]
        total = sum(len(d["records"]) for d in docs)
        snapshots = fmt.decode_streams({"entries": total}, {"streams": docs}, arrays, dim=dim, with_memory=with_memory)
        self._lengths = {s.id: s.length for s in snapshots}
        self._order = {s.get("stream_id"): _rank(s) for s in streams}
        return snapshots

    # ------------------------------------------------------------------ writing
    def apply(self, change: Change) -> None:
        """Write one change (see the module docstring for the order and the stale-length check).

        Raises:
            StaleStreamError: A stream this change extends was extended by another writer.
        """
        m = self.models
        if change.added and (self._header or {}).get("dim") is None:
            header = dict(self._header or self.header() or {})
            if not header:
                raise CorruptStoreError(f"Qdrant collection {self.collection!r} has no store header")
            self._write_header({**header, "dim": len(change.added[0].vector)})
        self._check_lengths(change)
        if change.cleared:
            self._delete_all()
            self._lengths.clear()
            self._order.clear()
            return
        readded = {e.id for e in change.added}
        gone = [i for i in change.removed if i not in readded]
        moved = [i for i in change.removed if i in readded]
        if gone or moved:
            self._delete_entries(m.FieldCondition(key="id", match=m.MatchAny(any=list(gone) + moved)))
        for sid in change.dropped_streams:
            self._delete_entries(m.FieldCondition(key="stream_id", match=m.MatchValue(value=sid)))
            self.client.delete(self.streams, m.PointIdsList(points=[_point_id("stream", sid)]))
            self._lengths.pop(sid, None)
            self._order.pop(sid, None)
        points = [
            m.PointStruct(
                id=_point_id("entry", e.stream_id, e.position),
                vector=np.asarray(e.vector, dtype=np.float32).tolist(),
                payload={
                    "id": e.id,
                    "stream_id": e.stream_id,
                    "position": e.position,
                    "text": e.text,
                    "metadata": e.metadata,
                    "metadata_json": json.dumps(e.metadata, ensure_ascii=True, allow_nan=False),
                },
            )
            for e in change.added
        ]
        for start in range(0, len(points), WRITE_BATCH):
            self.client.upsert(self.collection, points[start : start + WRITE_BATCH])
        streams = [self._stream_point(sid, length, change.memories.get(sid)) for sid, length in change.lengths.items()]
        if streams:  # the commit point of an add
            self.client.upsert(self.streams, streams)
        self._lengths.update(change.lengths)

    def _check_lengths(self, change: Change) -> None:
        first: dict[str, int] = {}
        for e in change.added:
            first[e.stream_id] = min(first.get(e.stream_id, e.position), e.position)
        if not first:
            return
        ids = [_point_id("stream", sid) for sid in first]
        stored = {p.payload.get("stream_id"): p.payload.get("length") for p in self.client.retrieve(self.streams, ids)}
        for sid, position in first.items():
            if stored.get(sid, 0) != position:
                raise StaleStreamError(
                    f"stream {sid!r} holds {stored.get(sid, 0)} texts in the database, this store read {position}: "
                    "another writer extended it (one writer per stream; reopen the store to continue it)"
                )

    def _stream_point(self, sid: str, length: int, memory):
        if sid not in self._order:
            self._order[sid] = time.time_ns()
        payload = {"kind": "stream", "stream_id": sid, "rank": self._order[sid], "length": length}
        state = None if memory is None else self.memory_state(memory)
        if state is not None:
            shapes = {name: list(state[name].shape) for name in ("memory", "chunk_memory")}
            payload["state"] = json.dumps({"meta": state["meta"], "shapes": shapes}, allow_nan=False)
            payload.update({name: _b64(state[name]) for name in ("memory", "chunk_memory")})
        return self.models.PointStruct(id=_point_id("stream", sid), vector={}, payload=payload)

    def _delete_entries(self, condition) -> None:
        if self.client.collection_exists(self.collection):
            selector = self.models.FilterSelector(filter=self.models.Filter(must=[condition]))
            self.client.delete(self.collection, selector)

    def _delete_all(self) -> None:
        m = self.models
        if self.client.collection_exists(self.collection):
            self.client.delete(self.collection, m.FilterSelector(filter=m.Filter()))
        kind = m.FieldCondition(key="kind", match=m.MatchValue(value="stream"))
        self.client.delete(self.streams, m.FilterSelector(filter=m.Filter(must=[kind])))


def _rank(payload: Mapping) -> tuple:
    rank = payload.get("rank")
    return (rank if isinstance(rank, int) else 0, str(payload.get("stream_id")))


def _metadata(payload: Mapping) -> dict:
    text = payload.get("metadata_json")
    value = fmt.parse_json(text.encode() if isinstance(text, str) else b"", "Qdrant metadata")
    if not isinstance(value, dict):
        raise CorruptStoreError("Qdrant: a record's metadata is not a JSON object")
    return value


def _memory(payload: Mapping) -> dict:
    doc = fmt.parse_json(str(payload.get("state", "")).encode(), "Qdrant stream state")
    if not isinstance(doc, dict) or not isinstance(doc.get("shapes"), dict) or not isinstance(doc.get("meta"), dict):
        raise CorruptStoreError(f"Qdrant: stream {payload.get('stream_id')!r} has no memory state")
    out = {"meta": doc["meta"]}
    for name in ("memory", "chunk_memory"):
        shape = doc["shapes"].get(name)
        if not isinstance(shape, list) or len(shape) != 2 or not all(isinstance(s, int) and s >= 0 for s in shape):
            raise CorruptStoreError(f"Qdrant: a stream's {name} shape {shape!r} is invalid")
        out[name] = _unb64(payload.get(name), shape, name)
    return out


# ---------------------------------------------------------------------------------------------- factory
def qdrant_client_for(where):
    """A ``QdrantClient`` for ``where``: a client as is, ``":memory:"``, an ``http(s)://`` URL, or a folder."""
    from qdrant_client import QdrantClient

    if isinstance(where, QdrantClient):
        return where
    where = str(where)
    if where == ":memory:":
        return QdrantClient(location=":memory:")
    if where.startswith(("http://", "https://")):
        return QdrantClient(url=where)
    return QdrantClient(path=where)


def open_qdrant_store(where, collection: str = "evostore", *, check_embedder: bool = True, **store_options):
    """An :class:`~.EvoStore` whose every change is written to a Qdrant collection, loaded from it.

    Args:
        where: A ``QdrantClient``, ``":memory:"``, a server / cluster URL (``"http://host:6333"``)
            or a local folder (Qdrant's local mode; one client per folder at a time).
        collection: The collection name (streams in ``<collection>__streams``).
        check_embedder: Check that a plain store's embedder is the one that wrote the collection.
        **store_options: ``EvoStore`` arguments (``model``, ``embeddings``, ``index``, ``hybrid``,
            ``query_memory``, ``hnsw_threshold``); not ``path``.

    Returns:
        The store (its ``backend`` is ``store._backend``; close it with ``store._backend.close()``).

    Raises:
        ModelMismatchError: The collection was written by another model, embedder or mode.
        CorruptStoreError: The collection's content is not a valid store.
    """
    from .encoders import check_mode
    from .evo_store import EvoStore

    if "path" in store_options:
        raise TypeError("open_qdrant_store takes no path: the collection is the store's durable copy")
    store = EvoStore(**store_options)
    backend = QdrantBackend(qdrant_client_for(where), collection, store._encoder.memory_state)
    # The steps EvoStore._attach takes for its SQLite database, with this backend:
    with store._lock:
        header = backend.header()
        if header is None:
            backend.create(store._db_header())
        else:
            check_mode(header, store.embeddings)
            store._encoder.check_identity(header, strict=check_embedder)
            dim = fmt.manifest_dim(header)
            if store._encoder.dim is not None and dim not in (None, store._encoder.dim):
                raise ModelMismatchError(f"the collection holds {dim}-d vectors, the model makes {store.dim}-d ones")
            store.dim = dim if dim is not None else store._encoder.dim
            for n, snapshot in enumerate(backend.open()):
                store._install(n, snapshot)
        store._backend = backend
    return store
