"""Rows of a store's SQLite database, to and from what the store holds, each value checked.

Everything read from a database is validated here before the store uses it (a database is a file
anyone with access could have edited): counters and dimensions in range, metadata JSON within its
depth and size limits, vectors and memory latents of the declared size.
"""

from __future__ import annotations

import json

import numpy as np

from evoembedding_core.validation import is_int

from . import format as fmt
from .backend import AddedEntry
from .records import MAX_METADATA_BYTES, MAX_METADATA_DEPTH, CorruptStoreError, check_stored_metadata

DATABASE = "evostore.sqlite3"

MAX_COUNTER = 2**48
"""Largest stream length, position or change number accepted from disk."""


def counter(value, what: str) -> int:
    if not is_int(value) or not 0 <= value <= MAX_COUNTER:
        raise CorruptStoreError(f"{DATABASE}: {what} {value!r} is not an integer in [0, 2**48]")
    return value


def dump_metadata(metadata: dict) -> str:
    return json.dumps(metadata, ensure_ascii=True, allow_nan=False)


def blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def memory_columns(state: dict) -> tuple[bytes, bytes, str]:
    shapes = {name: list(state[name].shape) for name in ("memory", "chunk_memory")}
    meta = json.dumps({"meta": state["meta"], "shapes": shapes}, allow_nan=False)
    return blob(state["memory"]), blob(state["chunk_memory"]), meta


def parse_metadata(text) -> dict:
    return parse_metadatas([text])[0]


def parse_metadatas(texts: list) -> list[dict]:
    """Parse and check the metadata JSON texts of many records (one ``json.loads`` for all)."""
    if not all(isinstance(t, str) for t in texts):
        raise CorruptStoreError(f"{DATABASE}: a record's metadata is not JSON text")
    if not texts:
        return []
    # each text must be exactly one JSON value, so the joined array has exactly one item per text
    values = fmt.parse_json(("[" + ",".join(texts) + "]").encode("utf-8", "surrogatepass"), f"{DATABASE} metadata")
    if len(values) != len(texts):
        raise CorruptStoreError(f"{DATABASE}: a record's metadata is not one JSON object")
    for text, value in zip(texts, values):
        try:
            if not isinstance(value, dict):
                raise ValueError("a record's metadata is not an object")
            if text.count("{") + text.count("[") > MAX_METADATA_DEPTH or len(text) > MAX_METADATA_BYTES:
                check_stored_metadata(value, len(text))
        except ValueError as exc:
            raise CorruptStoreError(f"{DATABASE}: {exc}") from None
    return values


def vectors_from_blobs(blobs: list, dim: int | None) -> np.ndarray:
    if not blobs:
        return np.zeros((0, dim or 0), np.float32)
    if dim is None or any(not isinstance(b, bytes) or len(b) != 4 * dim for b in blobs):
        raise CorruptStoreError(f"{DATABASE}: a vector is not {dim} float32 values")
    return np.frombuffer(b"".join(blobs), dtype="<f4").astype(np.float32).reshape(len(blobs), dim)


def entry_from_row(id_, sid, position, text, metadata, vector, dim) -> AddedEntry:
    try:
        snapshot = fmt.decode_streams(
            {"entries": 1},
            {
                "streams": [
                    {
                        "id": sid,
                        "length": counter(position, "position") + 1,
                        "records": [
                            {"id": id_, "position": position, "text": text, "metadata": parse_metadata(metadata)}
                        ],
                    }
                ]
            },
            {"0/vectors": vectors_from_blobs([vector], dim)},
            dim=dim,
            with_memory=False,
        )[0]
    except CorruptStoreError as exc:
        raise CorruptStoreError(f"{DATABASE}: {exc}") from None
    record = snapshot.records[0]
    return AddedEntry(record.id, sid, record.position, record.text, record.metadata, snapshot.vectors[0])


def id_list(text, what: str) -> tuple[str, ...]:
    value = fmt.parse_json(text.encode() if isinstance(text, str) else b"", f"{DATABASE} change {what}")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CorruptStoreError(f"{DATABASE}: change field {what} is not a list of ids")
    return tuple(value)


def memory_from_row(memory, chunk_memory, state) -> dict:
    doc = fmt.parse_json(state.encode() if isinstance(state, str) else b"", f"{DATABASE} stream state")
    if not isinstance(doc, dict) or not isinstance(doc.get("shapes"), dict) or not isinstance(doc.get("meta"), dict):
        raise CorruptStoreError(f"{DATABASE}: a stream has no memory state")
    out = {"meta": doc["meta"]}
    for name, blob in (("memory", memory), ("chunk_memory", chunk_memory)):
        shape = doc["shapes"].get(name)
        if (
            not isinstance(shape, list)
            or len(shape) != 2
            or not all(is_int(s) and 0 <= s <= 1 << 20 for s in shape)
            or not isinstance(blob, bytes)
            or len(blob) != 4 * shape[0] * shape[1]
        ):
            raise CorruptStoreError(f"{DATABASE}: a stream's {name} does not match its shape {shape!r}")
        out[name] = np.frombuffer(blob, dtype="<f4").astype(np.float32).reshape(shape)
    return out
