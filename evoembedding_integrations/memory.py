"""EvoAgentMemory: a persistent, thread-safe agent memory on :class:`~.store.EvoStore`, shaped like mem0's ``Memory``.

>>> memory = EvoAgentMemory("./agent-memory")                                   # doctest: +SKIP
>>> memory.add([{"role": "user", "content": "I moved to Oslo."}], user_id="ana", session_id="s1")
>>> memory.search("Where does Ana live?", user_id="ana", k=3)[0]["memory"]       # doctest: +SKIP
'User: I moved to Oslo.'

Design decisions:

* **One stream per user.** Everything a user says, across all sessions, is read in order by that
  user's stream, so a memory's vector depends on the user's earlier history (sessions follow each
  other like the dated sessions of a long conversation). ``session_id`` is kept as metadata and
  narrows ``search`` / ``get_all`` / ``delete_all`` by filter. ``user_id`` defaults to ``"default"``.
* **Entries.** A string is one memory; a list of strings is several; chat messages
  (``{"role", "content"}`` dicts) are stored one per message as ``"User: ..."`` / ``"Assistant: ..."``
  (:func:`evoembedding_core.chat.fold_messages` with ``unit="message"``; the message's role is kept
  in the entry). With ``EvoAgentMemory(unit="pair")`` a user message and the assistant reply right
  after it are one entry (``"User: ...\nAssistant: ..."``, role ``"pair"``), the retrieval unit the
  EvoEmbedding paper evaluates with. No LLM extracts facts: what you add is what is stored (mem0's ``infer=False``).
* **Results** are plain dicts with mem0's field names: ``id``, ``memory``, ``user_id``,
  ``session_id``, ``role``, ``metadata``, ``created_at``, ``updated_at`` and, from ``search``,
  ``score`` (cosine, higher is better; the fused score with ``hybrid=True``). ``add`` returns the new ids.
* **Durability.** With a ``path`` (and ``autosave=True``, the default) the memory is a durable
  :class:`~.store.EvoStore` (an SQLite database in that directory, ``docs/storage.md``): every
  mutating call (``add``, ``update``, ``delete``, ``delete_all``, ``reset``) is one transaction,
  committed before it returns, so an acknowledged change survives a crash, and its cost does not
  grow with the memory. Several processes may use one path: each call first catches up with what
  the others committed. A directory saved by an earlier version is imported on first open. With
  ``autosave=False`` the memory is loaded into memory and only :meth:`save` writes (unsaved
  changes are lost on a crash). Without a path nothing is written.
* **Thread safety.** All methods may be called from many threads. Mutations are serialised by one
  lock per store (shared by every ``EvoAgentMemory`` and adapter on that store); searches run
  concurrently with each other under the store's own lock, and texts are embedded outside it.
* **Update** replaces the text and/or the caller's metadata and re-reads the entry at the end of
  its stream (the id, the stream and the reserved fields are kept, ``updated_at`` is refreshed). It
  is the one read-modify-write of the library: the mem0, LightMem and A-MEM adapters call it.
  **Delete** removes the entry, but the stream's memory is not rewound.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

from evoembedding_core.chat import check_unit, fold_messages, message_groups
from evoembedding_core.validation import check_positive_int, validate_id

from . import defaults
from .store import EvoStore, Record, compile_filter
from .store.format import has_manifest
from .store.sqlite_backend import database_path

__all__ = ["DEFAULT_USER", "RESERVED_KEYS", "EvoAgentMemory"]

DEFAULT_USER = "default"
RESERVED_KEYS = ("user_id", "session_id", "role", "created_at", "updated_at")
"""The fields :class:`EvoAgentMemory` manages itself (not accepted in a caller's ``metadata``)."""

TENANTS = {"lexical_scope": "stream"}
"""Users are tenants: each user's (stream's) BM25 statistics are their own."""

_STORE_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_STORE_LOCKS_GUARD = threading.Lock()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def mutation_lock(store: EvoStore) -> threading.RLock:
    """The lock that serialises read-modify-write changes to one store (one per store, shared)."""
    with _STORE_LOCKS_GUARD:
        lock = _STORE_LOCKS.get(store)
        if lock is None:
            lock = _STORE_LOCKS[store] = threading.RLock()
        return lock


PAIR_ROLE = "pair"
"""The role of an entry holding a user message and the assistant's reply (``unit="pair"``)."""


def _entries(messages_or_text, unit: str = "message") -> list[tuple[str, str | None]]:
    """(text, role) pairs from a string, a list of strings, or a list of chat messages (folded by ``unit``)."""
    if isinstance(messages_or_text, str):
        return [(validate_id(messages_or_text, "text"), None)]
    if isinstance(messages_or_text, Mapping):
        messages_or_text = [messages_or_text]
    if not isinstance(messages_or_text, Sequence) or isinstance(messages_or_text, (bytes, bytearray)):
        raise TypeError(
            f"messages must be a string, a list of strings or a list of messages, got {type(messages_or_text).__name__}"
        )
    if not messages_or_text:
        raise ValueError("messages is empty: nothing to remember")
    if all(isinstance(item, Mapping) for item in messages_or_text):
        segments = fold_messages(messages_or_text, unit=unit)
        groups = message_groups(messages_or_text, unit=unit)
        return [
            (segment, messages_or_text[group[0]]["role"] if len(group) == 1 else PAIR_ROLE)
            for segment, group in zip(segments, groups)
        ]
    out = []
    for i, item in enumerate(messages_or_text):
        if isinstance(item, str):
            out.append((validate_id(item, f"messages[{i}]"), None))
        elif isinstance(item, Mapping):
            try:
                (segment,) = fold_messages([item], unit="message")
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"messages[{i}]: {exc}") from None
            out.append((segment, item["role"]))
        else:
            raise TypeError(f"messages[{i}] must be a string or a dict with 'role' and 'content'")
    return out


