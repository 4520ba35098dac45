"""EvoLangGraphStore: LangGraph's long-term memory store (``BaseStore``) on :class:`EvoStore`.

LangGraph agents (``StateGraph(...).compile(store=...)``, ``create_react_agent(store=...)``) and
langmem's memory tools keep long-term memories in a ``BaseStore``: JSON values under a
hierarchical namespace such as ``("memories", user_id)`` and a key. Here each namespace maps to an
EvoEmbedding **stream** (by default the whole namespace, so one stream per user; ``stream_depth``
groups deeper namespaces into the stream of their first labels), read in the order the memories
were written, so a memory's vector depends on the memories written before it in its stream.

* Values are stored as JSON in the entries' metadata, with the namespace, key, ``created_at`` and
  ``updated_at``; the text embedded is taken from the ``fields`` of the value (like LangGraph's
  ``InMemoryStore``: default ``["$"]``, the whole value as JSON; ``put(..., index=[...])`` picks
  fields per item, ``index=False`` stores the item without a vector).
* ``search(namespace_prefix, query=...)`` ranks the items of every namespace under the prefix by
  similarity (the score is the cosine similarity, or the fused score with ``hybrid=True``);
  without ``query`` it lists them in the order they were first written. ``filter`` matches value
  fields (``{"kind": "pref"}``, ``{"n": {"$gte": 2}}``; operators ``$eq $ne $gt $gte $lt $lte
  $in $nin``).
* ``path=`` makes it durable: the store is loaded from there if saved before, and saved there
  (atomically) after every batch that changes it (``autosave=False``: call :meth:`save`).

>>> from evoembedding_integrations.langgraph import EvoLangGraphStore      # doctest: +SKIP
>>> store = EvoLangGraphStore(path="memories_db", query_memory=False)      # doctest: +SKIP
>>> store.put(("memories", "ana"), "m1", {"content": "Ana moved to Oslo."})  # doctest: +SKIP
>>> store.search(("memories", "ana"), query="Where does Ana live?")[0].value  # doctest: +SKIP

Updating an item re-reads its new text at the end of its stream (a memory stream is a log:
what was written before stays in the stream's memory); deleting removes the item and its vector.
TTLs are not supported (``supports_ttl`` is ``False``).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from langgraph.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    get_text_at_path,
    tokenize_path,
    validate_op_namespace,
)

from .store import MANIFEST, EvoStore, Record

__all__ = ["UNINDEXED_STREAM", "EvoLangGraphStore"]

UNINDEXED_STREAM = ".unindexed"
"""The stream of items stored without a vector (``index=False``, or no text at the fields); no
namespace maps to it, since namespace labels cannot contain a period."""

_LOAD_OPTIONS = ("embeddings", "index", "query_memory", "hybrid")
_FIELDS = ("namespace", "key", "value", "created_at", "updated_at", "indexed")


class EvoLangGraphStore(BaseStore):
    """A LangGraph ``BaseStore`` whose namespaces are EvoEmbedding streams (see the module docstring).

    Example:
        >>> store = EvoLangGraphStore(query_memory=False)                      # doctest: +SKIP
        >>> graph = builder.compile(store=store)                                # doctest: +SKIP
    """

    supports_ttl = False

    def __init__(
        self,
        model: Any = None,
        *,
        store: EvoStore | None = None,
        path: str | os.PathLike | None = None,
        stream_depth: int | None = None,
        fields: Sequence[str] | None = None,
        autosave: bool = True,
        **options: Any,
    ) -> None:
        """Create a store, load it from ``path``, or wrap an existing :class:`EvoStore`.

        Args:
            model: An ``EvoEmbeddingModel``, a model name or directory, or ``None`` for the shipped
                default model.
            store: An existing :class:`EvoStore` to hold the items (other entries in it are ignored).
            path: A directory: loaded if a store was saved there, and saved to after every change
                (with ``autosave``).
            stream_depth: How many leading namespace labels name the stream (``None``: all, one
                stream per namespace; ``1``: ``("memories", user)`` items all share ``"memories"``).
            fields: The value fields to embed (LangGraph path syntax: ``"content"``,
                ``"notes[*].text"``; default ``["$"]``, the whole value as JSON).
            autosave: Save to ``path`` after every batch that changes the store.
            **options: :class:`EvoStore` options (``embeddings``, ``query_memory``, ``hybrid``,
                ``index``, ``hnsw_threshold``).

        Raises:
            ValueError: ``store`` together with ``model``, ``path`` or options; a bad ``stream_depth``.
            TypeError: ``fields`` is not a list of strings.
        """
        if stream_depth is not None and (
            not isinstance(stream_depth, int) or isinstance(stream_depth, bool) or stream_depth < 1
        ):
            raise ValueError(f"stream_depth must be a positive int or None, got {stream_depth!r}")
        fields = ["$"] if fields is None else fields
        if isinstance(fields, str) or not all(isinstance(f, str) and f for f in fields):
            raise TypeError("fields must be a list of non-empty strings")
        self.stream_depth = stream_depth
        self.fields = list(fields)
        self._paths = [(f, f if f == "$" else tokenize_path(f)) for f in self.fields]
        self.path = Path(path) if path is not None else None
        self.autosave = bool(autosave)
        if store is not None:
            if model is not None or path is not None or options:
                raise ValueError("pass an existing store alone, without model, path or options")
        elif self.path is not None and (self.path / MANIFEST).exists():
            load_options = {k: v for k, v in options.items() if k in _LOAD_OPTIONS}
            store = EvoStore.load(self.path, model, **load_options)
        else:
            store = EvoStore(model, **options)
        self.store = store
        self._lock = threading.RLock()
        self._catalog: dict[tuple[str, ...], dict[str, str]] = {}
        for record in store.get(store.ids()):
            if _is_item(record):
                self._catalog.setdefault(tuple(record.metadata["namespace"]), {})[record.metadata["key"]] = record.id

    # ------------------------------------------------------------------ the BaseStore contract
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run operations in order: ``GetOp``, ``PutOp`` (a ``None`` value deletes), ``SearchOp``,
        ``ListNamespacesOp``.

        Consecutive puts are written together (one forward pass per stream; for the same item the
        last one wins); every operation sees the effect of the operations before it.

        Args:
            ops: The operations.

        Returns:
            One result per operation, in order (``None`` for puts).

        Raises:
            InvalidNamespaceError: A namespace label is empty, not a string, or contains a period;
                or a put's namespace is empty or starts with ``"langgraph"``.
            ValueError: An unknown operation.
        """
        ops = list(ops)
        for op in ops:
            validate_op_namespace(op)
            if isinstance(op, PutOp):
                if not op.namespace:
                    raise InvalidNamespaceError("Namespace cannot be empty.")
                if op.namespace[0] == "langgraph":
                    raise InvalidNamespaceError(f'Root label for namespace cannot be "langgraph". Got: {op.namespace}')
            elif not isinstance(op, (GetOp, SearchOp, ListNamespacesOp)):
                raise ValueError(f"Unknown operation type: {type(op)}")
        results: list[Result] = []
        changed = False
        with self._lock:
            n = 0
            while n < len(ops):
                op = ops[n]
                if isinstance(op, PutOp):
                    run = []
                    while n < len(ops) and isinstance(ops[n], PutOp):
                        run.append(ops[n])
                        results.append(None)
                        n += 1
                    self._put(run)
                    changed = True
                    continue
                if isinstance(op, GetOp):
                    results.append(self._get(op.namespace, op.key))
                elif isinstance(op, SearchOp):
                    results.append(self._search(op))
                else:
                    results.append(self._list_namespaces(op))
                n += 1
            if changed and self.autosave and self.path is not None:
                self.store.save(self.path)
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """:meth:`batch` in a worker thread (the event loop is not blocked by the embedding)."""
        return await asyncio.to_thread(self.batch, list(ops))

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Save the store atomically (see :meth:`EvoStore.save`).

        Args:
            path: The directory (default: the ``path`` given at creation).

        Returns:
            The directory.

        Raises:
            ValueError: No ``path`` here or at creation.
        """
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ValueError("no path: pass one here or at creation")
        with self._lock:
            return self.store.save(target)

    def stream_of(self, namespace: tuple[str, ...]) -> str:
        """The stream holding a namespace's items (its first ``stream_depth`` labels joined by ``.``)."""
        labels = namespace if self.stream_depth is None else namespace[: self.stream_depth]
        joined = ".".join(labels)
        return joined if joined.strip() else json.dumps(list(labels))

    # ------------------------------------------------------------------ operations
    def _get(self, namespace: tuple[str, ...], key: str) -> Item | None:
        entry = self._catalog.get(tuple(namespace), {}).get(key)
        records = self.store.get([entry]) if entry is not None else []
        return _item(records[0]) if records else None

    def _put(self, ops: list[PutOp]) -> None:
        final: dict[tuple[tuple[str, ...], str], PutOp] = {}
        for op in ops:
            final[(tuple(op.namespace), op.key)] = op
        gone = [(ns, key) for (ns, key), op in final.items() if op.value is None]
        kept = [op for op in final.values() if op.value is not None]
        existing = {
            (tuple(r.metadata["namespace"]), r.metadata["key"]): r
            for r in self.store.get([_entry_id(op.namespace, op.key) for op in final.values()])
        }
        now = datetime.now(timezone.utc).isoformat()
        texts, streams, ids, metadatas = [], [], [], []
        for op in kept:
            namespace, value = tuple(op.namespace), _json_value(op.value)
            text = self._text(value, op.index)
            previous = existing.get((namespace, op.key))
            texts.append(text if text is not None else json.dumps(value, sort_keys=True, ensure_ascii=False))
            streams.append(self.stream_of(namespace) if text is not None else UNINDEXED_STREAM)
            ids.append(_entry_id(namespace, op.key))
            metadatas.append(
                {
                    "namespace": list(namespace),
                    "key": op.key,
                    "value": value,
                    "created_at": previous.metadata["created_at"] if previous is not None else now,
                    "updated_at": now,
                    "indexed": text is not None,
                }
            )
        removed = [_entry_id(ns, key) for ns, key in gone if (ns, key) in existing]
        if removed:
            self.store.delete(removed)
        if texts:
            self.store.add(texts, stream_id=streams, ids=ids, metadatas=metadatas)
        for ns, key in gone:
            keys = self._catalog.get(ns)
            if keys is not None:
                keys.pop(key, None)
                if not keys:
                    del self._catalog[ns]
        for entry_id, metadata in zip(ids, metadatas):
            self._catalog.setdefault(tuple(metadata["namespace"]), {})[metadata["key"]] = entry_id

    def _text(self, value: dict, index: Any) -> str | None:
        """The text to embed for a value, or ``None`` for no vector."""
        if index is False:
            return None
        paths = self._paths if index is None else [(f, f if f == "$" else tokenize_path(f)) for f in index]
        texts = [t for _, path in paths for t in get_text_at_path(value, path) if t.strip()]
        return "\n".join(texts) if texts else None

    def _namespaces_under(self, prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
        n = len(prefix)
        return [ns for ns in self._catalog if ns[:n] == tuple(prefix)]

    def _search(self, op: SearchOp) -> list[SearchItem]:
        if op.limit <= 0:
            return []
        prefix, wanted = tuple(op.namespace_prefix), op.filter or None
        namespaces = self._namespaces_under(prefix)
        if not namespaces:
            return []
        entry_ids = [e for ns in namespaces for e in self._catalog[ns].values()]
        if not op.query:
            records = [r for r in self.store.get(entry_ids) if _value_matches(r.metadata["value"], wanted)]
            return [_item(r, search=True) for r in records[op.offset : op.offset + op.limit]]
        n = len(prefix)

        def matches(metadata: Mapping) -> bool:
            return (
                metadata.get("indexed") is True
                and tuple(metadata.get("namespace", ()))[:n] == prefix
                and _value_matches(metadata.get("value"), wanted)
            )

        streams = list(dict.fromkeys(self.stream_of(ns) for ns in namespaces))
        hits = self.store.search(op.query, k=op.offset + op.limit, stream_ids=streams, filter=matches)
        found = [_item(h, search=True, score=h.score) for h in hits[op.offset :]]
        if len(found) < op.limit:  # like InMemoryStore: fill up with the items that have no vector
            unscored = [
                r
                for r in self.store.get(entry_ids)
                if not r.metadata["indexed"] and _value_matches(r.metadata["value"], wanted)
            ]
            found += [_item(r, search=True) for r in unscored[: op.limit - len(found)]]
        return found

    def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        namespaces = [ns for ns in self._catalog if all(_namespace_matches(c, ns) for c in (op.match_conditions or ()))]
        if op.max_depth is not None:
            namespaces = {ns[: op.max_depth] for ns in namespaces}
        return sorted(namespaces)[op.offset : op.offset + op.limit]


# ---------------------------------------------------------------------------------------- helpers
def _entry_id(namespace: Sequence[str], key: str) -> str:
    return json.dumps([*namespace, key], ensure_ascii=False)


def _is_item(record: Record) -> bool:
    return all(f in record.metadata for f in _FIELDS) and record.id == _entry_id(
        record.metadata["namespace"], record.metadata["key"]
    )


def _item(record: Record, *, search: bool = False, score: float | None = None) -> Item:
    m = record.metadata
    fields = {
        "namespace": tuple(m["namespace"]),
        "key": m["key"],
        "value": m["value"],
        "created_at": datetime.fromisoformat(m["created_at"]),
        "updated_at": datetime.fromisoformat(m["updated_at"]),
    }
    return SearchItem(**fields, score=score) if search else Item(**fields)


def _json_value(value: Any) -> dict:
    if not isinstance(value, Mapping):
        raise TypeError(f"a store value must be a dict, got {type(value).__name__}")
    try:
        return json.loads(json.dumps(dict(value), allow_nan=False, ensure_ascii=False))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"a store value must be JSON-serialisable: {exc}") from None


