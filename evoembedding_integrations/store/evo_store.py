"""EvoStore: many streams of texts, each read with its own memory, searchable and persistent."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from evoembedding_core.splitting import check_long_texts
from evoembedding_core.validation import (
    check_bool,
    check_choice,
    check_number,
    check_positive_int,
    validate_id,
    validate_ids,
    validate_texts,
)

from .. import defaults
from .backend import Backend, Change, MemoryBackend
from .encoders import make_encoder
from .filters import compile_filter
from .hybrid import FUSION_DEPTH, fuse
from .index import INDEX_KINDS, VectorIndex, mmr_select, query_vector
from .persistence import Persistence
from .records import (
    Hit,
    Record,
    new_ids,
    per_text_metadata,
    per_text_streams,
    stream_id_list,
)
from .state import StoreState, Stream, StreamTable
from .writing import StreamGuards, embed_in_chunks, reporter

if TYPE_CHECKING:
    from evoembedding_core import EvoEmbeddingModel, EvoStream

DEFAULT_STREAM = "default"


class EvoStore(Persistence):
    """Streams of texts with context-aware vectors, searchable and persistent.

    A store holds any number of **streams** (a conversation, a user, a document). Texts added to a
    stream are read by that stream's memory in order, so each vector depends on what came before
    it in the same stream; every entry keeps its id, stream, position, text and JSON metadata.
    Deleting an entry removes its vector and text, but the stream's memory is not rewound.

    Scores are fusion scores with hybrid search (the default) and cosine similarities without it;
    higher is better. All methods are thread-safe.

    >>> store = EvoStore()                                                 # doctest: +SKIP
    >>> store.add(["Ana: I grew up in Porto.", "Ana: Last year I moved to Oslo."], stream_id="ana")
    >>> store.search("Where does Ana live now?", k=1)[0].text               # doctest: +SKIP

    Args:
        model: An ``EvoEmbeddingModel``, a model name or directory, or ``None`` for the shipped
            default model (loaded once per process).
        embeddings: Instead of a model, any plain embedder (a LangChain ``Embeddings`` or a
            callable ``texts -> (n, d) vectors``): a plain FAISS store, streams without memory.
        index: ``"flat"`` (exact search) or ``"hnsw"`` (approximate for streams of at least
            ``hnsw_threshold`` vectors; filtered searches stay exact).
        hnsw_threshold: See ``index``.
        query_memory: Read queries over each searched stream's memory (default ``False``: over an
            empty memory, better for questions about any point of a long, finished history).
        hybrid: Make :meth:`search` fuse the vector ranking with BM25 over the texts (reciprocal
            rank fusion of the best ``max(k, 100)`` of each; the default); hits then carry the
            fused score. ``query_memory=True, hybrid=False`` is the method as specified; the
            defaults are the best setting measured (:mod:`evoembedding_integrations.defaults`).
        path: A directory: the store is **durable** there (an SQLite database, created if
            missing; a snapshot saved there is imported): every mutating call is committed before
            it returns, and each call first catches up with what other processes committed.
            ``None``: in memory (persist with :meth:`save`).
        check_embedder: With ``path``, check that a plain store's embedder is the one that wrote
            it (``False``: skip, when you know it is).
        lexical_scope: Whose word statistics hybrid search's BM25 uses: ``"store"`` (all texts:
            streams are documents of one corpus) or ``"stream"`` (each stream its own: streams are
            tenants, and one tenant's writes never change another's scores; what
            ``EvoAgentMemory`` uses, one stream per user).
        long_texts: A text over the model's segment limit: ``"truncate"`` (the default, with a
            warning: its first tokens are read) or ``"split"`` (read as consecutive segments of its
            stream; the entry keeps the normalised mean of their vectors).

    Raises:
        TypeError: A flag is not a bool, or ``embeddings`` is not an embedder.
        ValueError: Both ``model`` and ``embeddings``, an unknown ``index`` or ``long_texts``, a bad
            ``hnsw_threshold``.
    """

    def __init__(
        self,
        model: EvoEmbeddingModel | str | os.PathLike | None = None,
        *,
        embeddings=None,
        index: str = "flat",
        hnsw_threshold: int = 10_000,
        query_memory: bool = defaults.QUERY_MEMORY,
        hybrid: bool = defaults.HYBRID,
        path: str | os.PathLike | None = None,
        check_embedder: bool = True,
        lexical_scope: str = "store",
        long_texts: str = defaults.LONG_TEXTS,
    ) -> None:
        check_bool(query_memory, "query_memory")
        check_bool(check_embedder, "check_embedder")
        check_choice(lexical_scope, "lexical_scope", ("store", "stream"))
        check_bool(hybrid, "hybrid")
        check_choice(index, "index", INDEX_KINDS)
        check_positive_int(hnsw_threshold, "hnsw_threshold")
        self.long_texts = check_long_texts(long_texts)  # checked in plain mode too
        self._encoder = make_encoder(model, embeddings, self.long_texts)
        self.model, self.embeddings = self._encoder.model, self._encoder.embeddings
        self.index_kind, self.hnsw_threshold = index, hnsw_threshold
        self.query_memory, self.hybrid = query_memory, hybrid
        self.dim: int | None = self._encoder.dim
        self._use_state(StoreState(self._new_stream, lexical_scope))
        self.lexical_scope = lexical_scope
        self._backend: Backend = MemoryBackend()
        self._lock = threading.RLock()
        self._save_lock = threading.Lock()
        self._guards = StreamGuards()
        self.path: Path | None = None
        if path is not None:
            self._attach(Path(path), check_embedder)

    # ------------------------------------------------------------------ basics
    @property
    def mode(self) -> str:
        """``"evo"`` (context-aware, per-stream memory) or ``"plain"`` (any embedder, no memory)."""
        return self._encoder.mode

    def __len__(self) -> int:
        with self._lock:
            self._sync()
            return len(self._entries)

    def __contains__(self, id_) -> bool:
        with self._lock:
            self._sync()
            return isinstance(id_, str) and id_ in self._entries

    def __repr__(self) -> str:
        where = f", path={str(self.path)!r}" if self.path is not None else ""
        return (
            f"EvoStore(mode={self.mode}, streams={len(self._streams)}, entries={len(self._entries)}, "
            f"index={self.index_kind}{where})"
        )

    def streams(self) -> list[str]:
        """Stream ids, in creation order."""
        with self._lock:
            self._sync()
            return list(self._streams)

    def stream(self, stream_id: str) -> EvoStream:
        """A copy of one stream's reader, memory state included: to inspect, not to add to.

        Raises:
            ValueError: A plain store (no memories).
            KeyError: No such stream.
        """
        stream_id = validate_id(stream_id, "stream_id")
        with self._lock:
            self._sync()
            if self.mode == "plain":
                raise ValueError("a plain store has no stream memories")
            if stream_id not in self._streams:
                raise KeyError(f"no stream {stream_id!r}")
            return self._encoder.copy_memory(self._streams[stream_id].memory)

    def _new_stream(self) -> Stream:
        return Stream(VectorIndex(self.dim, self.index_kind, self.hnsw_threshold), self._encoder.new_memory())

    def _use_state(self, state: StreamTable) -> None:
        """Hold streams and entries in ``state``: a :class:`StoreState` (in memory, the default) or
        one with :class:`StoreState`'s interface whose entries stay in a database (see
        :mod:`.qdrant_search`)."""
        self._state = state
        self._streams, self._entries = state.streams, state.entries  # read-only views

    # ------------------------------------------------------------------ adding
    def add(
        self, texts, *, stream_id: str | Sequence[str] = DEFAULT_STREAM, ids=None, metadatas=None, progress=None
    ) -> list[str]:
        """Append texts to their stream(s), in order. A rejected call changes nothing.

        The texts are embedded outside the store's lock (searches, and adds to other streams, go
        on meanwhile); only the commit holds it. Adds to the same stream are applied in order.

        Args:
            texts: Non-empty strings (one string is one text).
            stream_id: One stream id for all texts, or one per text.
            ids: One id per text (``None`` entries, or ``None`` for all: new UUIDs). Re-adding an
                existing id replaces its text, vector, metadata and stream.
            metadatas: One JSON dict (or ``None``) per text.
            progress: ``None``: a progress bar on stderr for a bulk add when stderr is a terminal;
                ``True`` / ``False``: a bar always / never; a callable: called with ``(done, total)``
                after each step of :data:`~.writing.EMBED_CHUNK` texts.

        Returns:
            The texts' ids.

        Raises:
            TypeError: A bad text, id, stream id, metadata or ``progress`` type.
            ValueError: Blank texts, counts that differ from the texts', duplicate ids, metadata
                nested too deeply or too large.
            OSError: A durable store's database refused the write (nothing was changed).
        """
        texts = validate_texts(texts)
        n = len(texts)
        stream_of = per_text_streams(stream_id, n)
        ids = new_ids(ids, n)
        metadatas = per_text_metadata(metadatas, n)
        if not texts:
            return []
        with reporter(progress, n) as report, self._guards.hold(stream_of):
            while not self._add_once(texts, stream_of, ids, metadatas, report):
                pass  # a stream changed while its texts were embedded: read them again
        return ids

    def _add_once(self, texts, stream_of, ids, metadatas, report) -> bool:
        """Embed (outside the lock) and commit an add; ``False``: a stream it reads changed meanwhile."""
        with self._lock:
            self._sync()
            seen = {sid: self._state.version(sid) for sid in dict.fromkeys(stream_of)}
            current = {sid: self._streams[sid].memory for sid in seen if sid in self._streams}
            dim = self.dim
        evo = self.mode == "evo"
        vectors, memories = embed_in_chunks(self._encoder, texts, stream_of, current, dim, report, chunked=evo)
        stale = False

        def plan():
            nonlocal stale
            if evo and any(self._state.version(sid) != v for sid, v in seen.items()):
                stale = True  # another process, a delete_stream or a clear changed a stream's memory
                return None
            if self.dim is not None and vectors.shape[1] != self.dim:
                raise ValueError(f"document vectors have dimension {vectors.shape[1]}, the store holds {self.dim}-d")
            return self._state.plan_add(texts, stream_of, ids, metadatas, vectors, memories)

        with self._lock:
            self._commit(plan)
        return not stale

    # ------------------------------------------------------------------ reading
    def get(self, ids) -> list[Record]:
        """Records of the given ids, in that order; missing ids are skipped.

        Raises:
            TypeError: ``ids`` is not an id or a list of ids.
        """
        ids = validate_ids(ids)
        with self._lock:
            self._sync()
            return self._state.records(ids)

    def ids(self, stream_ids=None) -> list[str]:
        """Ids of all entries (or of some streams), stream by stream in creation order, by position.

        Args:
            stream_ids: One stream id, several, or ``None`` for all.
        """
        wanted = stream_id_list(stream_ids)
        with self._lock:
            self._sync()
            return self._state.ids(wanted)

    def vectors(self, ids) -> np.ndarray:
        """Stored vectors of the given ids: (n, d) float32.

        Raises:
            KeyError: An id is not in the store.
        """
        ids = validate_ids(ids)
        with self._lock:
            self._sync()
            found = set(self._state.present(ids))
            missing = [i for i in ids if i not in found]
            if missing:
                raise KeyError(f"unknown ids: {missing[:5]}")
            return self._state.vectors(ids, self.dim or 0)

    # ------------------------------------------------------------------ deleting
    def delete(self, ids) -> int:
        """Remove entries (vector and text); missing ids are ignored. Streams' memories are not rewound.

        Returns:
            How many entries were removed.
        """
        ids = validate_ids(ids)
        removed = 0

        def plan():
            nonlocal removed
            present = tuple(self._state.present(ids))
            removed = len(present)
            return Change(removed=present) if present else None

        with self._lock:
            self._commit(plan)
        return removed

    def delete_stream(self, stream_id: str) -> bool:
        """Remove a stream, its entries and its memory.

        Returns:
            Whether the stream existed.
        """
        stream_id = validate_id(stream_id, "stream_id")
        existed = False

        def plan():
            nonlocal existed
            existed = stream_id in self._streams
            if not existed:
                return None
            removed = tuple(self._state.ids([stream_id]))
            return Change(removed=removed, dropped_streams=(stream_id,))

        with self._lock:
            self._commit(plan)
        return existed

    def clear(self) -> None:
        """Remove every stream and entry."""
        with self._lock:
            self._commit(lambda: Change(cleared=True))

    # ------------------------------------------------------------------ searching
    def encode_query(self, query: str, stream_id: str = DEFAULT_STREAM) -> np.ndarray:
        """The query's vector read over one stream's memory.

        Args:
            query: The query text.
            stream_id: The stream (a new one, or ``query_memory=False``: an empty memory).

        Returns:
            A unit vector (d,).
        """
        query = validate_id(query, "query")
        stream_id = validate_id(stream_id, "stream_id")
        with self._lock:
            self._sync()
            stream = self._streams.get(stream_id)
            memory = stream.memory if stream is not None else None
            return self._encoder.encode_query(query, memory, use_memory=self.query_memory, dim=self.dim)

    def search(self, query: str, *, k: int = 4, stream_ids=None, filter=None, hybrid: bool | None = None) -> list[Hit]:
        """The ``k`` best entries for a query, best first.

        The query is read over each searched stream's memory (one batched forward pass) and
        searched in that stream's vectors only; results are merged by score.

        Args:
            query: The query text.
            k: How many hits at most.
            stream_ids: One stream id, several, or ``None`` for all (unknown streams add nothing).
            filter: A metadata filter (see :mod:`.filters`) or a callable ``metadata -> bool``.
            hybrid: Fuse with BM25 (``None``: the store's setting); hits then carry the fused score.

        Returns:
            Hits, best first.

        Raises:
            TypeError: A bad query, stream id, ``hybrid`` or filter type.
            ValueError: A bad ``k`` or filter.
        """
        query = validate_id(query, "query")
        k, predicate = check_positive_int(k, "k"), compile_filter(filter)
        check_bool(hybrid, "hybrid", optional=True)
        with self._lock:
            self._sync()
            sids = self._state.searchable(stream_id_list(stream_ids))
            if not sids:
                return []
            queries = self._query_vectors(query, sids)
            if not (self.hybrid if hybrid is None else hybrid):
                return self._state.search(queries, sids, k, predicate)
            depth = max(k, FUSION_DEPTH)
            dense = [h.id for h in self._state.search(queries, sids, depth, predicate)]
            fused = fuse(dense, self._state.lexical_search(query, sids, predicate, depth), k)
            return self._state.records([id_ for id_, _ in fused], [score for _, score in fused])

    def search_by_vector(self, vector, *, k: int = 4, stream_ids=None, filter=None) -> list[Hit]:
        """The ``k`` best entries for a given query vector (normalised here); see :meth:`search`.

        Raises:
            ValueError: Not one finite, non-zero vector of the store's dimension; a bad ``k`` or filter.
        """
        k, predicate = check_positive_int(k, "k"), compile_filter(filter)
        with self._lock:
            self._sync()
            vector = query_vector(vector, self.dim)
            sids = self._state.searchable(stream_id_list(stream_ids))
            if not sids:
                return []
            return self._state.search(np.repeat(vector[None], len(sids), axis=0), sids, k, predicate)

    def mmr_search(
        self, query: str, *, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, stream_ids=None, filter=None
    ) -> list[Hit]:
        """Maximal marginal relevance: the ``fetch_k`` best candidates, then ``k`` relevant and diverse ones.

        Args:
            query: The query text.
            k: How many hits at most.
            fetch_k: How many candidates to choose from.
            lambda_mult: 1 ranks by relevance only, 0 by diversity only.
            stream_ids: As in :meth:`search`.
            filter: As in :meth:`search`.

        Returns:
            Hits in the order chosen, each with its similarity score.
        """
        query = validate_id(query, "query")
        options = _mmr_options(k, fetch_k, lambda_mult, filter)
        with self._lock:
            self._sync()
            sids = self._state.searchable(stream_id_list(stream_ids))
            return self._mmr(self._query_vectors(query, sids) if sids else None, sids, *options)

    def mmr_search_by_vector(
        self, vector, *, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, stream_ids=None, filter=None
    ) -> list[Hit]:
        """:meth:`mmr_search` for a given query vector."""
        options = _mmr_options(k, fetch_k, lambda_mult, filter)
        with self._lock:
            self._sync()
            vector = query_vector(vector, self.dim)
            sids = self._state.searchable(stream_id_list(stream_ids))
            return self._mmr(np.repeat(vector[None], len(sids), axis=0), sids, *options)

    def _query_vectors(self, query: str, sids: list[str]) -> np.ndarray:
        """One query vector per stream: (S, d)."""
        memories = self._state.memories(sids) if self.query_memory else [None] * len(sids)
        return self._encoder.query_vectors(query, memories, use_memory=self.query_memory, dim=self.dim)

    def _mmr(self, queries, sids, k, fetch_k, lambda_mult, predicate) -> list[Hit]:
        if not sids:
            return []
        candidates = self._state.search(queries, sids, max(k, fetch_k), predicate)
        if not candidates:
            return []
        vectors = self.vectors([h.id for h in candidates])
        chosen = mmr_select(np.array([h.score for h in candidates]), vectors, k, lambda_mult)
        return [candidates[i] for i in chosen]


# ---------------------------------------------------------------------------------------- arguments
def _mmr_options(k, fetch_k, lambda_mult, filter) -> tuple:
    k, fetch_k, predicate = check_positive_int(k, "k"), check_positive_int(fetch_k, "fetch_k"), compile_filter(filter)
    lambda_mult = check_number(lambda_mult, "lambda_mult", minimum=0, maximum=1)
    return k, fetch_k, float(lambda_mult), predicate
