"""EvoStore: a persistent FAISS store of many streams, each with its own EvoEmbedding memory.

Shared by the LangChain and LlamaIndex integrations and the agent-memory backend.

A store holds any number of **streams** (a conversation, a user, a document). Texts added to a
stream are read by that stream's :class:`~evoembedding_core.EvoStream` in order, so each vector
depends on what came before it in the same stream. Every entry keeps its stable id, stream id,
position in the stream, text and JSON metadata.

>>> store = EvoStore()                                           # doctest: +SKIP
>>> store.add(["Ana: I grew up in Porto.", "Ana: Last year I moved to Oslo."], stream_id="ana")
>>> store.search("Where does Ana live now?", k=1)[0].text         # doctest: +SKIP

API (all methods are thread-safe; one ``RLock`` per store, one lock per model):

* ``EvoStore(model=None, *, embeddings=None, index="flat", hnsw_threshold=10_000, query_memory=True,
  hybrid=False)``: an EvoEmbedding model (default: the shipped one, cached) or, with ``embeddings=``,
  any plain embedder (a LangChain ``Embeddings`` or a callable ``texts -> (n, d) vectors``): then it
  is a plain, safe FAISS store (cosine similarity, no memory; streams are just partitions).
  ``query_memory=False`` encodes queries over an empty memory; ``hybrid=True`` makes ``search``
  fuse the vector ranking with BM25 over the texts (reciprocal rank fusion; hits carry the fused
  score, and ``mmr_search`` stays vector-only).
* ``add(texts, *, stream_id="default", ids=None, metadatas=None) -> ids``: ``stream_id`` is one id or
  one per text; ``ids`` default to UUIDs (``None`` entries too); re-adding an existing id replaces its
  text, vector, metadata and stream (the new text is appended to the stream like any other).
* ``search(query, *, k=4, stream_ids=None, filter=None, hybrid=None) -> [Hit]`` best first. The query is encoded
  against each searched stream's memory (one batched forward for all streams) and searched only in
  that stream's index; results are merged by score. ``stream_ids``: one id, several, or ``None`` for
  all; streams that do not exist contribute nothing. ``filter``: ``{key: value}`` equalities, operators
  ``$eq $ne $in $nin $gt $gte $lt $lte $exists``, ``$and`` / ``$or`` lists, or a callable
  ``metadata -> bool``.
* ``search_by_vector(vector, ...)``, ``mmr_search(query, *, k, fetch_k, lambda_mult, ...)``,
  ``mmr_search_by_vector``, ``encode_query(query, stream_id)``.
* ``get(ids) -> [Record]`` (missing ids skipped), ``ids(stream_ids=None)``, ``delete(ids) -> count``
  (missing ids ignored), ``delete_stream(stream_id) -> bool``, ``clear()``, ``streams()``,
  ``stream(stream_id) -> EvoStream`` (a copy of its memory state), ``len(store)``, ``id in store``.
* ``save(directory)`` / ``EvoStore.load(directory, model=None, *, embeddings=None)``.

Deleting an entry removes its vector and text, but **the stream's memory is not rewound**: later
vectors of that stream were computed with the deleted text in memory, and stay so.

Scores are inner products of L2-normalised vectors (cosine), higher is better. Search is exact
(FAISS ``IndexFlatIP``) by default; ``index="hnsw"`` searches streams holding at least
``hnsw_threshold`` vectors with an approximate HNSW graph (filtered searches stay exact).

Persistence (no pickle anywhere; loading an untrusted directory can fail, never run code):
``manifest.json`` (format version, mode, model fingerprint, dimension, streams, and the size and
SHA-256 of every data file), ``records-<save>.json`` (texts, metadata, ids, positions, stream
counters) and ``arrays-<save>.safetensors`` (each stream's vectors and memory state). The FAISS
indexes are rebuilt from the vectors on load: FAISS's own reader trusts the sizes a file declares,
while safetensors checks them. A save writes new uniquely named files, fsyncs them, then atomically
replaces ``manifest.json`` and only then removes the previous save's files, so a crash at any point
leaves the previous (or the new) save complete and loadable. Loading checks the version, every
size and checksum, refuses symlinks and names outside the directory, validates every record, and
refuses a store written by a different model (:class:`ModelMismatchError`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import re
import stat
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load as load_arrays
from safetensors.numpy import save as save_arrays

from evoembedding_core import EvoEmbeddingModel, EvoStream
from evoembedding_core.lexical import FUSION_DEPTH, LexicalIndex, reciprocal_rank_fusion
from evoembedding_core.stream import validate_texts

DEFAULT_STREAM = "default"
FORMAT = "evoembedding-store"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
_DATA_FILE = re.compile(r"^(records|arrays)-[0-9a-f]{32}\.(json|safetensors)$")
_TMP_FILE = re.compile(r"^\.tmp-[0-9a-f]{32}$")
_OPERATORS = {"$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$exists"}


class CorruptStoreError(ValueError):
    """A saved store is unreadable, inconsistent, of an unknown version, or fails its checksums."""


class ModelMismatchError(ValueError):
    """A saved store was written with a different model (or embedder) than the one given."""


@dataclass(frozen=True)
class Record:
    """One stored entry (``metadata`` is the caller's own copy)."""

    id: str
    text: str
    metadata: dict
    stream_id: str
    position: int


@dataclass(frozen=True)
class Hit(Record):
    """A search result: a record and its score (cosine similarity, higher is better)."""

    score: float


# ---------------------------------------------------------------------------------------- models
def model_lock(model: EvoEmbeddingModel) -> threading.RLock:
    """The model's own lock (see ``EvoEmbeddingModel.lock``): hold it to keep a stream update and its
    forwards together."""
    return model.lock


@functools.lru_cache(maxsize=8)
def _cached_model(name: str) -> EvoEmbeddingModel:
    return EvoEmbeddingModel.default() if name == "default" else EvoEmbeddingModel.from_pretrained(name)


_LOAD_LOCK = threading.Lock()


def resolve_model(model: EvoEmbeddingModel | str | os.PathLike | None = None) -> EvoEmbeddingModel:
    """A model instance from ``None`` (the shipped default), a name or a directory; loaded once, then cached."""
    if isinstance(model, EvoEmbeddingModel):
        return model
    if model is None:
        model = "default"
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be an EvoEmbeddingModel, a name or a path, got {type(model).__name__}")
    with _LOAD_LOCK:
        return _cached_model(str(model))


# ---------------------------------------------------------------------------------------- validation
def _validate_id(value, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, got {type(value).__name__}")
    return validate_texts([value], what)[0]


def _id_list(ids) -> list[str]:
    """``ids`` (one id or an iterable of them) as a list of strings, or a ``TypeError`` naming the bad one."""
    if isinstance(ids, str):
        return [ids]
    if not isinstance(ids, Iterable) or isinstance(ids, (bytes, bytearray, Mapping)):
        raise TypeError(f"ids must be a list of strings, got {type(ids).__name__}")
    ids = list(ids)
    for k, i in enumerate(ids):
        if not isinstance(i, str):
            raise TypeError(f"ids[{k}] must be a string, got {type(i).__name__}")
    return ids


def _check_k(k, name: str = "k") -> int:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"{name} must be a positive integer, got {k!r}")
    return k


def _clean_metadata(metadata, what: str) -> dict:
    """A private JSON copy of ``metadata`` (string keys, finite numbers), or a clear error."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise TypeError(f"{what} must be a dict or None, got {type(metadata).__name__}")
    try:
        _check_string_keys(metadata, what)
        return json.loads(json.dumps(dict(metadata), allow_nan=False, ensure_ascii=True))
    except (TypeError, ValueError, RecursionError) as exc:
        raise TypeError(f"{what} must be JSON-serialisable with finite numbers: {exc}") from None


def _check_string_keys(value, what: str) -> None:
    """Refuse non-string keys at any depth (JSON would silently turn ``1`` or ``None`` into ``"1"`` / ``"null"``)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{what} keys must be strings, got {key!r}")
            _check_string_keys(item, what)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_string_keys(item, what)


def _stream_ids(stream_ids) -> list[str] | None:
    if stream_ids is None:
        return None
    if isinstance(stream_ids, str):
        stream_ids = [stream_ids]
    if not isinstance(stream_ids, Iterable):
        raise TypeError(f"stream_ids must be a string, a list of strings or None, got {type(stream_ids).__name__}")
    return list(dict.fromkeys(_validate_id(s, "stream_ids") for s in stream_ids))


def compile_filter(spec) -> Callable[[dict], bool] | None:
    """Validate a metadata filter once and return it as a predicate (``None``: no filter)."""
    if spec is None or callable(spec):
        return spec
    if not isinstance(spec, Mapping):
        raise TypeError(f"filter must be a dict, a callable or None, got {type(spec).__name__}")
    tests = []
    for key, cond in spec.items():
        if key in ("$and", "$or"):
            if not isinstance(cond, (list, tuple)) or not cond:
                raise ValueError(f"filter {key} needs a non-empty list of filters")
            parts = [compile_filter(c) if isinstance(c, Mapping) else _bad_filter(key, c) for c in cond]
            combine = all if key == "$and" else any
            tests.append(lambda m, parts=parts, combine=combine: combine(p(m) for p in parts))
        elif not isinstance(key, str) or key.startswith("$"):
            raise ValueError(f"unknown filter operator or key {key!r}")
        elif isinstance(cond, Mapping) and cond and all(isinstance(op, str) and op.startswith("$") for op in cond):
            tests.extend(_operator_test(key, op, arg) for op, arg in cond.items())
        else:
            tests.append(_operator_test(key, "$eq", cond))
    return lambda metadata: all(test(metadata) for test in tests)


def _bad_filter(key, value):
    raise TypeError(f"filter {key} entries must be dicts, got {type(value).__name__}")


_MISSING = object()


def _operator_test(key: str, op: str, arg) -> Callable[[dict], bool]:
    if op not in _OPERATORS:
        raise ValueError(f"unknown filter operator {op!r} for key {key!r} (known: {sorted(_OPERATORS)})")
    if op in ("$in", "$nin"):
        if not isinstance(arg, (list, tuple, set, frozenset)):
            raise TypeError(f"filter {key}.{op} needs a list, got {type(arg).__name__}")
        arg = list(arg)
    if op == "$exists":
        if not isinstance(arg, bool):
            raise TypeError(f"filter {key}.$exists needs true or false, got {arg!r}")
        return lambda m: (key in m) == arg
    compare = {
        "$eq": lambda v: v == arg,
        "$ne": lambda v: v != arg,
        "$in": lambda v: v in arg,
        "$nin": lambda v: v not in arg,
        "$gt": lambda v: v > arg,
        "$gte": lambda v: v >= arg,
        "$lt": lambda v: v < arg,
        "$lte": lambda v: v <= arg,
    }[op]

    def test(metadata: dict) -> bool:
        value = metadata.get(key, _MISSING)
        if value is _MISSING:
            return op in ("$ne", "$nin")
        try:
            return bool(compare(value))
        except TypeError:  # e.g. "a" > 3: not a match
            return False

    return test


def _mmr_options(k, fetch_k, lambda_mult, filter) -> tuple:
    k, fetch_k, predicate = _check_k(k), _check_k(fetch_k, "fetch_k"), compile_filter(filter)
    if isinstance(lambda_mult, bool) or not isinstance(lambda_mult, (int, float)) or not 0 <= lambda_mult <= 1:
        raise ValueError(f"lambda_mult must be a number in [0, 1], got {lambda_mult!r}")
    return k, fetch_k, float(lambda_mult), predicate


# ---------------------------------------------------------------------------------------- vectors
class _VectorIndex:
    """One stream's vectors: exact ``IndexFlatIP`` with int64 labels; optional HNSW graph for big streams."""

    def __init__(self, dim: int, kind: str, hnsw_threshold: int) -> None:
        self.flat = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self.kind, self.hnsw_threshold, self.dim = kind, hnsw_threshold, dim
        self.graph = None  # built lazily, dropped on delete

    def __len__(self) -> int:
        return self.flat.ntotal

    def add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        self.flat.add_with_ids(vectors, labels)
        if self.graph is not None:
            self.graph.add_with_ids(vectors, labels)

    def remove(self, labels: np.ndarray) -> None:
        self.flat.remove_ids(labels)
        self.graph = None

    def vectors(self, labels: np.ndarray) -> np.ndarray:
        return self.flat.reconstruct_batch(labels) if len(labels) else np.zeros((0, self.dim), np.float32)

    def labels(self) -> np.ndarray:
        return faiss.vector_to_array(self.flat.id_map).astype(np.int64)

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self) if allowed is None else len(allowed))
        if k == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        if allowed is not None:
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
            return self.flat.search(queries, k, params=params)
        if self.kind == "hnsw" and len(self) >= self.hnsw_threshold:
            if self.graph is None:
                hnsw = faiss.IndexHNSWFlat(self.dim, 32, faiss.METRIC_INNER_PRODUCT)
                hnsw.hnsw.efSearch = 128
                self.graph = faiss.IndexIDMap2(hnsw)
                labels = self.labels()
                self.graph.add_with_ids(self.vectors(labels), labels)
            return self.graph.search(queries, k)
        return self.flat.search(queries, k)


