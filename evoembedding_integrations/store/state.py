"""The store's in-memory state: streams, entries, labels, vector indexes and the BM25 ranking.

:class:`StoreState` changes only through :meth:`StoreState.apply` (one :class:`~.backend.Change`)
and :meth:`StoreState.install` (one verified :class:`~.format.StreamSnapshot`, when loading); it
holds no lock (the store's lock guards it) and validates nothing (the store validates arguments,
:mod:`.format` validates files). Its stream half, :class:`StreamTable`, is shared with the state
whose entries stay in a database (:mod:`.qdrant_search`).

Each entry has an int64 **label**, unique for the life of the store, that keys it in its stream's
FAISS index and in the BM25 index.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .backend import AddedEntry, Change
from .format import StoredRecord, StreamSnapshot
from .hybrid import LexicalRanking, merge_rankings
from .index import VectorIndex
from .records import Hit, Record, copy_metadata


class Stream:
    """A stream: its memory (``EvoStream``; ``None`` in plain mode), vectors (``None``: they stay in
    a database), and text counter."""

    def __init__(self, index: VectorIndex | None, memory: Any) -> None:
        self.index, self.memory, self.length = index, memory, 0


@dataclass
class Entry:
    """One stored text, where it is, and its label."""

    text: str
    metadata: dict
    stream_id: str
    position: int
    label: int


class StreamTable:
    """A store's streams (id to :class:`Stream`, in creation order) and what changes do to them.

    Subclasses hold the entries and say which ids are stored (:meth:`present`).

    Args:
        new_stream: Makes an empty :class:`Stream`; called when a change first touches a stream.
    """

    def __init__(self, new_stream: Callable[[], Stream]) -> None:
        self.new_stream = new_stream
        self.streams: dict[str, Stream] = {}

    def present(self, ids: Iterable[str]) -> list[str]:
        """The stored ones among ``ids``, in order, without repeats."""
        raise NotImplementedError

    def plan_add(self, texts, stream_of, ids, metadatas, vectors, memories) -> Change:
        """The change that appends checked texts (with their vectors and the streams' advanced
        memories) to their streams; an existing id is replaced."""
        lengths = {sid: self.streams[sid].length if sid in self.streams else 0 for sid in stream_of}
        added = []
        for text, sid, id_, metadata, vector in zip(texts, stream_of, ids, metadatas, vectors):
            added.append(AddedEntry(id_, sid, lengths[sid], text, metadata, vector))
            lengths[sid] += 1
        return Change(added=tuple(added), removed=tuple(self.present(ids)), lengths=lengths, memories=memories)

    def install(self, snapshot: StreamSnapshot, memory: Any) -> Stream:
        """Add one verified stream (its length and memory) from a save or a database."""
        stream = self.new_stream()
        stream.length, stream.memory = snapshot.length, memory
        self.streams[snapshot.id] = stream
        return stream

    def version(self, sid: str) -> tuple | None:
        """What identifies the current state of a stream (``None``: no such stream); it differs
        after anything is read into or restored over the stream, or the stream is re-created."""
        stream = self.streams.get(sid)
        return None if stream is None else (id(stream), stream, stream.length, id(stream.memory), stream.memory)

    def _stream(self, sid: str) -> Stream:
        """The stream ``sid``, created (empty) if it is new."""
        return self.streams.get(sid) or self.streams.setdefault(sid, self.new_stream())

    def _advance(self, change: Change) -> None:
        """Give the streams a change extends their new lengths and memories (new streams in order)."""
        for sid, length in change.lengths.items():
            self._stream(sid).length = length
        for sid, memory in change.memories.items():
            self.streams[sid].memory = memory


class StoreState(StreamTable):
    """Streams and entries of one store.

    Args:
        new_stream: Makes an empty :class:`Stream` (an index of the store's dimension and kind,
            and a new memory); called when a change first touches a stream.
        lexical_scope: ``"store"`` or ``"stream"``: whose word statistics BM25 uses.
    """

    def __init__(self, new_stream: Callable[[], Stream], lexical_scope: str = "store") -> None:
        super().__init__(new_stream)
        self.per_stream_lexical = lexical_scope == "stream"
        self.entries: dict[str, Entry] = {}
        self.ids_by_label: dict[int, str] = {}
        self.next_label = 0
        # BM25 rankings by scope key (the stream id, or "" for the whole store), built by the first hybrid search
        self.lexical: dict[str, LexicalRanking] = {}

    # ------------------------------------------------------------------ changing
    def apply(self, change: Change) -> None:
        """Apply one change (already accepted by the backend)."""
        if change.cleared:
            self.streams.clear()
            self.entries.clear()
            self.ids_by_label.clear()
            self.lexical.clear()
            return
        self._remove(change.removed)
        for sid in change.dropped_streams:
            del self.streams[sid]
            self.lexical.pop(sid, None)
        for entry in change.added:
            stream = self._stream(entry.stream_id)
            label = self._new_label(entry.id)
            stream.index.add(np.array([label], np.int64), entry.vector[None])
            self.entries[entry.id] = Entry(entry.text, entry.metadata, entry.stream_id, entry.position, label)
            key = self._lexical_key(entry.stream_id)
            if key in self.lexical:
                self.lexical[key].add([label], [entry.text])
        self._advance(change)

    def install(self, snapshot: StreamSnapshot, memory: Any) -> Stream:
        """Add one verified stream from a save (nothing is re-embedded)."""
        stream = super().install(snapshot, memory)
        first = self.next_label
        for record in snapshot.records:
            label = self._new_label(record.id)
            self.entries[record.id] = Entry(record.text, record.metadata, snapshot.id, record.position, label)
        if snapshot.records:
            stream.index.add(np.arange(first, self.next_label, dtype=np.int64), snapshot.vectors)
        return stream

    def _new_label(self, id_: str) -> int:
        label = self.next_label
        self.next_label += 1
        self.ids_by_label[label] = id_
        return label

    def _remove(self, ids: Iterable[str]) -> None:
        by_stream: dict[str, list[int]] = {}
        for id_ in ids:
            entry = self.entries.pop(id_)
            del self.ids_by_label[entry.label]
            by_stream.setdefault(entry.stream_id, []).append(entry.label)
        for sid, labels in by_stream.items():
            self.streams[sid].index.remove(np.array(labels, np.int64))
            key = self._lexical_key(sid)
            if key in self.lexical:
                self.lexical[key].remove(labels)

    def _lexical_key(self, sid: str) -> str:
        return sid if self.per_stream_lexical else ""

    def _corpus(self, key: str) -> tuple[list[int], list[str]]:
        entries = sorted((e.label, e.text) for e in self.entries.values() if not key or e.stream_id == key)
        return [label for label, _ in entries], [text for _, text in entries]

    def replay(self, changes, streams, restore_memory: Callable[[Any], Any]) -> None:
        """Apply what another process committed (see ``SQLiteBackend.changes_since``), in order.

        Args:
            changes: Per change ``(removed, dropped, created, cleared, added)``; ``added`` holds the
                entries that change wrote and that are still stored.
            streams: ``(stream id, length, memory state)`` of every stream updated since.
            restore_memory: Turns a memory state into the encoder's memory.
        """
        memories = {sid: restore_memory(state) for sid, _, state in streams}  # may raise: nothing changed yet
        for removed, dropped, created, cleared, added in changes:
            if cleared:
                self.apply(Change(cleared=True))
            dropped = tuple(s for s in dropped if s in self.streams)
            gone = set(removed) | {e.id for e in added}
            gone |= {i for i, e in self.entries.items() if e.stream_id in dropped}
            removed = tuple(i for i in gone if i in self.entries)
            if removed or dropped:
                self.apply(Change(removed=removed, dropped_streams=dropped))
            for sid in created:
                self._stream(sid)
            self.apply(Change(added=tuple(added)))
        for sid, length, _ in streams:
            stream = self._stream(sid)
            stream.length, stream.memory = length, memories[sid]

    # ------------------------------------------------------------------ reading
    def present(self, ids: Iterable[str]) -> list[str]:
        """The stored ones among ``ids``, in order, without repeats."""
        return list(dict.fromkeys(i for i in ids if i in self.entries))

    def records(self, ids: list[str], scores: list[float] | None = None) -> list[Record]:
        """The records of the stored ones among ``ids``, in that order (:class:`Hit` objects with
        ``scores``, one per id, when given)."""
        if scores is None:
            return [self.record(i) for i in ids if i in self.entries]
        return [self.record(i, score) for i, score in zip(ids, scores) if i in self.entries]

    def memories(self, sids: list[str]) -> list[Any]:
        """Each stream's memory, to read a query over."""
        return [self.streams[sid].memory for sid in sids]

    def record(self, id_: str, score: float | None = None) -> Record:
        """The record of a stored id (a :class:`Hit` when ``score`` is given)."""
        e = self.entries[id_]
        fields = dict(id=id_, text=e.text, metadata=copy_metadata(e.metadata), stream_id=e.stream_id)
        if score is None:
            return Record(position=e.position, **fields)
        return Hit(position=e.position, score=score, **fields)

    def ids(self, stream_ids: list[str] | None) -> list[str]:
        """Ids of the entries of some streams (``None``: all), stream by stream in creation order,
        then by position."""
        chosen = set(self.streams) if stream_ids is None else set(stream_ids)
        entries = [(i, e) for i, e in self.entries.items() if e.stream_id in chosen]
        order = {sid: n for n, sid in enumerate(self.streams)}
        entries.sort(key=lambda item: (order[item[1].stream_id], item[1].position))
        return [i for i, _ in entries]

    def vectors(self, ids: list[str], dim: int) -> np.ndarray:
        """The stored vectors of stored ids: (n, dim) float32."""
        out = np.zeros((len(ids), dim), np.float32)
        for row, id_ in enumerate(ids):
            entry = self.entries[id_]
            out[row] = self.streams[entry.stream_id].index.vectors(np.array([entry.label], np.int64))[0]
        return out

    def snapshots(self, memory_state: Callable[[Any], dict | None]) -> list[StreamSnapshot]:
        """Every stream as saved (records in position order); ``memory_state`` turns a memory into arrays."""
        out = []
        for sid, stream in self.streams.items():
            labels = stream.index.labels()
            ids = [self.ids_by_label[int(label)] for label in labels]
            order = np.argsort([self.entries[i].position for i in ids], kind="stable")
            ids, labels = [ids[i] for i in order], labels[order]
            records = [StoredRecord(i, e.position, e.text, e.metadata) for i in ids for e in [self.entries[i]]]
            memory = None if stream.memory is None else memory_state(stream.memory)
            out.append(StreamSnapshot(sid, stream.length, records, stream.index.vectors(labels), memory))
        return out

    # ------------------------------------------------------------------ searching
    def searchable(self, stream_ids: list[str] | None) -> list[str]:
        """The streams among ``stream_ids`` (``None``: all) that exist and hold vectors."""
        if stream_ids is None:
            return [s for s, stream in self.streams.items() if len(stream.index)]
        return [s for s in stream_ids if s in self.streams and len(self.streams[s].index)]

    def search(self, queries: np.ndarray, sids: list[str], k: int, predicate) -> list[Hit]:
        """The ``k`` best hits over streams ``sids``, stream ``n`` searched with ``queries[n]``.

        Ties are broken by stream order, then position.
        """
        allowed: dict[str, list[int]] | None = None
        if predicate is not None:
            allowed = {sid: [] for sid in sids}
            for entry in self.entries.values():
                if entry.stream_id in allowed and predicate(entry.metadata):
                    allowed[entry.stream_id].append(entry.label)
        found: list[tuple[float, int, int, str]] = []
        for n, (sid, query) in enumerate(zip(sids, queries)):
            labels = None if allowed is None else np.array(allowed[sid], np.int64)
            scores, labels = self.streams[sid].index.search(query[None], k, labels)
            for score, label in zip(scores[0], labels[0]):
                if label >= 0:
                    id_ = self.ids_by_label[int(label)]
                    found.append((-float(score), n, self.entries[id_].position, id_))
        found.sort()
        return [self.record(id_, -neg) for neg, _, _, id_ in found[:k]]

    def lexical_search(self, query: str, sids: list[str], predicate, depth: int) -> list[str]:
        """Ids of the ``depth`` entries of streams ``sids`` with the highest BM25 scores, best first.

        Word statistics are those of each stream (``lexical_scope="stream"``: one stream's texts
        never change another's scores; several streams' lists are merged by score, ties by stream
        order) or of the whole store (``"store"``). Only texts scoring above 0 count; ties: the
        earlier added first.
        """
        wanted = set(sids)

        def passing(key: str):
            for label, score in self._ranking(key).ranked(query):
                id_ = self.ids_by_label[label]
                entry = self.entries[id_]
                if entry.stream_id in wanted and (predicate is None or predicate(entry.metadata)):
                    yield id_, score, label

        return merge_rankings([passing(key) for key in (sids if self.per_stream_lexical else [""])], depth)

    def _ranking(self, key: str) -> LexicalRanking:
        ranking = self.lexical.get(key)
        if ranking is None:
            ranking = self.lexical[key] = LexicalRanking(lambda: self._corpus(key))
        return ranking
