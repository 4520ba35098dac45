"""What a store holds and hands out: records, hits, its errors, and the rules for entry arguments
(stream ids, ids, metadata)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from evoembedding_core.validation import validate_id

MAX_METADATA_DEPTH = 32
"""Most levels of nested dicts and lists one entry's metadata may have (a flat dict is 1)."""
MAX_METADATA_BYTES = 1 << 20
"""Largest metadata of one entry, as JSON (1 MiB)."""


class CorruptStoreError(ValueError):
    """A saved store is unreadable, inconsistent, of an unknown version, or fails its checksums."""


class ModelMismatchError(ValueError):
    """A saved store was written with a different model (or embedder) than the one given."""


@dataclass(frozen=True)
class Record:
    """One stored entry.

    Attributes:
        id: The entry's stable id.
        text: The stored text.
        metadata: The entry's JSON metadata (the caller's own copy).
        stream_id: The stream the text was read in.
        position: The text's position in its stream (0 for the first text read).
    """

    id: str
    text: str
    metadata: dict
    stream_id: str
    position: int


@dataclass(frozen=True)
class Hit(Record):
    """A search result: a :class:`Record` and its score (cosine similarity, or the fused score of a
    hybrid search; higher is better)."""

    score: float


def clean_metadata(metadata, what: str) -> dict:
    """A private JSON copy of one entry's metadata.

    Args:
        metadata: A mapping with string keys (at any depth) and JSON values, or ``None``.
        what: The argument's name, used in error messages.

    Returns:
        A new dict (``{}`` for ``None``) sharing nothing with ``metadata``.

    Raises:
        TypeError: ``metadata`` is not a mapping, has a non-string key, a non-JSON value or a
            non-finite number.
        ValueError: ``metadata`` is nested deeper than :data:`MAX_METADATA_DEPTH` or is larger
            than :data:`MAX_METADATA_BYTES` as JSON.
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise TypeError(f"{what} must be a dict or None, got {type(metadata).__name__}")
    depth = _depth(metadata)
    if depth > MAX_METADATA_DEPTH:
        raise ValueError(f"{what} is nested {depth} levels deep; at most {MAX_METADATA_DEPTH} are allowed")
    try:
        _check_string_keys(metadata, what)
        text = json.dumps(dict(metadata), allow_nan=False, ensure_ascii=True)
    except (TypeError, ValueError, RecursionError) as exc:
        raise TypeError(f"{what} must be JSON-serialisable with finite numbers: {exc}") from None
    if len(text) > MAX_METADATA_BYTES:
        raise ValueError(f"{what} is {len(text)} bytes as JSON; at most {MAX_METADATA_BYTES} are allowed")
    return json.loads(text)


def check_stored_metadata(metadata, size: int | None = None) -> None:
    """Check metadata read from disk: a JSON object within the depth and size limits.

    Args:
        metadata: The parsed metadata.
        size: Its JSON text's length, if known (else it is serialised to measure it).

    Raises:
        ValueError: Not an object, nested deeper than :data:`MAX_METADATA_DEPTH`, or larger than
            :data:`MAX_METADATA_BYTES` as JSON.
    """
    if not isinstance(metadata, dict):
        raise ValueError("a record's metadata is not an object")
    depth = _depth(metadata)
    if depth > MAX_METADATA_DEPTH:
        raise ValueError(f"a record's metadata is nested {depth} levels deep (at most {MAX_METADATA_DEPTH})")
    size = len(json.dumps(metadata, ensure_ascii=True)) if size is None else size
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"a record's metadata is {size} bytes as JSON (at most {MAX_METADATA_BYTES})")


def _depth(value) -> int:
    """Nesting depth of dicts and lists (a flat dict is 1), found without recursion; stops counting
    just past :data:`MAX_METADATA_DEPTH`."""
    if not isinstance(value, (Mapping, list, tuple)):
        return 0
    deepest, pending = 1, [(value, 1)]
    while pending:
        item, level = pending.pop()
        deepest = max(deepest, level)
        if level > MAX_METADATA_DEPTH:
            return level
        children = item.values() if isinstance(item, Mapping) else item
        pending.extend((child, level + 1) for child in children if isinstance(child, (Mapping, list, tuple)))
    return deepest


def copy_metadata(metadata: dict) -> dict:
    """A deep copy of stored (already clean) metadata, so callers never share the store's own dict."""
    return json.loads(json.dumps(metadata))


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


# ---------------------------------------------------------------------------------------- arguments
def stream_id_list(stream_ids) -> list[str] | None:
    """``stream_ids`` (one id, several, or ``None`` for all) as a list without repeats, or ``None``."""
    if stream_ids is None:
        return None
    if isinstance(stream_ids, str):
        stream_ids = [stream_ids]
    if not isinstance(stream_ids, Iterable):
        raise TypeError(f"stream_ids must be a string, a list of strings or None, got {type(stream_ids).__name__}")
    return list(dict.fromkeys(validate_id(s, "stream_ids") for s in stream_ids))


def per_text_streams(stream_id, n: int) -> list[str]:
    """One stream id per text, from one id for all or one per text."""
    if isinstance(stream_id, str):
        return [validate_id(stream_id, "stream_id")] * n
    if not isinstance(stream_id, Sequence):
        raise TypeError(f"stream_id must be a string or one string per text, got {type(stream_id).__name__}")
    if len(stream_id) != n:
        raise ValueError(f"got {len(stream_id)} stream ids for {n} texts")
    return [validate_id(s, f"stream_id[{i}]") for i, s in enumerate(stream_id)]


def new_ids(ids, n: int) -> list[str]:
    """One id per text (``None``: new UUIDs), checked for duplicates."""
    if ids is None:
        return [str(uuid.uuid4()) for _ in range(n)]
    if isinstance(ids, str) or not isinstance(ids, Sequence):
        raise TypeError(f"ids must be a list of strings (or None), got {type(ids).__name__}")
    if len(ids) != n:
        raise ValueError(f"got {len(ids)} ids for {n} texts")
    ids = [str(uuid.uuid4()) if i is None else validate_id(i, f"ids[{k}]") for k, i in enumerate(ids)]
    if len(set(ids)) != n:
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"ids contain a duplicate: {duplicate!r}")
    return ids


def per_text_metadata(metadatas, n: int) -> list[dict]:
    """One clean metadata dict per text (see :func:`clean_metadata`)."""
    if metadatas is None:
        return [{} for _ in range(n)]
    if isinstance(metadatas, (str, Mapping)) or not isinstance(metadatas, Sequence):
        raise TypeError(f"metadatas must be a list of dicts (or None), got {type(metadatas).__name__}")
    if len(metadatas) != n:
        raise ValueError(f"got {len(metadatas)} metadatas for {n} texts")
    return [clean_metadata(m, f"metadatas[{i}]") for i, m in enumerate(metadatas)]