class _Stream:
    """A stream: its memory (``EvoStream``; ``None`` in plain mode), vectors, and segment counter."""

    def __init__(self, index: _VectorIndex, memory: EvoStream | None) -> None:
        self.index, self.memory, self.length = index, memory, 0


@dataclass
class _Entry:
    text: str
    metadata: dict
    stream_id: str
    position: int
    label: int


def _normalise(vectors, dim: int | None, what: str) -> np.ndarray:
    """Vectors as a finite, L2-normalised float32 (n, d) array (d checked against ``dim``), or an error."""
    try:
        array = np.asarray(vectors, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be numeric vectors") from None
    if array.ndim != 2 or array.shape[1] == 0:
        raise ValueError(f"{what} must have shape (n, d), got {array.shape}")
    if dim is not None and array.shape[1] != dim:
        raise ValueError(f"{what} have dimension {array.shape[1]}, the store holds {dim}-d vectors")
    if not np.isfinite(array).all():
        raise ValueError(f"{what} contain NaN or inf")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"{what} contain a zero vector (no direction to compare)")
    return np.ascontiguousarray(array / norms, dtype=np.float32)


# ---------------------------------------------------------------------------------------- the store
class EvoStore:
    """Streams of texts with context-aware vectors, searchable and persistent (see the module docstring)."""

    def __init__(
        self,
        model: EvoEmbeddingModel | str | os.PathLike | None = None,
        *,
        embeddings=None,
        index: str = "flat",
        hnsw_threshold: int = 10_000,
        query_memory: bool = True,
        hybrid: bool = False,
    ) -> None:
        """``query_memory=False`` reads queries over an empty memory instead of each stream's current
        one (the stored vectors keep their context): better for questions about any point of a long,
        finished history, whose latest turns say nothing about the question.

        ``hybrid=True``: :meth:`search` fuses the vector ranking with a BM25 ranking of the texts
        (reciprocal rank fusion of the best max(k, 100) of each); hits then carry the fused score."""
        for name, value in (("query_memory", query_memory), ("hybrid", hybrid)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be True or False, got {value!r}")
        if index not in ("flat", "hnsw"):
            raise ValueError(f"index must be 'flat' or 'hnsw', got {index!r}")
        _check_k(hnsw_threshold, "hnsw_threshold")
        if embeddings is not None and model is not None:
            raise ValueError("pass either model (EvoEmbedding mode) or embeddings (plain mode), not both")
        if embeddings is not None and not (callable(embeddings) or hasattr(embeddings, "embed_documents")):
            raise TypeError("embeddings must be a LangChain Embeddings or a callable texts -> vectors")
        self.embeddings = embeddings
        self.model = None if embeddings is not None else resolve_model(model)
        self.index_kind, self.hnsw_threshold = index, hnsw_threshold
        self.query_memory, self.hybrid = query_memory, hybrid
        self.dim: int | None = self.model.output_dim if self.model is not None else None
        self._streams: dict[str, _Stream] = {}
        self._entries: dict[str, _Entry] = {}
        self._ids_by_label: dict[int, str] = {}
        self._next_label = 0
        self._lexical: LexicalIndex | None = None  # BM25 over all texts by label: built by the first hybrid search
        self._lock = threading.RLock()
        self._save_lock = threading.Lock()

    # ------------------------------------------------------------------ basics
    @property
    def mode(self) -> str:
        """``"evo"`` (context-aware, per-stream memory) or ``"plain"`` (any embedder, no memory)."""
        return "evo" if self.model is not None else "plain"

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, id_) -> bool:
        return isinstance(id_, str) and id_ in self._entries

    def __repr__(self) -> str:
        return f"EvoStore(mode={self.mode}, streams={len(self._streams)}, entries={len(self)}, index={self.index_kind})"

    def streams(self) -> list[str]:
        """Stream ids, in creation order."""
        with self._lock:
            return list(self._streams)

    def stream(self, stream_id: str) -> EvoStream:
        """A copy of one stream's reader (memory state included): use it to inspect, not to add."""
        stream_id = _validate_id(stream_id, "stream_id")
        with self._lock:
            if self.model is None:
                raise ValueError("a plain store has no stream memories")
            if stream_id not in self._streams:
                raise KeyError(f"no stream {stream_id!r}")
            return EvoStream(self.model).load_state_dict(self._streams[stream_id].memory.state_dict())

    def _new_stream(self) -> _Stream:
        memory = EvoStream(self.model) if self.model is not None else None
        return _Stream(_VectorIndex(self.dim, self.index_kind, self.hnsw_threshold), memory)

    # ------------------------------------------------------------------ adding
    def add(self, texts, *, stream_id: str | Sequence[str] = DEFAULT_STREAM, ids=None, metadatas=None) -> list[str]:
        """Append texts to their stream(s) in order; returns their ids. A rejected call changes nothing."""
        texts = validate_texts(texts)
        n = len(texts)
        stream_of = self._per_text_streams(stream_id, n)
        ids = self._new_ids(ids, n)
        metadatas = self._per_text_metadata(metadatas, n)
        if not texts:
            return []
        with self._lock:
            vectors, memories = self._embed_for_add(texts, stream_of)
            self._commit(texts, stream_of, ids, metadatas, vectors, memories)
        return ids

    @staticmethod
    def _per_text_streams(stream_id, n: int) -> list[str]:
        if isinstance(stream_id, str):
            return [_validate_id(stream_id, "stream_id")] * n
        if not isinstance(stream_id, Sequence):
            raise TypeError(f"stream_id must be a string or one string per text, got {type(stream_id).__name__}")
        if len(stream_id) != n:
            raise ValueError(f"got {len(stream_id)} stream ids for {n} texts")
        return [_validate_id(s, f"stream_id[{i}]") for i, s in enumerate(stream_id)]

    @staticmethod
    def _new_ids(ids, n: int) -> list[str]:
        if ids is None:
            return [str(uuid.uuid4()) for _ in range(n)]
        if isinstance(ids, str) or not isinstance(ids, Sequence):
            raise TypeError(f"ids must be a list of strings (or None), got {type(ids).__name__}")
        if len(ids) != n:
            raise ValueError(f"got {len(ids)} ids for {n} texts")
        ids = [str(uuid.uuid4()) if i is None else _validate_id(i, f"ids[{k}]") for k, i in enumerate(ids)]
        if len(set(ids)) != n:
            duplicate = next(i for i in ids if ids.count(i) > 1)
            raise ValueError(f"ids contain a duplicate: {duplicate!r}")
        return ids

    @staticmethod
    def _per_text_metadata(metadatas, n: int) -> list[dict]:
        if metadatas is None:
            return [{} for _ in range(n)]
        if isinstance(metadatas, (str, Mapping)) or not isinstance(metadatas, Sequence):
            raise TypeError(f"metadatas must be a list of dicts (or None), got {type(metadatas).__name__}")
        if len(metadatas) != n:
            raise ValueError(f"got {len(metadatas)} metadatas for {n} texts")
        return [_clean_metadata(m, f"metadatas[{i}]") for i, m in enumerate(metadatas)]

    def _embed_for_add(self, texts: list[str], stream_of: list[str]) -> tuple[np.ndarray, dict[str, EvoStream]]:
        """Vectors of the new texts, and each touched stream's advanced reader (nothing committed yet)."""
        if self.model is None:
            return self._embed_plain(texts, "document vectors"), {}
        vectors = np.zeros((len(texts), self.dim), np.float32)
        memories: dict[str, EvoStream] = {}
        for sid in dict.fromkeys(stream_of):
            rows = [i for i, s in enumerate(stream_of) if s == sid]
            reader = self.stream(sid) if sid in self._streams else EvoStream(self.model)
            with model_lock(self.model):
                vectors[rows] = reader.add([texts[i] for i in rows])
            memories[sid] = reader
        return vectors, memories

    def _embed_plain(self, texts: list[str], what: str) -> np.ndarray:
        if hasattr(self.embeddings, "embed_documents"):
            raw = self.embeddings.embed_documents(texts)
        else:
            raw = self.embeddings(texts)
        vectors = _normalise(raw, self.dim, what)
        if len(vectors) != len(texts):
            raise ValueError(f"the embedder returned {len(vectors)} {what} for {len(texts)} texts")
        return vectors

    def _commit(self, texts, stream_of, ids, metadatas, vectors, memories) -> None:
        if self.dim is None:
            self.dim = vectors.shape[1]
        self._remove([i for i in ids if i in self._entries])
        for text, sid, id_, metadata, vector in zip(texts, stream_of, ids, metadatas, vectors):
            stream = self._streams.get(sid) or self._streams.setdefault(sid, self._new_stream())
            label = self._next_label
            self._next_label += 1
            stream.index.add(np.array([label], np.int64), vector[None])
            if self._lexical is not None:
                self._lexical.add([label], [text])
            self._entries[id_] = _Entry(text, metadata, sid, stream.length, label)
            self._ids_by_label[label] = id_
            stream.length += 1
        for sid, reader in memories.items():
            self._streams[sid].memory = reader

    # ------------------------------------------------------------------ reading
    def get(self, ids) -> list[Record]:
        """Records of the given ids, in that order; missing ids are skipped."""
        ids = _id_list(ids)
        with self._lock:
            return [self._record(i) for i in ids if i in self._entries]

    def ids(self, stream_ids=None) -> list[str]:
        """Ids of all entries (or of some streams), stream by stream, in stream order."""
        wanted = _stream_ids(stream_ids)
        with self._lock:
            chosen = set(self._streams) if wanted is None else set(wanted)
            entries = [(i, e) for i, e in self._entries.items() if e.stream_id in chosen]
            order = {sid: n for n, sid in enumerate(self._streams)}
            entries.sort(key=lambda item: (order[item[1].stream_id], item[1].position))
            return [i for i, _ in entries]

    def vectors(self, ids) -> np.ndarray:
        """Stored vectors of the given (existing) ids: (n, d) float32."""
        ids = _id_list(ids)
        with self._lock:
            missing = [i for i in ids if i not in self._entries]
            if missing:
                raise KeyError(f"unknown ids: {missing[:5]}")
            out = np.zeros((len(ids), self.dim or 0), np.float32)
            for row, id_ in enumerate(ids):
                entry = self._entries[id_]
                out[row] = self._streams[entry.stream_id].index.vectors(np.array([entry.label], np.int64))[0]
            return out

    def _record(self, id_: str, score: float | None = None) -> Record:
        e = self._entries[id_]
        fields = dict(id=id_, text=e.text, metadata=json.loads(json.dumps(e.metadata)), stream_id=e.stream_id)
        if score is None:
            return Record(position=e.position, **fields)
        return Hit(position=e.position, score=score, **fields)

    # ------------------------------------------------------------------ deleting
    def delete(self, ids) -> int:
        """Remove entries (vector and text); missing ids are ignored. Returns how many were removed.

        The streams' memories are not rewound (later vectors were computed with these texts read).
        """
        ids = _id_list(ids)
        with self._lock:
            present = list(dict.fromkeys(i for i in ids if i in self._entries))
            self._remove(present)
            return len(present)

    def _remove(self, ids: list[str]) -> None:
        by_stream: dict[str, list[int]] = {}
        for id_ in ids:
            entry = self._entries.pop(id_)
            del self._ids_by_label[entry.label]
            by_stream.setdefault(entry.stream_id, []).append(entry.label)
        for sid, labels in by_stream.items():
            self._streams[sid].index.remove(np.array(labels, np.int64))
            if self._lexical is not None:
                self._lexical.remove(labels)

    def delete_stream(self, stream_id: str) -> bool:
        """Remove a stream, its entries and its memory. Returns whether it existed."""
        stream_id = _validate_id(stream_id, "stream_id")
        with self._lock:
            if stream_id not in self._streams:
                return False
            self._remove([i for i, e in self._entries.items() if e.stream_id == stream_id])
            del self._streams[stream_id]
            return True

    def clear(self) -> None:
        """Remove every stream and entry."""
        with self._lock:
            self._streams.clear()
            self._entries.clear()
            self._ids_by_label.clear()
            self._lexical = None

    # ------------------------------------------------------------------ searching
    def encode_query(self, query: str, stream_id: str = DEFAULT_STREAM) -> np.ndarray:
        """The query's vector against one stream's memory (an empty memory if the stream is new or
        ``query_memory`` is off): (d,)."""
        query = _validate_id(query, "query")
        stream_id = _validate_id(stream_id, "stream_id")
        with self._lock:
            if self.model is None:
                return self._plain_query(query)
            stream = self._streams.get(stream_id)
            reader = stream.memory if stream is not None else EvoStream(self.model)
            with model_lock(self.model):
                return reader.encode_query(query, memory=self.query_memory)

    def _plain_query(self, query: str) -> np.ndarray:
        if hasattr(self.embeddings, "embed_query"):
            raw = [self.embeddings.embed_query(query)]
        else:
            raw = self.embeddings([query])
        return _normalise(raw, self.dim, "query vector")[0]

    def _query_vectors(self, query: str, stream_ids: list[str]) -> np.ndarray:
        """One query vector per stream: (S, d). EvoEmbedding mode encodes all streams in one batch."""
        if self.model is None:
            return np.repeat(self._plain_query(query)[None], len(stream_ids), axis=0)
        if not self.query_memory:  # one vector, over an empty memory, serves every stream
            with model_lock(self.model):
                vector = EvoStream(self.model).encode_query(query)
            return np.repeat(vector[None], len(stream_ids), axis=0)
        tokens = self.model.tokenize([query], query=True)
        memories = [self._streams[s].memory.state.memory for s in stream_ids]
        out = []
        with model_lock(self.model), torch.inference_mode():
            for start in range(0, len(memories), 64):
                batch = memories[start : start + 64]
                out.append(self.model.represent(batch, tokens * len(batch)).cpu().numpy())
        return np.concatenate(out).astype(np.float32)

    def _searched_streams(self, stream_ids) -> list[str]:
        wanted = _stream_ids(stream_ids)
        if wanted is None:
            return [s for s, stream in self._streams.items() if len(stream.index)]
        return [s for s in wanted if s in self._streams and len(self._streams[s].index)]

    def search(self, query: str, *, k: int = 4, stream_ids=None, filter=None, hybrid: bool | None = None) -> list[Hit]:
        """The ``k`` best entries for ``query``, best first, each stream searched with its own memory;
        ``hybrid`` (default: the store's) fuses that ranking with the BM25 ranking of the same streams."""
        query = _validate_id(query, "query")
        k, predicate = _check_k(k), compile_filter(filter)
        if hybrid is not None and not isinstance(hybrid, bool):
            raise TypeError(f"hybrid must be True, False or None, got {hybrid!r}")
        with self._lock:
            sids = self._searched_streams(stream_ids)
            if not sids:
                return []
            queries = self._query_vectors(query, sids)
            if not (self.hybrid if hybrid is None else hybrid):
                return self._search(queries, sids, k, predicate)
            depth = max(k, FUSION_DEPTH)
            dense = [h.id for h in self._search(queries, sids, depth, predicate)]
            fused = reciprocal_rank_fusion([dense, self._lexical_search(query, sids, predicate, depth)])
            return [self._record(id_, score) for id_, score in list(fused.items())[:k]]

    def _lexical_search(self, query: str, sids: list[str], predicate, depth: int) -> list[str]:
        """Ids of the ``depth`` entries of the streams with the highest BM25 scores (above 0; word
        statistics of the whole store; ties: the earlier added first), best first."""
        if self._lexical is None:
            entries = list(self._entries.values())
            self._lexical = LexicalIndex()
            self._lexical.add([e.label for e in entries], [e.text for e in entries])
        wanted, found = set(sids), []
        for label, _ in self._lexical.ranked(query):
            id_ = self._ids_by_label[label]
            entry = self._entries[id_]
            if entry.stream_id in wanted and (predicate is None or predicate(entry.metadata)):
                found.append(id_)
                if len(found) == depth:
                    break
        return found

    def search_by_vector(self, vector, *, k: int = 4, stream_ids=None, filter=None) -> list[Hit]:
        """The ``k`` best entries for a given query vector (normalised here), searched in every chosen stream."""
        k, predicate = _check_k(k), compile_filter(filter)
        with self._lock:
            vector = self._query_vector_arg(vector)
            sids = self._searched_streams(stream_ids)
            if not sids:
                return []
            return self._search(np.repeat(vector[None], len(sids), axis=0), sids, k, predicate)

    def _query_vector_arg(self, vector) -> np.ndarray:
        array = np.asarray(vector) if not isinstance(vector, (str, bytes)) else None
        if array is None or array.ndim != 1:
            raise ValueError("vector must be one 1-d vector")
        return _normalise(array[None], self.dim, "query vector")[0]

    def _search(self, queries: np.ndarray, sids: list[str], k: int, predicate) -> list[Hit]:
        allowed: dict[str, list[int]] | None = None
        if predicate is not None:
            allowed = {sid: [] for sid in sids}
            for entry in self._entries.values():
                if entry.stream_id in allowed and predicate(entry.metadata):
                    allowed[entry.stream_id].append(entry.label)
        found: list[tuple[float, int, int, str]] = []
        for n, (sid, query) in enumerate(zip(sids, queries)):
            labels = None if allowed is None else np.array(allowed[sid], np.int64)
            scores, labels = self._streams[sid].index.search(query[None], k, labels)
            for score, label in zip(scores[0], labels[0]):
                if label >= 0:
                    id_ = self._ids_by_label[int(label)]
                    found.append((-float(score), n, self._entries[id_].position, id_))
        found.sort()
        return [self._record(id_, -neg) for neg, _, _, id_ in found[:k]]

    def mmr_search(
        self, query: str, *, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, stream_ids=None, filter=None
    ) -> list[Hit]:
        """Maximal marginal relevance: ``fetch_k`` best candidates, then ``k`` relevant and diverse ones."""
        query = _validate_id(query, "query")
        options = _mmr_options(k, fetch_k, lambda_mult, filter)
        with self._lock:
            sids = self._searched_streams(stream_ids)
            return self._mmr(self._query_vectors(query, sids) if sids else None, sids, *options)

    def mmr_search_by_vector(
        self, vector, *, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, stream_ids=None, filter=None
    ) -> list[Hit]:
        """:meth:`mmr_search` for a given query vector."""
        options = _mmr_options(k, fetch_k, lambda_mult, filter)
        with self._lock:
            vector = self._query_vector_arg(vector)
            sids = self._searched_streams(stream_ids)
            return self._mmr(np.repeat(vector[None], len(sids), axis=0), sids, *options)

    def _mmr(self, queries, sids, k, fetch_k, lambda_mult, predicate) -> list[Hit]:
        if not sids:
            return []
        candidates = self._search(queries, sids, max(k, fetch_k), predicate)
        if not candidates:
            return []
        vectors = self.vectors([h.id for h in candidates])
        relevance = np.array([h.score for h in candidates])
        chosen: list[int] = []
        while len(chosen) < min(k, len(candidates)):
            redundancy = (vectors @ vectors[chosen].T).max(axis=1) if chosen else np.zeros(len(candidates))
            value = lambda_mult * relevance - (1 - lambda_mult) * redundancy
            value[chosen] = -np.inf
            chosen.append(int(np.argmax(value)))
        return [candidates[i] for i in chosen]

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | os.PathLike) -> Path:
        """Write the store to ``directory`` atomically (see the module docstring). Returns the directory."""
        directory = Path(directory)
        with self._save_lock:
            with self._lock:
                snapshot = self._snapshot()
            directory.mkdir(parents=True, exist_ok=True)
            if not directory.is_dir() or directory.is_symlink():
                raise ValueError(f"{directory} is not a directory")
            _write_snapshot(directory, *snapshot)
        return directory

    def _snapshot(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Everything to save, copied under the lock: (records JSON document, arrays)."""
        arrays: dict[str, np.ndarray] = {}
        streams = []
        for n, (sid, stream) in enumerate(self._streams.items()):
            labels = stream.index.labels()
            ids = [self._ids_by_label[int(label)] for label in labels]
            order = np.argsort([self._entries[i].position for i in ids], kind="stable")
            ids, labels = [ids[i] for i in order], labels[order]
            arrays[f"{n}/vectors"] = stream.index.vectors(labels)
            doc = {
                "id": sid,
                "length": stream.length,
                "records": [
                    {"id": i, "position": e.position, "text": e.text, "metadata": e.metadata}
                    for i in ids
                    for e in [self._entries[i]]
                ],
            }
            if stream.memory is not None:
                state = stream.memory.state_dict()
                arrays[f"{n}/memory"] = state["memory"].float().numpy()
                arrays[f"{n}/chunk_memory"] = state["chunk_memory"].float().numpy()
                doc["memory"] = state["meta"]
            streams.append(doc)
        header = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "mode": self.mode,
            "model": self.model.fingerprint() if self.model is not None else None,
            "embedder": None if self.model is not None else type(self.embeddings).__name__,
            "dim": self.dim,
            "index": {"kind": self.index_kind, "hnsw_threshold": self.hnsw_threshold},
            "entries": len(self._entries),
        }
        return {"header": header, "streams": streams}, arrays

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike,
        model: EvoEmbeddingModel | str | os.PathLike | None = None,
        *,
        embeddings=None,
        index: str | None = None,
        query_memory: bool = True,
        hybrid: bool = False,
    ) -> "EvoStore":
        """Load a store saved by :meth:`save`, verifying it first (nothing in it is ever executed).

        EvoEmbedding stores need the same model that wrote them (default: the shipped model); plain
        stores need ``embeddings=``. Raises ``FileNotFoundError``, :class:`CorruptStoreError` or
        :class:`ModelMismatchError`.
        """
        manifest, records, arrays = _read_verified(Path(directory))
        header = records.get("header") if isinstance(records, dict) else None
        if not isinstance(header, dict) or header.get("mode") != manifest["mode"]:
            raise CorruptStoreError("records file header does not match the manifest")
        if manifest["mode"] == "plain" and embeddings is None:
            raise ModelMismatchError(
                f"this store was built with plain embeddings ({manifest.get('embedder')}): pass embeddings="
            )
        if manifest["mode"] == "evo" and embeddings is not None:
            raise ModelMismatchError("this store was built with an EvoEmbedding model: pass model=, not embeddings=")
        options = _manifest_field(manifest, "index", dict)
        kind, threshold = index or options.get("kind"), options.get("hnsw_threshold")
        if (
            kind not in ("flat", "hnsw")
            or not isinstance(threshold, int)
            or isinstance(threshold, bool)
            or threshold < 1
        ):
            raise CorruptStoreError(f"manifest index options are invalid: {options!r}")
        store = cls(
            model if manifest["mode"] == "evo" else None,
            embeddings=embeddings,
            index=kind,
            hnsw_threshold=threshold,
            query_memory=query_memory,
            hybrid=hybrid,
        )
        if store.model is not None and manifest.get("model") != store.model.fingerprint():
            raise ModelMismatchError(
                "this store was written by a different model (fingerprint mismatch): load it with the model "
                "that built it, or re-embed the texts with this one"
            )
        store._restore(manifest, records, arrays)
        return store

    def _restore(self, manifest: dict, records: dict, arrays: dict[str, np.ndarray]) -> None:
        dim = manifest.get("dim")
        if dim is not None and (not isinstance(dim, int) or isinstance(dim, bool) or dim < 1):
            raise CorruptStoreError(f"bad dimension {dim!r}")
        if self.model is not None and dim not in (None, self.dim):
            raise ModelMismatchError(f"store holds {dim}-d vectors, the model makes {self.dim}-d ones")
        self.dim = dim
        streams = records.get("streams")
        if not isinstance(streams, list):
            raise CorruptStoreError("records file has no list of streams")
        expected_arrays = set()
        for n, doc in enumerate(streams):
            try:
                self._restore_stream(n, doc, arrays)
            except (KeyError, TypeError, ValueError) as exc:
                raise CorruptStoreError(f"stream #{n} is invalid: {exc}") from None
            expected_arrays |= {f"{n}/vectors"} | ({f"{n}/memory", f"{n}/chunk_memory"} if self.model else set())
        if set(arrays) != expected_arrays:
            raise CorruptStoreError(f"unexpected or missing arrays: {sorted(set(arrays) ^ expected_arrays)[:5]}")
        if manifest.get("entries") != len(self._entries):
            raise CorruptStoreError(
                f"manifest counts {manifest.get('entries')!r} entries, the records hold {len(self)}"
            )

    def _restore_stream(self, n: int, doc: dict, arrays: dict[str, np.ndarray]) -> None:
        sid = _validate_id(doc["id"], "stream id")
        if sid in self._streams:
            raise ValueError(f"duplicate stream id {sid!r}")
        length, items = doc["length"], doc["records"]
        if not isinstance(length, int) or isinstance(length, bool) or length < 0 or not isinstance(items, list):
            raise ValueError("length must be a non-negative integer and records a list")
        vectors = arrays[f"{n}/vectors"]
        if vectors.dtype != np.float32 or vectors.ndim != 2 or vectors.shape[0] != len(items):
            raise ValueError(f"vectors must be float32 (n={len(items)}, d), got {vectors.dtype} {vectors.shape}")
        if items and (vectors.shape[1] != self.dim or not np.isfinite(vectors).all()):
            raise ValueError(f"vectors must be finite and {self.dim}-d")
        if items and not np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3):
            raise ValueError("stored vectors are not unit-length")
        stream = self._new_stream()
        stream.length = length
        if self.model is not None:
            state = {
                "memory": torch.from_numpy(arrays[f"{n}/memory"].copy()),
                "chunk_memory": torch.from_numpy(arrays[f"{n}/chunk_memory"].copy()),
                "meta": doc["memory"],
            }
            if not isinstance(state["meta"], dict) or state["meta"].get("length") != length:
                raise ValueError("memory state length differs from the stream length")
            stream.memory.load_state_dict(state)
        seen_positions = set()
        for item in items:
            id_, position = _validate_id(item["id"], "record id"), item["position"]
            text = validate_texts([item["text"]], "record text")[0]
            if id_ in self._entries:
                raise ValueError(f"duplicate record id {id_!r}")
            if not isinstance(position, int) or isinstance(position, bool) or not 0 <= position < length:
                raise ValueError(f"record {id_!r} has position {position!r} outside the stream (length {length})")
            if position in seen_positions:
                raise ValueError(f"two records at position {position}")
            seen_positions.add(position)
            metadata = item["metadata"]
            if not isinstance(metadata, dict):
                raise ValueError(f"record {id_!r} metadata is not an object")
            self._entries[id_] = _Entry(text, metadata, sid, position, self._next_label)
            self._ids_by_label[self._next_label] = id_
            self._next_label += 1
        if items:
            labels = np.arange(self._next_label - len(items), self._next_label, dtype=np.int64)
            stream.index.add(labels, vectors)
        self._streams[sid] = stream


# ---------------------------------------------------------------------------------------- files
def _manifest_field(manifest: dict, key: str, kind: type):
    value = manifest.get(key)
    if not isinstance(value, kind):
        raise CorruptStoreError(f"manifest field {key!r} is missing or not a {kind.__name__}")
    return value


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_new(path: Path, data: bytes) -> None:
    """Create ``path`` (never following or overwriting anything), write and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _write_snapshot(directory: Path, records: dict, arrays: dict[str, np.ndarray]) -> None:
    save_id = uuid.uuid4().hex
    blobs = {
        f"records-{save_id}.json": json.dumps(records, ensure_ascii=True, allow_nan=False).encode(),
        f"arrays-{save_id}.safetensors": save_arrays({k: np.ascontiguousarray(v) for k, v in arrays.items()}),
    }
    header = records["header"]
    manifest = {
        **header,
        "files": {
            name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()} for name, data in blobs.items()
        },
    }
    for name, data in blobs.items():
        _write_new(directory / name, data)
    tmp = directory / f".tmp-{save_id}"
    _write_new(tmp, json.dumps(manifest, indent=1, ensure_ascii=True).encode())
    _fsync_dir(directory)
    os.replace(tmp, directory / MANIFEST)  # the commit point
    _fsync_dir(directory)
    for entry in os.scandir(directory):
        if (_DATA_FILE.match(entry.name) and entry.name not in blobs) or _TMP_FILE.match(entry.name):
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                pass