def _user_metadata(metadata, what: str = "metadata") -> dict:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise TypeError(f"{what} must be a dict or None, got {type(metadata).__name__}")
    clash = [k for k in metadata if k in RESERVED_KEYS]
    if clash:
        raise ValueError(f"{what} uses reserved keys {clash}: pass user_id / session_id as arguments")
    return dict(metadata)


class EvoAgentMemory:
    """Long-term memory for agents: add, search, get, update, delete (see the module docstring).

    Example:
        >>> memory = EvoAgentMemory("./agent-memory")                                # doctest: +SKIP
        >>> memory.add("I moved to Oslo.", user_id="ana")                            # doctest: +SKIP
        >>> memory.search("Where does Ana live?", user_id="ana", k=1)                # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        model=None,
        *,
        store: EvoStore | None = None,
        autosave: bool = True,
        unit: str = "message",
        query_memory: bool = defaults.QUERY_MEMORY,
        hybrid: bool = defaults.HYBRID,
    ) -> None:
        """Open (or create) a memory.

        Args:
            path: The directory the memory lives in (``None``: in memory only): a durable store
                (with ``autosave``), created if missing; a directory saved by an earlier version
                is imported.
            model: An ``EvoEmbeddingModel``, a name or path, or ``None`` for the shipped default.
            store: An existing :class:`EvoStore` to use as is (not with ``path`` or ``model``); how
                the agent-memory adapters share one store.
            autosave: With a ``path``, commit every change before the call returns (``False``:
                load the memory and write it only on :meth:`save`).
            unit: How :meth:`add` stores chat messages: ``"message"`` (one entry per message) or
                ``"pair"`` (a user message and the assistant reply right after it, one entry).
            query_memory: :class:`EvoStore`'s option: ``False`` (the default) encodes queries over
                an empty memory.
            hybrid: :class:`EvoStore`'s option (default ``True``): fuse the vector ranking with
                BM25. The defaults are the best setting measured for questions about a long
                history (``docs/evaluation.md``).

        Raises:
            ValueError: ``store`` is given with ``path`` or ``model``, or an unknown ``unit``.
            TypeError: ``store`` is not an :class:`EvoStore`, or a store option has the wrong type.
        """
        self.path = Path(path) if path is not None else None
        self.autosave = bool(autosave)
        self.unit = check_unit(unit)
        if store is not None:
            if path is not None or model is not None:
                raise ValueError("pass either store= or path= / model=, not both")
            if not isinstance(store, EvoStore):
                raise TypeError(f"store must be an EvoStore, got {type(store).__name__}")
            self.store = store
        elif self.path is not None and self.autosave:
            self.store = EvoStore(model, query_memory=query_memory, hybrid=hybrid, path=self.path, **TENANTS)
        elif self.path is not None and (database_path(self.path).exists() or has_manifest(self.path)):
            self.store = EvoStore.load(self.path, model, query_memory=query_memory, hybrid=hybrid, **TENANTS)
        else:
            self.store = EvoStore(model, query_memory=query_memory, hybrid=hybrid, **TENANTS)
        self._lock = mutation_lock(self.store)

    def __len__(self) -> int:
        return len(self.store)

    def __repr__(self) -> str:
        return f"EvoAgentMemory(path={self.path}, memories={len(self)}, users={len(self.store.streams())})"

    # ------------------------------------------------------------------ writing
    def add(
        self, messages_or_text, *, user_id: str = DEFAULT_USER, session_id: str | None = None, metadata=None
    ) -> list[str]:
        """Store a text, texts or chat messages at the end of the user's stream, in order.

        Args:
            messages_or_text: A string, a list of strings, or ``{"role", "content"}`` messages
                (one entry per message, or per user message and reply with ``unit="pair"``).
            user_id: The user (one stream per user).
            session_id: Kept as metadata; narrows later searches.
            metadata: The caller's own metadata for every entry (no reserved keys).

        Returns:
            The new entries' ids.

        Raises:
            TypeError: An argument has the wrong type, or ``metadata`` is not JSON.
            ValueError: Nothing to add, an empty text, an unknown role, or a reserved metadata key.
        """
        user_id = validate_id(user_id, "user_id")
        session_id = validate_id(session_id, "session_id", optional=True)
        entries, extra = _entries(messages_or_text, self.unit), _user_metadata(metadata)
        stamp = _now()
        metadatas = [
            {
                **extra,
                "user_id": user_id,
                "session_id": session_id,
                "role": role,
                "created_at": stamp,
                "updated_at": stamp,
            }
            for _, role in entries
        ]
        with self._lock:
            ids = self.store.add([text for text, _ in entries], stream_id=user_id, metadatas=metadatas)
            self._autosave()
        return ids

    def update(self, memory_id: str, text: str | None = None, *, metadata=None) -> dict:
        """Replace a memory's text and/or its metadata; the entry is re-read at the end of its stream.

        The id, the stream and the reserved fields the entry has (``user_id``, ``session_id``,
        ``role``, ``created_at``) are kept; its ``updated_at``, if it has one, becomes now.

        Args:
            memory_id: The entry's id.
            text: The new text (``None``: keep the current one).
            metadata: The caller's new metadata, replacing the old (``None``: keep it); no reserved keys.

        Returns:
            The updated memory, as :meth:`get` returns it.

        Raises:
            KeyError: No memory has this id.
            TypeError: ``memory_id`` or ``text`` is not a string, or ``metadata`` is not a JSON dict.
            ValueError: Neither ``text`` nor ``metadata`` is given, a text is empty, or a reserved key is used.
        """
        memory_id = validate_id(memory_id, "memory_id")
        text = validate_id(text, "text", optional=True)
        new_metadata = None if metadata is None else _user_metadata(metadata)
        if text is None and new_metadata is None:
            raise ValueError("update needs a new text or new metadata")
        with self._lock:
            (old,) = self.store.get([memory_id]) or [None]
            if old is None:
                raise KeyError(f"no memory {memory_id!r}")
            reserved, extra = _split(old.metadata)
            merged = {**(extra if new_metadata is None else new_metadata), **reserved}
            if "updated_at" in merged:
                merged["updated_at"] = _now()
            new_text = old.text if text is None else text
            self.store.add([new_text], stream_id=old.stream_id, ids=[memory_id], metadatas=[merged])
            self._autosave()
            return self._item(self.store.get([memory_id])[0])

    def delete(self, memory_id: str) -> bool:
        """Forget one memory.

        Args:
            memory_id: The entry's id.

        Returns:
            Whether it existed.
        """
        memory_id = validate_id(memory_id, "memory_id")
        with self._lock:
            removed = self.store.delete([memory_id]) > 0
            if removed:
                self._autosave()
            return removed

    def delete_all(self, *, user_id: str, session_id: str | None = None) -> int:
        """Forget all memories of a user, or of one of their sessions.

        Args:
            user_id: The user; without ``session_id`` their whole stream (and its memory) goes.
            session_id: Only this session's entries (the stream's memory is kept).

        Returns:
            How many memories were removed.
        """
        user_id = validate_id(user_id, "user_id")
        session_id = validate_id(session_id, "session_id", optional=True)
        with self._lock:
            if session_id is None:
                count = len(self.store.ids(user_id)) if user_id in self.store.streams() else 0
                self.store.delete_stream(user_id)
            else:
                ids = [r.id for r in self._records(user_id, session_id, None)]
                count = self.store.delete(ids)
            if count:
                self._autosave()
            return count

    def reset(self) -> None:
        """Forget everything (all users, streams and memories)."""
        with self._lock:
            self.store.clear()
            self._autosave()

    def save(self) -> Path:
        """Write the memory to its path now (atomic); needed only with ``autosave=False`` (a durable
        memory has committed everything already).

        Returns:
            The directory written.

        Raises:
            ValueError: The memory has no path.
        """
        if self.path is None:
            raise ValueError("this EvoAgentMemory has no path: create it with EvoAgentMemory(path=...)")
        with self._lock:
            return self.store.save(self.path)

    def _autosave(self) -> None:
        """Nothing to do for a durable store (each call committed); a store given with ``store=``
        is never written here."""

    # ------------------------------------------------------------------ reading
    def search(
        self, query: str, *, user_id: str | None = DEFAULT_USER, session_id: str | None = None, k: int = 5, filters=None
    ) -> list[dict]:
        """The ``k`` memories most relevant to ``query``, best first.

        Args:
            query: The question; encoded against the user's memory.
            user_id: The user (``None``: every user's stream, each with its own memory, merged by score).
            session_id: Only this session's memories.
            k: How many memories to return.
            filters: A metadata filter as for :meth:`EvoStore.search` (equalities, ``$in``, ``$gt``,
                ..., ``$and`` / ``$or``) or a callable.

        Returns:
            Memories as dicts (see the module docstring), each with its ``score``.

        Raises:
            TypeError: An argument has the wrong type.
            ValueError: ``k`` is not a positive integer, or the filter is invalid.
        """
        user_id = validate_id(user_id, "user_id", optional=True)
        hits = self.store.search(query, k=k, stream_ids=user_id, filter=self._filter(session_id, filters))
        return [self._item(hit) for hit in hits]

    def get(self, memory_id: str) -> dict | None:
        """One memory by id, or ``None``."""
        memory_id = validate_id(memory_id, "memory_id")
        records = self.store.get([memory_id])
        return self._item(records[0]) if records else None

    def get_all(
        self,
        *,
        user_id: str | None = DEFAULT_USER,
        session_id: str | None = None,
        filters=None,
        limit: int | None = None,
    ) -> list[dict]:
        """Memories of a user, oldest first, optionally filtered and limited.

        Args:
            user_id: The user (``None``: all users).
            session_id: Only this session's memories.
            filters: A metadata filter, as for :meth:`search`.
            limit: At most this many (``None``: all).

        Returns:
            Memories as dicts.

        Raises:
            ValueError: ``limit`` is not a positive integer or ``None``, or the filter is invalid.
        """
        user_id = validate_id(user_id, "user_id", optional=True)
        limit = check_positive_int(limit, "limit", optional=True)
        return [self._item(r) for r in self._records(user_id, session_id, filters)][:limit]

    def _records(self, user_id, session_id, filters) -> list[Record]:
        predicate = compile_filter(self._filter(session_id, filters))
        records = self.store.get(self.store.ids(user_id))  # ids deleted meanwhile are skipped
        return [r for r in records if predicate is None or predicate(r.metadata)]

    @staticmethod
    def _filter(session_id, filters):
        session_id = validate_id(session_id, "session_id", optional=True)
        if session_id is None:
            return filters
        if filters is None:
            return {"session_id": session_id}
        if callable(filters):
            return lambda metadata: metadata.get("session_id") == session_id and filters(metadata)
        return {"$and": [{"session_id": session_id}, filters]}

    @staticmethod
    def _item(record: Record) -> dict:
        reserved, extra = _split(record.metadata)
        item = {"id": record.id, "memory": record.text, **{k: reserved.get(k) for k in RESERVED_KEYS}}
        item["metadata"] = extra
        if hasattr(record, "score"):
            item["score"] = record.score
        return item


def _split(metadata: dict) -> tuple[dict, dict]:
    """(the reserved fields the entry has, the caller's own metadata) of a stored entry."""
    reserved = {k: metadata[k] for k in RESERVED_KEYS if k in metadata}
    return reserved, {k: v for k, v in metadata.items() if k not in RESERVED_KEYS}
