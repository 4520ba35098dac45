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
* ``path=`` makes it durable: an :class:`EvoStore` database there (created if missing, reopened
  if not) commits every change before the call returns, and each call first catches up with what
  other processes committed, so several workers can share one memory.

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
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

try:
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
except ImportError as exc:  # pragma: no cover - the extra is not installed
    raise ImportError("EvoLangGraphStore needs LangGraph: pip install 'evoembedding[langgraph]'") from exc

from .store import EvoStore, Record

__all__ = ["UNINDEXED_STREAM", "EvoLangGraphStore"]

UNINDEXED_STREAM = ".unindexed"
"""The stream of items stored without a vector (``index=False``, or no text at the fields); no
namespace maps to it, since namespace labels cannot contain a period."""

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
        **options: Any,
    ) -> None:
        """Create a store, open a durable one at ``path``, or wrap an existing :class:`EvoStore`.

        Args:
            model: An ``EvoEmbeddingModel``, a model name or directory, or ``None`` for the shipped
                default model.
            store: An existing :class:`EvoStore` to hold the items (entries that are not items of
                this class are ignored).
            path: A directory for a durable store (created if missing, reopened if not; a snapshot
                saved there is imported). ``None``: in memory (see :meth:`save`).
            stream_depth: How many leading namespace labels name the stream (``None``: all, one
                stream per namespace; ``1``: ``("memories", user)`` items all share ``"memories"``).
            fields: The value fields to embed (LangGraph path syntax: ``"content"``,
                ``"notes[*].text"``; default ``["$"]``, the whole value as JSON).
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
        if store is not None:
            if model is not None or path is not None or options:
                raise ValueError("pass an existing store alone, without model, path or options")
        else:
            store = EvoStore(model, path=path, **options)
        self.store = store

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
        # No lock of its own: the EvoStore is thread-safe, and a search never waits for an add.
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
                continue
            if isinstance(op, GetOp):
                results.append(self._get(op.namespace, op.key))
            elif isinstance(op, SearchOp):
                results.append(self._search(op))
            else:
                results.append(self._list_namespaces(op))
            n += 1
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """:meth:`batch` in a worker thread (the event loop is not blocked by the embedding)."""
        return await asyncio.to_thread(self.batch, list(ops))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the items to ``path`` (see :meth:`EvoStore.save`); open it later with ``EvoLangGraphStore(path=...)``.

        Args:
            path: The directory.

        Returns:
            The directory.
        """
        return self.store.save(path)

    def stream_of(self, namespace: tuple[str, ...]) -> str:
        """The stream holding a namespace's items (its first ``stream_depth`` labels joined by ``.``)."""
        labels = namespace if self.stream_depth is None else namespace[: self.stream_depth]
        joined = ".".join(labels)
        return joined if joined.strip() else json.dumps(list(labels))

    # ------------------------------------------------------------------ operations
    def _get(self, namespace: tuple[str, ...], key: str) -> Item | None:
        records = [r for r in self.store.get([_entry_id(namespace, key)]) if _is_item(r)]
        return _item(records[0]) if records else None

    def _put(self, ops: list[PutOp]) -> None:
        final: dict[tuple[tuple[str, ...], str], PutOp] = {}
        for op in ops:
            final[(tuple(op.namespace), op.key)] = op
        existing = {r.id: r for r in self.store.get([_entry_id(ns, key) for ns, key in final]) if _is_item(r)}
        now = datetime.now(timezone.utc).isoformat()
        texts, streams, ids, metadatas = [], [], [], []
        for (namespace, key), op in final.items():
            if op.value is None:
                continue
            value = _json_value(op.value)
            text = self._text(value, op.index)
            previous = existing.get(_entry_id(namespace, key))
            texts.append(text if text is not None else json.dumps(value, sort_keys=True, ensure_ascii=False))
            streams.append(self.stream_of(namespace) if text is not None else UNINDEXED_STREAM)
            ids.append(_entry_id(namespace, key))
            metadatas.append(
                {
                    "namespace": list(namespace),
                    "key": key,
                    "value": value,
                    "created_at": previous.metadata["created_at"] if previous is not None else now,
                    "updated_at": now,
                    "indexed": text is not None,
                }
            )
        removed = [_entry_id(ns, key) for (ns, key), op in final.items() if op.value is None]
        removed = [i for i in removed if i in existing]
        if removed:
            self.store.delete(removed)
        if texts:
            self.store.add(texts, stream_id=streams, ids=ids, metadatas=metadatas, progress=False)

    def _text(self, value: dict, index: Any) -> str | None:
        """The text to embed for a value, or ``None`` for no vector."""
        if index is False:
            return None
        paths = self._paths if index is None else [(f, f if f == "$" else tokenize_path(f)) for f in index]
        texts = [t for _, path in paths for t in get_text_at_path(value, path) if t.strip()]
        return "\n".join(texts) if texts else None

    def _streams_under(self, prefix: tuple[str, ...]) -> list[str]:
        """The streams that can hold items of namespaces under ``prefix`` (not the unindexed one)."""
        out = []
        for stream_id in self.store.streams():
            labels = _labels_of(stream_id)
            if labels is not None:
                n = min(len(labels), len(prefix))
                if labels[:n] == prefix[:n]:
                    out.append(stream_id)
        return out

    def _items(self, streams: list[str] | None, prefix: tuple[str, ...] = (), wanted: Any = None) -> list[Record]:
        """Item records of these streams under ``prefix`` matching ``wanted``, in the order first written."""
        records = self.store.get(self.store.ids(streams)) if streams is None or streams else []
        n = len(prefix)
        kept = [
            r
            for r in records
            if _is_item(r)
            and tuple(r.metadata["namespace"])[:n] == prefix
            and _value_matches(r.metadata["value"], wanted)
        ]
        return sorted(kept, key=lambda r: r.metadata["created_at"])

    def _search(self, op: SearchOp) -> list[SearchItem]:
        if op.limit <= 0:
            return []
        prefix, wanted = tuple(op.namespace_prefix), op.filter or None
        streams = self._streams_under(prefix)
        unindexed = [UNINDEXED_STREAM] if UNINDEXED_STREAM in self.store.streams() else []
        if not op.query:
            records = self._items(streams + unindexed, prefix, wanted)
            return [_item(r, search=True) for r in records[op.offset : op.offset + op.limit]]
        n = len(prefix)

        def matches(metadata: Mapping) -> bool:
            return (
                metadata.get("indexed") is True
                and tuple(metadata.get("namespace", ()))[:n] == prefix
                and _value_matches(metadata.get("value"), wanted)
            )

        hits = (
            self.store.search(op.query, k=op.offset + op.limit, stream_ids=streams, filter=matches) if streams else []
        )
        found = [_item(h, search=True, score=h.score) for h in hits[op.offset :] if _is_item(h)]
        if len(found) < op.limit and unindexed:  # like InMemoryStore: then the items that have no vector
            found += [_item(r, search=True) for r in self._items(unindexed, prefix, wanted)[: op.limit - len(found)]]
        return found

    def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        namespaces = {tuple(r.metadata["namespace"]) for r in self._items(None)}
        namespaces = [ns for ns in namespaces if all(_namespace_matches(c, ns) for c in (op.match_conditions or ()))]
        if op.max_depth is not None:
            namespaces = {ns[: op.max_depth] for ns in namespaces}
        return sorted(namespaces)[op.offset : op.offset + op.limit]


# ---------------------------------------------------------------------------------------- helpers
def _entry_id(namespace: Sequence[str], key: str) -> str:
    return json.dumps([*namespace, key], ensure_ascii=False)


def _labels_of(stream_id: str) -> tuple[str, ...] | None:
    """The namespace labels a stream id stands for (see :meth:`EvoLangGraphStore.stream_of`)."""
    if stream_id == UNINDEXED_STREAM:
        return None
    if stream_id.startswith("["):
        try:
            labels = json.loads(stream_id)
        except ValueError:
            return None
        return tuple(labels) if isinstance(labels, list) and all(isinstance(x, str) for x in labels) else None
    return tuple(stream_id.split("."))


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