def _read_file(directory: Path, name: str, limit: int | None = None) -> bytes:
    """Bytes of a regular file directly in ``directory`` (no symlinks, optional size limit)."""
    path = directory / name
    try:
        # O_NONBLOCK: a planted FIFO must not hang the open (no effect on regular files).
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:  # ELOOP: a symlink
        raise CorruptStoreError(f"{name}: cannot open safely ({exc.strerror}); symlinks are refused") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):  # checked before fdopen, which raises IsADirectoryError on a directory
        os.close(fd)
        raise CorruptStoreError(f"{name} is not a regular file")
    with os.fdopen(fd, "rb") as handle:
        if limit is not None and info.st_size > limit:
            raise CorruptStoreError(f"{name} is {info.st_size} bytes, over the {limit}-byte limit")
        return handle.read(info.st_size if limit is None else min(info.st_size, limit) + 1)  # never a declared size


def _read_verified(directory: Path) -> tuple[dict, dict, dict[str, np.ndarray]]:
    """The manifest, records document and arrays of a saved store, each checked before it is parsed."""
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a directory")
    if not (directory / MANIFEST).exists() and not (directory / MANIFEST).is_symlink():
        raise FileNotFoundError(f"{directory} has no {MANIFEST}: not a saved EvoStore")
    manifest = _parse_json(_read_file(directory, MANIFEST, MAX_MANIFEST_BYTES), MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CorruptStoreError(f"{MANIFEST} is not an {FORMAT} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CorruptStoreError(
            f"unsupported store format_version {manifest.get('format_version')!r} (this version reads {FORMAT_VERSION})"
        )
    if manifest.get("mode") not in ("evo", "plain"):
        raise CorruptStoreError(f"unknown store mode {manifest.get('mode')!r}")
    files = _manifest_field(manifest, "files", dict)
    names = {m.group(1): name for name in files if (m := _DATA_FILE.match(str(name)))}
    if set(names) != {"records", "arrays"} or len(files) != 2:
        raise CorruptStoreError(
            f"manifest must list one records and one arrays file, got {sorted(map(str, files))[:4]}"
        )
    blobs = {}
    for kind, name in names.items():
        spec = files[name]
        size, digest = (spec.get("size"), spec.get("sha256")) if isinstance(spec, dict) else (None, None)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 or not isinstance(digest, str):
            raise CorruptStoreError(f"manifest entry for {name} needs an integer size and a sha256")
        try:
            data = _read_file(directory, name, size)
        except FileNotFoundError:
            raise CorruptStoreError(f"{name} is listed in the manifest but missing") from None
        if len(data) != size:
            raise CorruptStoreError(f"{name} is {len(data)} bytes, the manifest says {size} (truncated or replaced)")
        if hashlib.sha256(data).hexdigest() != digest:
            raise CorruptStoreError(f"{name} fails its sha256 checksum (corrupted or modified)")
        blobs[kind] = data
    records = _parse_json(blobs["records"], names["records"])
    try:
        arrays = load_arrays(blobs["arrays"])
    except (SafetensorError, ValueError, TypeError) as exc:
        raise CorruptStoreError(f"{names['arrays']} is not a valid safetensors file ({exc})") from None
    return manifest, records, arrays


def _parse_json(data: bytes, name: str):
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CorruptStoreError(f"{name} is not valid JSON ({type(exc).__name__}: {str(exc)[:100]})") from None


def _reject_constant(name: str):
    raise ValueError(f"non-finite number {name}")


def _finite_float(text: str) -> float:
    """A JSON float, refusing ones that overflow to inf (``1e999``): they could never be saved again."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"non-finite number {text[:20]}")
    return value
