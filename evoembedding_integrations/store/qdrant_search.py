"""Database-side search for the Qdrant backend: a store state whose entries stay in Qdrant.

``open_qdrant_store(..., search="database")`` gives the store a :class:`DatabaseState` instead of
the in-memory :class:`~.state.StoreState`. At open it reads only the **stream table**: each
stream's id, creation rank, length and memory (what adding to a stream, and reading a query over
its memory, need). Vectors, texts and metadata stay in the database; every read asks it:

* **Dense search**: one ``query_batch_points`` request: one query restricted to the searched
  streams (a ``stream_id`` payload filter; none when every stream is searched) when the query
  vector is the same for all of them (``query_memory=False``, plain stores, ``search_by_vector``),
  else one query per stream, merged by score. Ties are broken by stream order, then position, as in the embedded store. With
  ``index="flat"`` (the default) a Qdrant server is asked for exact search, with ``"hnsw"`` for its
  approximate HNSW search; local mode is always exact.
* **Metadata filters** are not translated into Qdrant's filter language (its matching differs, e.g.
  a match on a key matches list elements): the store's own predicate
  (:func:`~.filters.compile_filter`, callables included) is applied to the candidates here, and a
  query whose candidates do not yield ``k`` passing ones is asked again with twice the limit,
  until they do or the searched streams are exhausted. The results are exact; the cost is that of
  the filter's selectivity: when one entry in ``s`` passes, about ``s * k`` candidates are read,
  in ``log2(s)`` rounds, and a filter that fewer than ``k`` entries pass reads every entry of the
  searched streams.
* **Hybrid search** fuses the dense ranking with a lexical one by the store's reciprocal rank
  fusion (:func:`~.hybrid.fuse`). ``lexical_scope="store"``: Qdrant's own sparse search over the
  ``"bm25"`` vectors, whose IDF Qdrant computes over the whole collection (the embedded store's
  BM25 uses its own word statistics: the rankings are close, not equal). ``"stream"``: the
  library's BM25 (:class:`~.hybrid.LexicalRanking`) over the searched streams' texts, read from the
  database on each search: the embedded ranking exactly. A collection written before entries
  carried sparse vectors has no ``"bm25"`` vector: its store-scope ranking is the library's BM25
  over the searched streams' texts (the embedded ranking when all streams are searched), read on
  each search, with a warning once.

**What a store sees.** The stream table is what this store read at open and has written since
(as in the memory mode): ``streams()``, ``stream()`` and adding use it, so continuing a stream that
another process extended (or created) since raises :class:`~.qdrant_backend.StaleStreamError`
(reopen the store to continue it). Entries are the database's: every read sees what every process
committed, in every stream (a stream this store has not read is searched with a query read over its
stored memory, read for that search). An entry counts once its stream's stored length covers its
position (a change cut short is ignored, as when the memory mode loads). A read over all streams
(``search``, ``ids``, ``len`` without ``stream_ids``) first reads every stream's id and length (no
memories): one request per 1,024 streams.

**Local mode** evaluates payload filters in Python, point by point: a search naming streams, or a
read by id (``get``, ``in``, ``delete``), scans the collection (about 50 ms per 5,000 points on
the development machine). A server answers them from its ``stream_id`` and ``id`` indexes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from .backend import Change
from .format import StreamSnapshot
from .hybrid import LexicalRanking, merge_rankings, query_terms
from .records import CorruptStoreError, Hit, Record
from .state import Stream, StreamTable

if TYPE_CHECKING:
    from .qdrant_backend import QdrantBackend

RECORD_FIELDS = ["id", "stream_id", "position", "text", "metadata_json"]
"""The payload fields a record is read from."""
KEY_FIELDS = ["id", "stream_id", "position"]
"""The payload fields that say which entry a point is and whether it is committed."""
ID_BATCH = 1024
"""Ids per request when entries are read by id."""


class AllStreams(list):
    """What :meth:`DatabaseState.searchable` returns when asked for every stream: every stream
    the database holds, so a search over them needs no ``stream_id`` filter."""


class DatabaseEntries:
    """The entries of a :class:`DatabaseState`, as the store's ``_entries`` view: ``len`` and ``in``
    (each asks the database)."""

    def __init__(self, state: DatabaseState) -> None:
        self._state = state

    def __len__(self) -> int:
        return self._state.count()

    def __contains__(self, id_) -> bool:
        return bool(self._state.present([id_]))


class DatabaseState(StreamTable):
    """A store's stream table in memory, its entries in a Qdrant collection (see the module docstring).

    It offers the interface :class:`~.evo_store.EvoStore` uses on :class:`~.state.StoreState`.

    Args:
        backend: The store's :class:`~.qdrant_backend.QdrantBackend`.
        new_stream: Makes an empty :class:`~.state.Stream` (no index, a new memory).
        restore_memory: Turns a stored memory state into the encoder's memory.
        lexical_scope: ``"store"`` or ``"stream"``: whose word statistics hybrid search uses.
        exact: Ask a Qdrant server for exact search (the store's ``index="flat"``).
    """

    def __init__(
        self,
        backend: QdrantBackend,
        new_stream: Callable[[], Stream],
        restore_memory: Callable[[Any], Any],
        lexical_scope: str = "store",
        *,
        exact: bool = True,
    ) -> None:
        super().__init__(new_stream)
        self.backend, self.models, self.restore_memory = backend, backend.models, restore_memory
        self.per_stream_lexical = lexical_scope == "stream"
        self.params = self.models.SearchParams(exact=True) if exact and not backend.local else None
        self.entries = DatabaseEntries(self)
        self._recent: dict[str, Any] = {}  # id -> entry point, read by the last search (see records)
        self._warned = False

    # ------------------------------------------------------------------ changing
    def apply(self, change: Change) -> None:
        """Apply one change (already written to the database) to the stream table."""
        if change.cleared:
            self.streams.clear()
            return
        for sid in change.dropped_streams:
            del self.streams[sid]
        self._advance(change)

    def snapshots(self, memory_state: Callable[[Any], dict | None]) -> list[StreamSnapshot]:
        """Every stream as the database holds it, entries and memory included (for ``save``).

        Args:
            memory_state: Unused: the database holds each stream's memory as arrays already.
        """
        return self.backend.open()

    def memories(self, sids: list[str]) -> list[Any]:
        """Each stream's memory, to read a query over: this store's, or for a stream it has not read
        (created by another process since it opened), the stored one, read now and not kept."""
        read = {}
        unknown = [sid for sid in sids if sid not in self.streams]
        if unknown:
            for snapshot in self.backend.stream_snapshots(self.backend.stream_rows(unknown, memory=True)):
                try:
                    read[snapshot.id] = self.restore_memory(snapshot.memory)
                except (KeyError, TypeError, ValueError) as exc:
                    raise CorruptStoreError(f"Qdrant: stream {snapshot.id!r} is invalid: {exc}") from None
        return [self.streams[sid].memory if sid in self.streams else read[sid] for sid in sids]

    # ------------------------------------------------------------------ reading
    def _stream_filter(self, sids: Iterable[str]):
        """The Qdrant filter restricting entries to streams ``sids`` (``None`` for :class:`AllStreams`:
        points of other streams, created meanwhile, are then dropped here)."""
        if isinstance(sids, AllStreams):
            return None
        m = self.models
        return m.Filter(must=[m.FieldCondition(key="stream_id", match=m.MatchAny(any=list(sids)))])

    def _committed(self, points: list) -> list[bool]:
        """Whether each entry point is committed: its stream's length covers its position (the
        stored length is asked only for points past the length this store knows)."""

        keys = [(p.payload.get("stream_id"), p.payload.get("position")) for p in points]

        def within(position, length: int) -> bool:
            return isinstance(position, int) and not isinstance(position, bool) and 0 <= position < length

        known = [within(pos, self.streams[s].length if s in self.streams else 0) for s, pos in keys]
        late = sorted({s for (s, _), ok in zip(keys, known) if not ok and isinstance(s, str)})
        stored = self.backend.stored_lengths(late) if late else {}
        return [ok or within(pos, stored.get(s, 0)) for (s, pos), ok in zip(keys, known)]

    def _by_id(self, ids: list[str], *, payload, vectors: bool = False) -> dict[str, Any]:
        """The committed entry point of each stored id among ``ids``."""
        m, found = self.models, {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), ID_BATCH):
            batch = m.Filter(must=[m.FieldCondition(key="id", match=m.MatchAny(any=unique[start : start + ID_BATCH]))])
            points = list(self.backend.entry_points(batch, payload=payload, vectors=vectors))
            found.update((p.payload.get("id"), p) for p, ok in zip(points, self._committed(points)) if ok)
        return found

    def present(self, ids: Iterable[str]) -> list[str]:
        """The stored ones among ``ids``, in order, without repeats."""
        ids = list(dict.fromkeys(ids))
        found = self._by_id(ids, payload=KEY_FIELDS)
        return [i for i in ids if i in found]

    def count(self) -> int:
        """How many entries are stored (committed, in streams that exist)."""
        groups: dict[int, list[str]] = {}
        for sid, length in self.backend.stored_lengths().items():
            groups.setdefault(length, []).append(sid)
        if not groups:
            return 0
        m = self.models
        clauses = [
            m.Filter(
                must=[
                    m.FieldCondition(key="stream_id", match=m.MatchAny(any=sids)),
                    m.FieldCondition(key="position", range=m.Range(lt=length)),
                ]
            )
            for length, sids in groups.items()
        ]
        return self.backend.count(m.Filter(should=clauses))

    def records(self, ids: list[str], scores: list[float] | None = None) -> list[Record]:
        """The records of the stored ones among ``ids``, in that order (:class:`~.records.Hit`
        objects with ``scores``, one per id, when given).

        With ``scores`` (the fused hits of a hybrid search, whose two rankings were just read),
        the entries those rankings read are used as read, and only the others are asked for.
        """
        if scores is None:
            found = self._by_id(ids, payload=RECORD_FIELDS)
        else:
            found = {i: self._recent[i] for i in ids if i in self._recent}
            found.update(self._by_id([i for i in ids if i not in found], payload=RECORD_FIELDS))
        scored = zip(ids, scores) if scores is not None else ((i, None) for i in ids)
        return [self._record(found[i], score) for i, score in scored if i in found]

    def _record(self, point, score: float | None = None) -> Record:
        p = point.payload
        id_, text, sid = p.get("id"), p.get("text"), p.get("stream_id")
        if not all(isinstance(v, str) for v in (id_, text, sid)):
            raise CorruptStoreError(f"Qdrant: entry point {point.id} has no valid id, stream id or text")
        fields = dict(id=id_, text=text, metadata=self.backend.metadata(p), stream_id=sid, position=p["position"])
        return Record(**fields) if score is None else Hit(score=score, **fields)

    def ids(self, stream_ids: list[str] | None) -> list[str]:
        """Ids of the entries of some streams (``None``: all), stream by stream in creation order,
        then by position."""
        lengths = self.backend.stored_lengths(stream_ids)
        order = {sid: n for n, sid in enumerate(lengths)}
        if not order:
            return []
        chosen = None if stream_ids is None else self._stream_filter(order)
        entries = []
        for point in self.backend.entry_points(chosen, payload=KEY_FIELDS):
            sid, position = point.payload.get("stream_id"), point.payload.get("position")
            if sid in order and isinstance(position, int) and position < lengths[sid]:
                entries.append((order[sid], position, point.payload.get("id")))
        entries.sort()
        return [id_ for *_, id_ in entries]

    def vectors(self, ids: list[str], dim: int) -> np.ndarray:
        """The stored vectors of stored ids: (n, dim) float32."""
        found = self._by_id(ids, payload=KEY_FIELDS, vectors=True)
        out = np.zeros((len(ids), dim), np.float32)
        for row, id_ in enumerate(ids):
            out[row] = self.backend.dense(found[id_].vector)
        return out

    # ------------------------------------------------------------------ searching
    def searchable(self, stream_ids: list[str] | None) -> list[str]:
        """The streams among ``stream_ids`` (``None``: all, in creation order) that exist in the
        database, other processes' included."""
        lengths = self.backend.stored_lengths(stream_ids)
        return AllStreams(lengths) if stream_ids is None else [s for s in stream_ids if s in lengths]

    def search(self, queries: np.ndarray, sids: list[str], k: int, predicate) -> list[Hit]:
        """The ``k`` best hits over streams ``sids``, stream ``n`` searched with ``queries[n]``.

        Ties are broken by stream order, then position.
        """
        m = self.models
        if bool((queries == queries[0]).all()):
            groups = [(queries[0], sids)]
        else:
            groups = [(query, [sid]) for query, sid in zip(queries, sids)]

        def request(query: np.ndarray, group: list[str]):
            return lambda limit: m.QueryRequest(
                query=query.tolist(),
                filter=self._stream_filter(group),
                limit=limit,
                params=self.params,
                with_payload=RECORD_FIELDS,
            )

        best = self._best([request(q, g) for q, g in groups], k, predicate, sids)
        self._recent = {point.payload["id"]: point for point in best}
        return [self._record(point, float(point.score)) for point in best]

    def _best(
        self, requests: list[Callable[[int], Any]], k: int, predicate, sids: list[str], *, ties: bool = True
    ) -> list:
        """The ``k`` best committed points that pass ``predicate`` over one or more queries.

        Args:
            requests: Per query, ``limit -> models.QueryRequest``; its points come best first.
            k: How many.
            predicate: The compiled metadata filter, or ``None``.
            sids: The searched streams, in order (for ties: stream order, then position).
            ties: Break ties at the ``k``-th score by stream order and position over all tied
                points (``False``: among those read; for a ranking where many points tie).

        Returns:
            Scored points, best first. A query is first asked for ``k + 1`` points (one more
            shows whether a tie continues past the ``k``-th), then again with twice its limit
            while what it has not returned could still rank among the ``k`` best.
        """
        order = {sid: n for n, sid in enumerate(sids)}
        limits, pending = [k + 1] * len(requests), list(range(len(requests)))
        fetched: list[list] = [[] for _ in requests]
        passed: dict[Any, bool] = {}  # point id -> committed and passing, judged once per search
        while True:
            for g, points in zip(pending, self.backend.query([requests[g](limits[g]) for g in pending])):
                fetched[g] = points
                fresh = [p for p in points if p.id not in passed]
                for point, ok in zip(fresh, self._committed(fresh)):
                    ok = ok and point.payload.get("stream_id") in order
                    passed[point.id] = ok and (predicate is None or predicate(self.backend.metadata(point.payload)))
            accepted = sorted(
                (p for points in fetched for p in points if passed[p.id]),
                key=lambda p: (-p.score, order[p.payload["stream_id"]], p.payload["position"]),
            )[:k]
            threshold = accepted[-1].score if len(accepted) == k else None
            pending = [g for g in pending if _unfinished(fetched[g], limits[g], threshold, ties)]
            if not pending:
                return accepted
            for g in pending:
                limits[g] *= 2

    def lexical_search(self, query: str, sids: list[str], predicate, depth: int) -> list[str]:
        """Ids of the ``depth`` entries of streams ``sids`` with the highest lexical scores, best first.

        ``lexical_scope="store"``: Qdrant's sparse BM25 search (IDF over the whole collection);
        ``"stream"`` (or a collection without sparse vectors): the library's BM25 over the searched
        streams' texts (see the module docstring).
        """
        if self.per_stream_lexical or self.backend.sparse is None:
            return self._bm25(query, sids, predicate, depth)
        m = self.models
        indices, values = query_terms(query)
        if not indices:
            return []
        vector = m.SparseVector(indices=indices, values=values)

        def request(limit: int):
            return m.QueryRequest(
                query=vector,
                using=self.backend.sparse,
                filter=self._stream_filter(sids),
                limit=limit,
                with_payload=RECORD_FIELDS,
            )

        best = self._best([request], depth, predicate, sids, ties=False)  # BM25 ties are many; Qdrant's order
        self._recent.update((point.payload["id"], point) for point in best)
        return [point.payload["id"] for point in best]

    def _bm25(self, query: str, sids: list[str], predicate, depth: int) -> list[str]:
        """The library's BM25 over the searched streams' committed texts (one corpus per stream
        with ``lexical_scope="stream"``, else one for all), merged as :class:`~.state.StoreState` does."""
        if not self.per_stream_lexical and not self._warned:
            self._warned = True
            warnings.warn(
                f"Qdrant collection {self.backend.collection!r} has no sparse BM25 vectors (it was created "
                "before entries carried them): hybrid search ranks BM25 over the searched streams' texts, "
                "read from the database on every search. A collection created now has them.",
                stacklevel=4,
            )
        order = {sid: n for n, sid in enumerate(sids)}
        points = list(self.backend.entry_points(self._stream_filter(sids), payload=RECORD_FIELDS))
        points = [p for p, ok in zip(points, self._committed(points)) if ok and p.payload["stream_id"] in order]
        points.sort(key=lambda p: (order[p.payload["stream_id"]], p.payload["position"]))
        corpora: dict[Any, list] = {}
        for point in points:
            corpora.setdefault(point.payload["stream_id"] if self.per_stream_lexical else "", []).append(point)

        def passing(corpus: list):
            ranking = LexicalRanking(lambda: (range(len(corpus)), [p.payload.get("text") for p in corpus]))
            for slot, score in ranking.ranked(query):
                payload = corpus[slot].payload
                if predicate is None or predicate(self.backend.metadata(payload)):
                    yield payload["id"], score, slot

        ids = merge_rankings([passing(corpus) for corpus in corpora.values()], depth)
        read = {point.payload["id"]: point for point in points}
        self._recent.update((id_, read[id_]) for id_ in ids)
        return ids


def _unfinished(points: list, limit: int, threshold: float | None, ties: bool) -> bool:
    """Whether a query asked for ``limit`` points, which returned ``points``, may hold unread ones
    that rank among the best (the lowest of which scores ``threshold``; ``None``: too few yet)."""
    if len(points) < limit:
        return False  # it returned everything it matches
    last = points[-1].score  # nothing unread scores higher
    return threshold is None or last > threshold or (ties and last == threshold)
