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
  (``{"role", "content"}`` dicts) are stored one per message as ``"User: ..."`` / ``"Assistant: ..."``.
  No LLM extracts facts: what you add is what is stored (mem0's ``infer=False``).
* **Results** are plain dicts with mem0's field names: ``id``, ``memory``, ``user_id``,
  ``session_id``, ``role``, ``metadata``, ``created_at``, ``updated_at`` and, from ``search``,
  ``score`` (cosine, higher is better; the fused score with ``hybrid=True``). ``add`` returns the new ids.
* **Durability.** With a ``path``, every mutating call (``add``, ``update``, ``delete``,
  ``delete_all``, ``reset``) saves the store atomically before it returns (``autosave=True``), so an
  acknowledged change survives a crash; with ``autosave=False`` only :meth:`save` writes (faster for
  bulk loads; unsaved changes are lost on a crash). Without a path nothing is written.
* **Thread safety.** All methods may be called from many threads. Mutations (and their saves) are
  serialised by one lock; searches run concurrently with each other under the store's own lock.
* **Update** replaces the text and re-embeds it at the end of the user's stream (the id and
  ``created_at`` are kept); **delete** removes the entry, but the stream's memory is not rewound.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

from evoembedding_core.stream import validate_texts

from .store import MANIFEST, EvoStore, Record, compile_filter

