"""A distributed vector database behind an :class:`~.EvoStore`: Qdrant holds vectors, texts and stream states.

Why Qdrant (``qdrant-client``, ``pip install "evoembedding[qdrant]"``): a widely run vector
database whose client talks to a server or cluster by URL, and whose *local mode* runs the same
API in-process (``":memory:"`` or a folder), so the same code is tested here and deployed there.

What the database holds, so that any worker on any machine can continue any stream:

* ``<collection>``: one point per entry, its unit vector (dot product: the vectors are stored
  unchanged), its BM25 terms as the sparse vector ``"bm25"`` (:func:`.hybrid.document_terms`;
  the collection is created with Qdrant's IDF modifier on it) and payload ``id``, ``stream_id``,
  ``position``, ``text``, ``metadata`` (the JSON object, for the database's own filters) and
  ``metadata_json`` (the exact text read back). The point id is derived from the stream and
  position, so a write that is retried lands on the same point. ``stream_id`` and ``id`` have
  keyword payload indexes (on a server; local mode has none).
* ``<collection>__streams``: one point (no vector) per stream: its creation rank, its length and,
  in EvoEmbedding mode, its memory latents (float32, base64) with their shapes and counters; plus
  one header point (mode, encoder identity, dimension, index options).

Where search runs is chosen when the store is opened (:func:`open_qdrant_store`, ``search=``; the
collection is the same either way):

* ``"memory"`` (the default): each process builds the store's in-memory index (FAISS, BM25,
  per-stream memories) from the database when it opens the store, so search is the embedded
  store's; a process sees what others wrote when it opens the store again.
* ``"database"``: only the stream table (ids, lengths, memories) is read at open; entries stay in
  Qdrant, which every read and search asks (:mod:`.qdrant_search`).

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
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from evoembedding_core.validation import check_choice

from . import format as fmt
from .backend import Change
from .format import StreamSnapshot
from .hybrid import document_terms
from .qdrant_search import DatabaseState
from .records import CorruptStoreError, ModelMismatchError
from .state import Stream

STREAMS_SUFFIX = "__streams"
SPARSE = "bm25"
"""The entries' sparse vector: BM25 term weights (:func:`.hybrid.document_terms`), IDF by Qdrant."""
SEARCH_MODES = ("memory", "database")
"""Where an opened store searches (:func:`open_qdrant_store`)."""
INDEXED_FIELDS = ("stream_id", "id")
"""Entry payload fields with a keyword index (server mode)."""
WRITE_BATCH = 256
"""Points per upsert request."""
SCROLL_PAGE = 1024
_LIGHT_STREAM_FIELDS = ["stream_id", "rank", "length"]
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

    Attributes:
        local: Whether the client runs Qdrant's local mode (in-process: exact search, no payload indexes).
        sparse: The name of the entries' sparse BM25 vector (:data:`SPARSE`), or ``None`` for a
            collection created before entries carried one.
    """

    def __init__(self, client, collection: str, memory_state: Callable[[Any], dict | None]) -> None:
        from qdrant_client import models

        if not isinstance(collection, str) or not collection:
            raise ValueError(f"collection must be a non-empty string, got {collection!r}")
        self.client, self.collection, self.memory_state, self.models = client, collection, memory_state, models
        self.streams = collection + STREAMS_SUFFIX
        options = getattr(client, "init_options", None) or {}
        self.local = options.get("location") == ":memory:" or options.get("path") is not None
        self._header: dict | None = None
        self._order: dict[str, int] = {}  # each stream's creation rank, kept when it is written again
        if not client.collection_exists(self.streams):
            client.create_collection(self.streams, vectors_config={})
        self._has_entries = client.collection_exists(collection)
        self.sparse: str | None = SPARSE  # the entries collection is created with it
        if self._has_entries:
            info = client.get_collection(collection)
            self.sparse = SPARSE if SPARSE in (info.config.params.sparse_vectors or {}) else None
            self._index_payload(info.payload_schema or {})

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
            m = self.models
            self.client.create_collection(
                self.collection,
                vectors_config=m.VectorParams(size=int(header["dim"]), distance=m.Distance.DOT),
                sparse_vectors_config={SPARSE: m.SparseVectorParams(modifier=m.Modifier.IDF)},
            )
            self.sparse = SPARSE
            self._index_payload({})
        self._header = header

    def _entries_exist(self) -> bool:
        """Whether the entries collection exists (it is created with the first vector)."""
        if not self._has_entries:
            self._has_entries = self.client.collection_exists(self.collection)
        return self._has_entries

    def _index_payload(self, schema: Mapping) -> None:
        """Create the keyword indexes of :data:`INDEXED_FIELDS` that ``schema`` lacks (not in local mode)."""
        if self.local:
            return
        for name in INDEXED_FIELDS:
            if name not in schema:
                self.client.create_payload_index(self.collection, name, self.models.PayloadSchemaType.KEYWORD)

    def close(self) -> None:
        """Close the client (a local-mode folder can then be opened by another client)."""
        self.client.close()

    # ------------------------------------------------------------------ reading
    def _scroll(self, collection: str, *, vectors: bool, filter=None, payload=True):
        offset = None
        while True:
            points, offset = self.client.scroll(
                collection,
                scroll_filter=filter,
                limit=SCROLL_PAGE,
                offset=offset,
                with_payload=payload,
                with_vectors=vectors,
            )
            yield from points
            if offset is None:
                return

    def open(self, entries: bool = True) -> list[StreamSnapshot]:
        """Every stream with its memory, verified, in creation order.

        Args:
            entries: Read each stream's committed entries too (``False``: the stream table only,
                each snapshot without records).
        """
        header = self._header or self.header()
        if header is None:
            return []
        streams = self.stream_rows(memory=True)
        by_stream: dict[str, list] = {s.get("stream_id"): [] for s in streams}
        lengths = {s.get("stream_id"): s.get("length") for s in streams}
        if entries and fmt.manifest_dim(header) is not None:
            for point in self.entry_points(vectors=True):
                p = point.payload
                sid, position = p.get("stream_id"), p.get("position")
                if sid in by_stream and isinstance(position, int) and isinstance(lengths[sid], int):
                    if position < lengths[sid]:  # else written by a change that never committed
                        by_stream[sid].append((position, p, self.dense(point.vector)))
        snapshots = self._decode(streams, by_stream)
        self._order = {s.get("stream_id"): _rank(s)[0] for s in streams}  # kept when a stream is written again
        return snapshots

    def stream_snapshots(self, rows: list[dict]) -> list[StreamSnapshot]:
        """The streams of ``rows`` (whole stream payloads, see :meth:`stream_rows`) without their
        entries, verified."""
        return self._decode(rows, {})

    def _decode(self, streams: list[dict], by_stream: Mapping[str, list]) -> list[StreamSnapshot]:
        header = self._header or self.header() or {}
        dim, with_memory = fmt.manifest_dim(header), header.get("mode") == "evo"
        docs, arrays = [], {}
        for n, s in enumerate(streams):
            sid = s.get("stream_id")
            items = sorted(by_stream.get(sid, []), key=lambda item: item[0])
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
        return fmt.decode_streams({"entries": total}, {"streams": docs}, arrays, dim=dim, with_memory=with_memory)

    def stream_rows(self, stream_ids: list[str] | None = None, *, memory: bool = False) -> list[dict]:
        """The payloads of stream points, in creation order.

        Args:
            stream_ids: Those streams (the ones that exist), or ``None`` for every stream.
            memory: Whole payloads (``False``: only ``stream_id``, ``rank`` and ``length``).
        """
        m = self.models
        payload = True if memory else m.PayloadSelectorInclude(include=_LIGHT_STREAM_FIELDS)
        if stream_ids is None:
            kind = m.Filter(must=[m.FieldCondition(key="kind", match=m.MatchValue(value="stream"))])
            points = list(self._scroll(self.streams, vectors=False, filter=kind, payload=payload))
        else:
            ids = [_point_id("stream", sid) for sid in stream_ids]
            points = [
                point
                for start in range(0, len(ids), SCROLL_PAGE)
                for point in self.client.retrieve(self.streams, ids[start : start + SCROLL_PAGE], with_payload=payload)
            ]
        return sorted((point.payload for point in points), key=_rank)

    def stored_lengths(self, stream_ids: list[str] | None = None) -> dict[str, int]:
        """How many texts each stream holds in the database: every stream (``None``), or those of
        ``stream_ids`` that exist; in creation order."""
        lengths = {}
        for row in self.stream_rows(stream_ids):
            sid, length = row.get("stream_id"), row.get("length")
            if not isinstance(sid, str) or not isinstance(length, int) or isinstance(length, bool):
                raise CorruptStoreError(f"Qdrant: stream point {sid!r} has no valid length ({length!r})")
            lengths[sid] = length
        return lengths

    def entry_points(self, filter=None, *, payload=True, vectors: bool = False) -> Iterator:
        """The entry points (committed or not) that match a Qdrant ``filter``, page by page.

        Args:
            filter: A ``models.Filter``, or ``None`` for all.
            payload: ``True``, or a list of the payload fields to read.
            vectors: Read the vectors too (see :meth:`dense`).
        """
        if not self._entries_exist():
            return
        if isinstance(payload, list):
            payload = self.models.PayloadSelectorInclude(include=payload)
        yield from self._scroll(self.collection, vectors=vectors, filter=filter, payload=payload)

    def query(self, requests: list) -> list[list]:
        """Run ``models.QueryRequest`` objects on the entries, in one request; their scored points."""
        if not self._entries_exist():
            return [[] for _ in requests]
        return [answer.points for answer in self.client.query_batch_points(self.collection, requests)]

    def count(self, filter) -> int:
        """How many entry points (committed or not) match a Qdrant ``filter`` (exact)."""
        if not self._entries_exist():
            return 0
        return self.client.count(self.collection, count_filter=filter, exact=True).count

    @staticmethod
    def dense(vector) -> list[float]:
        """An entry point's dense vector, whether the point holds it alone or with its sparse one."""
        return vector[""] if isinstance(vector, dict) else vector

    @staticmethod
    def metadata(payload: Mapping) -> dict:
        """An entry payload's metadata, read back from its exact JSON text.

        Raises:
            CorruptStoreError: It is not a JSON object.
        """
        return _metadata(payload)

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
            self._order.pop(sid, None)
        points = [
            m.PointStruct(
                id=_point_id("entry", e.stream_id, e.position),
                vector=self._vector(e.vector, e.text),
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

    def _vector(self, vector: np.ndarray, text: str):
        dense = np.asarray(vector, dtype=np.float32).tolist()
        if self.sparse is None:
            return dense
        indices, values = document_terms(text)
        return {"": dense, self.sparse: self.models.SparseVector(indices=indices, values=values)}

    def _check_lengths(self, change: Change) -> None:
        first: dict[str, int] = {}
        for e in change.added:
            first[e.stream_id] = min(first.get(e.stream_id, e.position), e.position)
        if not first:
            return
        stored = self.stored_lengths(list(first))
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


def open_qdrant_store(
    where, collection: str = "evostore", *, search: str = "memory", check_embedder: bool = True, **store_options
):
    """An :class:`~.EvoStore` whose every change is written to a Qdrant collection.

    Args:
        where: A ``QdrantClient``, ``":memory:"``, a server / cluster URL (``"http://host:6333"``)
            or a local folder (Qdrant's local mode; one client per folder at a time).
        collection: The collection name (streams in ``<collection>__streams``).
        search: ``"memory"`` (load every entry at open and search in this process, as the
            embedded store does) or ``"database"`` (load only the stream table; entries stay in
            Qdrant and every read and search asks it: see :mod:`.qdrant_search`). A collection
            opens in either mode.
        check_embedder: Check that a plain store's embedder is the one that wrote the collection.
        **store_options: ``EvoStore`` arguments (``model``, ``embeddings``, ``index``, ``hybrid``,
            ``query_memory``, ``hnsw_threshold``, ``lexical_scope``, ``long_texts``); not ``path``.

    Returns:
        The store (its ``backend`` is ``store._backend``; close it with ``store._backend.close()``).

    Raises:
        ValueError: ``search`` is neither mode.
        ModelMismatchError: The collection was written by another model, embedder or mode.
        CorruptStoreError: The collection's content is not a valid store.
    """
    from .encoders import check_mode
    from .evo_store import EvoStore

    check_choice(search, "search", SEARCH_MODES)
    if "path" in store_options:
        raise TypeError("open_qdrant_store takes no path: the collection is the store's durable copy")
    store = EvoStore(**store_options)
    backend = QdrantBackend(qdrant_client_for(where), collection, store._encoder.memory_state)
    if search == "database":
        encoder = store._encoder
        state = DatabaseState(
            backend,
            lambda: Stream(None, encoder.new_memory()),
            encoder.restore_memory,
            store.lexical_scope,
            exact=store.index_kind == "flat",
        )
        store._use_state(state)
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
            for n, snapshot in enumerate(backend.open(entries=search == "memory")):
                store._install(n, snapshot)
        store._backend = backend
    return store