def _namespace_matches(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    if condition.match_type == "prefix":
        pairs = zip(namespace, path)
    elif condition.match_type == "suffix":
        pairs = zip(reversed(namespace), reversed(path))
    else:
        raise ValueError(f"Unsupported match type: {condition.match_type}")
    return all(p == "*" or label == p for label, p in pairs)


def _value_matches(value: Any, wanted: Any) -> bool:
    """LangGraph's filter semantics: every key of ``wanted`` matches the value's field."""
    if not wanted:
        return True
    if not isinstance(value, Mapping):
        return False
    return all(_compare(value.get(key), condition) for key, condition in wanted.items())


def _compare(value: Any, condition: Any) -> bool:
    if isinstance(condition, Mapping):
        if any(isinstance(k, str) and k.startswith("$") for k in condition):
            return all(_operator(value, op, arg) for op, arg in condition.items())
        return isinstance(value, Mapping) and all(_compare(value.get(k), v) for k, v in condition.items())
    if isinstance(condition, (list, tuple)):
        return (
            isinstance(value, (list, tuple))
            and len(value) == len(condition)
            and all(_compare(v, c) for v, c in zip(value, condition))
        )
    return value == condition


def _operator(value: Any, op: str, arg: Any) -> bool:
    if op == "$eq":
        return value == arg
    if op == "$ne":
        return value != arg
    if op == "$in":
        return isinstance(arg, (list, tuple)) and value in arg
    if op == "$nin":
        return isinstance(arg, (list, tuple)) and value not in arg
    if op in ("$gt", "$gte", "$lt", "$lte"):
        try:
            a, b = float(value), float(arg)
        except (TypeError, ValueError):
            return False
        return {"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[op]
    raise ValueError(f"Unsupported operator: {op}")