DEFAULT_USER = "default"
RESERVED_KEYS = ("user_id", "session_id", "role", "created_at", "updated_at")
_ROLES = {"user": "User", "assistant": "Assistant", "system": "System"}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _check_id(value, what: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, got {type(value).__name__}")
    return validate_texts([value], what)[0]


def _entries(messages_or_text) -> list[tuple[str, str | None]]:
    """(text, role) pairs from a string, a list of strings, or a list of chat messages."""
    if isinstance(messages_or_text, str):
        return [(validate_texts([messages_or_text], "text")[0], None)]
    if isinstance(messages_or_text, Mapping):
        messages_or_text = [messages_or_text]
    if not isinstance(messages_or_text, Sequence) or isinstance(messages_or_text, (bytes, bytearray)):
        raise TypeError(
            f"messages must be a string, a list of strings or a list of messages, got {type(messages_or_text).__name__}"
        )
    if not messages_or_text:
        raise ValueError("messages is empty: nothing to remember")
    out = []
    for i, item in enumerate(messages_or_text):
        if isinstance(item, str):
            out.append((validate_texts([item], f"messages[{i}]")[0], None))
            continue
        if not isinstance(item, Mapping) or "role" not in item or "content" not in item:
            raise TypeError(f"messages[{i}] must be a string or a dict with 'role' and 'content'")
        role = item["role"]
        if role not in _ROLES:
            raise ValueError(f"messages[{i}]['role'] must be one of {sorted(_ROLES)}, got {role!r}")
        content = validate_texts([item["content"]], f"messages[{i}]['content']")[0]
        out.append((f"{_ROLES[role]}: {content}", role))
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
    """Long-term memory for agents: add, search, get, update, delete (see the module docstring)."""

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        model=None,
        *,
        autosave: bool = True,
        query_memory: bool = True,
        hybrid: bool = False,
    ) -> None:
        """``query_memory`` and ``hybrid`` are :class:`EvoStore`'s (``query_memory=False, hybrid=True``
        is the best setting measured for questions about a long history; README, "The shipped default model")."""
        self.path = Path(path) if path is not None else None
        self.autosave = bool(autosave)
        options = dict(query_memory=query_memory, hybrid=hybrid)
        if self.path is not None and (self.path / MANIFEST).exists():
            self.store = EvoStore.load(self.path, model, **options)
        else:
            self.store = EvoStore(model, **options)
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return len(self.store)

    def __repr__(self) -> str:
        return f"EvoAgentMemory(path={self.path}, memories={len(self)}, users={len(self.store.streams())})"

    # ------------------------------------------------------------------ writing
    def add(
        self, messages_or_text, *, user_id: str = DEFAULT_USER, session_id: str | None = None, metadata=None
    ) -> list[str]:
        """Store a text, texts or chat messages in the user's stream, in order; returns their ids."""
        user_id = _check_id(user_id, "user_id")
        session_id = _check_id(session_id, "session_id", optional=True)
        entries, extra = _entries(messages_or_text), _user_metadata(metadata)
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

    def update(self, memory_id: str, text: str, *, metadata=None) -> dict:
        """Replace a memory's text (and, if given, its metadata); ``KeyError`` if it does not exist."""
        memory_id = _check_id(memory_id, "memory_id")
        text = _check_id(text, "text")
        new_metadata = None if metadata is None else _user_metadata(metadata)
        with self._lock:
            (old,) = self.store.get(memory_id) or [None]
            if old is None:
                raise KeyError(f"no memory {memory_id!r}")
            kept = {k: old.metadata[k] for k in RESERVED_KEYS}
            extra = new_metadata if new_metadata is not None else _split(old.metadata)[1]
            merged = {**extra, **kept, "updated_at": _now()}
            self.store.add([text], stream_id=old.stream_id, ids=[memory_id], metadatas=[merged])
            self._autosave()
            return self._item(self.store.get(memory_id)[0])

    def delete(self, memory_id: str) -> bool:
        """Forget one memory; returns whether it existed."""
        memory_id = _check_id(memory_id, "memory_id")
        with self._lock:
            removed = self.store.delete([memory_id]) > 0
            if removed:
                self._autosave()
            return removed

    def delete_all(self, *, user_id: str, session_id: str | None = None) -> int:
        """Forget all memories of a user (or of one of their sessions); returns how many."""
        user_id = _check_id(user_id, "user_id")
        session_id = _check_id(session_id, "session_id", optional=True)
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
        """Write the memory to its path now (atomic); needed only with ``autosave=False``."""
        if self.path is None:
            raise ValueError("this EvoAgentMemory has no path: create it with EvoAgentMemory(path=...)")
        with self._lock:
            return self.store.save(self.path)

    def _autosave(self) -> None:
        if self.path is not None and self.autosave:
            self.store.save(self.path)

    # ------------------------------------------------------------------ reading
    def search(
        self, query: str, *, user_id: str | None = DEFAULT_USER, session_id: str | None = None, k: int = 5, filters=None
    ) -> list[dict]:
        """The ``k`` memories most relevant to ``query``, best first.

        The query is encoded against the user's memory (``user_id=None``: every user's stream, each
        with its own memory, merged by score). ``filters``: metadata filters as in
        :meth:`EvoStore.search` (equalities, ``$in``, ``$gt``, ..., ``$and`` / ``$or``, or a callable).
        """
        user_id = _check_id(user_id, "user_id", optional=True)
        hits = self.store.search(query, k=k, stream_ids=user_id, filter=self._filter(session_id, filters))
        return [self._item(hit) for hit in hits]

    def get(self, memory_id: str) -> dict | None:
        """One memory by id, or ``None``."""
        memory_id = _check_id(memory_id, "memory_id")
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
        """Memories of a user (``None``: all users), oldest first, optionally filtered and limited."""
        user_id = _check_id(user_id, "user_id", optional=True)
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
        return [self._item(r) for r in self._records(user_id, session_id, filters)][:limit]

    def _records(self, user_id, session_id, filters) -> list[Record]:
        predicate = compile_filter(self._filter(session_id, filters))
        records = self.store.get(self.store.ids(user_id))  # ids deleted meanwhile are skipped
        return [r for r in records if predicate is None or predicate(r.metadata)]

    @staticmethod
    def _filter(session_id, filters):
        session_id = _check_id(session_id, "session_id", optional=True)
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
        item = {"id": record.id, "memory": record.text, **reserved, "metadata": extra}
        if hasattr(record, "score"):
            item["score"] = record.score
        return item


def _split(metadata: dict) -> tuple[dict, dict]:
    """(reserved fields, the caller's own metadata) of a stored entry."""
    reserved = {k: metadata.get(k) for k in RESERVED_KEYS}
    return reserved, {k: v for k, v in metadata.items() if k not in RESERVED_KEYS}
