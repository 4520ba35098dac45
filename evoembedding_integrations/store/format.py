"""The saved-store format: snapshot, restore and the hardened file I/O. Nothing here is pickled.

A saved store is a directory of three files:

* ``manifest.json``: format name and version, mode, encoder identity (model fingerprint or
  embedder name), dimension, index options, entry count, and the size and SHA-256 of each data file;
* ``records-<save>.json``: the same header, and per stream its id, length, memory counters and
  records (id, position, text, metadata);
* ``arrays-<save>.safetensors``: per stream ``<n>/vectors`` (float32, in position order) and, in
  EvoEmbedding mode, ``<n>/memory`` and ``<n>/chunk_memory``.

**Writing** (:func:`write_snapshot`) creates new uniquely named data files (never following or
overwriting anything), fsyncs them, atomically replaces ``manifest.json`` (the commit point) and
only then removes the previous save's files: a crash at any moment leaves the previous or the new
save complete. **Reading** (:func:`read_verified`, then :func:`decode_streams`) checks the version,
every size and checksum before parsing, refuses symlinks, FIFOs, devices and names outside the
directory, reads no more bytes than declared, parses JSON without non-finite numbers and arrays
only through safetensors (which checks its declared shapes), then validates every stream and
record. Failures raise :class:`CorruptStoreError`; a missing store raises ``FileNotFoundError``.

The in-memory form, :class:`StreamSnapshot`, is what any storage layer exchanges with the store.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as load_arrays
from safetensors.numpy import save as save_arrays

from evoembedding_core.validation import is_int, validate_id, validate_texts

from .records import CorruptStoreError, check_stored_metadata

FORMAT = "evoembedding-store"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MODES = ("evo", "plain")
MAX_DIM = 65_536
"""Largest vector dimension accepted from disk."""
MAX_STREAM_LENGTH = 2**48
"""Largest stream length (and entry count) accepted from disk."""
_DATA_FILE = re.compile(r"^(records|arrays)-[0-9a-f]{32}\.(json|safetensors)$")
_TMP_FILE = re.compile(r"^\.tmp-[0-9a-f]{32}$")


@dataclass(frozen=True)
class StoredRecord:
    """One record as saved: its id, position in its stream, text and metadata."""

    id: str
    position: int
    text: str
    metadata: dict


@dataclass(frozen=True)
class StreamSnapshot:
    """One stream as saved.

    Attributes:
        id: The stream id.
        length: Texts read by the stream so far (deleted ones included).
        records: The stream's records, in position order.
        vectors: Their unit vectors, one row per record: (n, d) float32.
        memory: The memory state (``{"memory", "chunk_memory": arrays, "meta": dict}``), or
            ``None`` in plain mode.
    """

    id: str
    length: int
    records: list[StoredRecord]
    vectors: np.ndarray
    memory: dict | None


# ---------------------------------------------------------------------------------------- snapshot
def encode_snapshot(header: dict, streams: list[StreamSnapshot]) -> tuple[dict, dict[str, np.ndarray]]:
    """The records document and the arrays of a save.

    Args:
        header: ``mode``, ``model``, ``embedder``, ``dim``, ``index`` and ``entries`` (format and
            version are added here).
        streams: Every stream, in creation order.

    Returns:
        ``(document, arrays)`` for :func:`write_snapshot`.
    """
    arrays: dict[str, np.ndarray] = {}
    docs = []
    for n, stream in enumerate(streams):
        arrays[f"{n}/vectors"] = stream.vectors
        doc = {
            "id": stream.id,
            "length": stream.length,
            "records": [
                {"id": r.id, "position": r.position, "text": r.text, "metadata": r.metadata} for r in stream.records
            ],
        }
        if stream.memory is not None:
            arrays[f"{n}/memory"] = stream.memory["memory"]
            arrays[f"{n}/chunk_memory"] = stream.memory["chunk_memory"]
            doc["memory"] = stream.memory["meta"]
        docs.append(doc)
    return {"header": {"format": FORMAT, "format_version": FORMAT_VERSION, **header}, "streams": docs}, arrays


def decode_streams(
    manifest: dict,
    document: dict,
    arrays: dict[str, np.ndarray],
    *,
    dim: int | None,
    with_memory: bool,
    metadata_checked: bool = False,
) -> list[StreamSnapshot]:
    """Validate a save's streams and records (the document and arrays already verified by
    :func:`read_verified`).

    Args:
        manifest: The verified manifest.
        document: The records document.
        arrays: The arrays by name.
        dim: The vectors' dimension (``None``: no vectors expected).
        with_memory: Whether each stream must carry a memory state (EvoEmbedding mode).
        metadata_checked: The records' metadata was already checked (``check_stored_metadata``).

    Returns:
        The streams, in creation order.

    Raises:
        CorruptStoreError: Anything inconsistent: ids, texts, positions, duplicates, vector
            shapes, norms or counts, unexpected or missing arrays.
    """
    docs = document.get("streams")
    if not isinstance(docs, list):
        raise CorruptStoreError("records file has no list of streams")
    streams, stream_ids, record_ids, expected = [], set(), set(), set()
    for n, doc in enumerate(docs):
        try:
            stream = _decode_stream(n, doc, arrays, dim, with_memory, metadata_checked)
            if stream.id in stream_ids:
                raise ValueError(f"duplicate stream id {stream.id!r}")
            for record in stream.records:
                if record.id in record_ids:
                    raise ValueError(f"duplicate record id {record.id!r}")
                record_ids.add(record.id)
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptStoreError(f"stream #{n} is invalid: {exc}") from None
        stream_ids.add(stream.id)
        streams.append(stream)
        expected |= {f"{n}/vectors"} | ({f"{n}/memory", f"{n}/chunk_memory"} if with_memory else set())
    if set(arrays) != expected:
        raise CorruptStoreError(f"unexpected or missing arrays: {sorted(set(arrays) ^ expected)[:5]}")
    if manifest.get("entries") != len(record_ids):
        raise CorruptStoreError(
            f"manifest counts {manifest.get('entries')!r} entries, the records hold {len(record_ids)}"
        )
    return streams


def _decode_stream(n: int, doc: dict, arrays, dim, with_memory: bool, metadata_checked: bool) -> StreamSnapshot:
    sid = validate_id(doc["id"], "stream id")
    length, items = doc["length"], doc["records"]
    if not is_int(length) or not 0 <= length <= MAX_STREAM_LENGTH or not isinstance(items, list):
        raise ValueError(f"length must be an integer in [0, {MAX_STREAM_LENGTH}] and records a list")
    vectors = arrays[f"{n}/vectors"]
    if vectors.dtype != np.float32 or vectors.ndim != 2 or vectors.shape[0] != len(items):
        raise ValueError(f"vectors must be float32 (n={len(items)}, d), got {vectors.dtype} {vectors.shape}")
    if items and (vectors.shape[1] != dim or not np.isfinite(vectors).all()):
        raise ValueError(f"vectors must be finite and {dim}-d")
    if items and not np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3):
        raise ValueError("stored vectors are not unit-length")
    memory = None
    if with_memory:
        memory = {"memory": arrays[f"{n}/memory"], "chunk_memory": arrays[f"{n}/chunk_memory"], "meta": doc["memory"]}
        if not isinstance(memory["meta"], dict) or memory["meta"].get("length") != length:
            raise ValueError("memory state length differs from the stream length")
    records, positions = [], set()
    validate_texts([item["id"] for item in items], "record ids")  # one pass each, not one call per record
    validate_texts([item["text"] for item in items], "record texts")
    for item in items:
        id_, position, text = item["id"], item["position"], item["text"]
        if not is_int(position) or not 0 <= position < length:
            raise ValueError(f"record {id_!r} has position {position!r} outside the stream (length {length})")
        if position in positions:
            raise ValueError(f"two records at position {position}")
        positions.add(position)
        if not metadata_checked:
            check_stored_metadata(item["metadata"])
        records.append(StoredRecord(id_, position, text, item["metadata"]))
    return StreamSnapshot(sid, length, records, vectors, memory)


def manifest_field(manifest: Mapping, key: str, kind: type):
    """``manifest[key]`` if it is a ``kind``, else :class:`CorruptStoreError`."""
    value = manifest.get(key)
    if not isinstance(value, kind):
        raise CorruptStoreError(f"manifest field {key!r} is missing or not a {kind.__name__}")
    return value


def index_options(manifest: Mapping, override: str | None) -> tuple[str, int]:
    """The saved index kind (or ``override``) and HNSW threshold, checked."""
    options = manifest_field(manifest, "index", dict)
    kind, threshold = override or options.get("kind"), options.get("hnsw_threshold")
    if kind not in ("flat", "hnsw") or not is_int(threshold) or not 1 <= threshold <= MAX_STREAM_LENGTH:
        raise CorruptStoreError(f"manifest index options are invalid: {options!r}")
    return kind, threshold


def manifest_dim(manifest: Mapping) -> int | None:
    """The saved vectors' dimension (``None``: a plain store that never held a vector), checked."""
    dim = manifest.get("dim")
    if dim is not None and (not is_int(dim) or not 1 <= dim <= MAX_DIM):
        raise CorruptStoreError(f"bad dimension {dim!r} (an integer in [1, {MAX_DIM}] expected)")
    return dim


# ---------------------------------------------------------------------------------------- writing
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


def write_snapshot(directory: Path, document: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write a save into an existing directory, atomically (see the module docstring).

    Args:
        directory: The store directory (created by the caller; not a symlink).
        document: The records document from :func:`encode_snapshot`.
        arrays: The arrays from :func:`encode_snapshot`.

    Raises:
        OSError: A write, fsync or rename failed; the previous save is then still complete.
    """
    save_id = uuid.uuid4().hex
    blobs = {
        f"records-{save_id}.json": json.dumps(document, ensure_ascii=True, allow_nan=False).encode(),
        f"arrays-{save_id}.safetensors": save_arrays({k: np.ascontiguousarray(v) for k, v in arrays.items()}),
    }
    manifest = {
        **document["header"],
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


# ---------------------------------------------------------------------------------------- reading
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


def has_manifest(directory: Path) -> bool:
    """Whether ``directory`` holds a saved store's manifest (or something in its place)."""
    return (directory / MANIFEST).exists() or (directory / MANIFEST).is_symlink()


def read_manifest(directory: Path) -> dict:
    """The manifest of a saved store, parsed but not yet checked (see :func:`read_verified`).

    Raises:
        FileNotFoundError: ``directory`` is not a directory or holds no manifest.
        CorruptStoreError: The manifest is unsafe or not JSON.
    """
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a directory")
    if not has_manifest(directory):
        raise FileNotFoundError(f"{directory} has no {MANIFEST}: not a saved EvoStore")
    return parse_json(_read_file(directory, MANIFEST, MAX_MANIFEST_BYTES), MANIFEST)


def read_verified(directory: Path) -> tuple[dict, dict, dict[str, np.ndarray]]:
    """The manifest, records document and arrays of a saved store, each checked before it is parsed.

    Args:
        directory: The store directory.

    Returns:
        ``(manifest, document, arrays)``.

    Raises:
        FileNotFoundError: ``directory`` is not a directory or holds no manifest.
        CorruptStoreError: Any file is unsafe, truncated, modified, malformed or of another version.
    """
    manifest = read_manifest(directory)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CorruptStoreError(f"{MANIFEST} is not an {FORMAT} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CorruptStoreError(
            f"unsupported store format_version {manifest.get('format_version')!r} (this version reads {FORMAT_VERSION})"
        )
    if manifest.get("mode") not in MODES:
        raise CorruptStoreError(f"unknown store mode {manifest.get('mode')!r}")
    files = manifest_field(manifest, "files", dict)
    names = {m.group(1): name for name in files if (m := _DATA_FILE.match(str(name)))}
    if set(names) != {"records", "arrays"} or len(files) != 2:
        raise CorruptStoreError(
            f"manifest must list one records and one arrays file, got {sorted(map(str, files))[:4]}"
        )
    blobs = {kind: _read_listed(directory, name, files[name]) for kind, name in names.items()}
    document = parse_json(blobs["records"], names["records"])
    try:
        arrays = load_arrays(blobs["arrays"])
    except (SafetensorError, ValueError, TypeError, KeyError) as exc:  # KeyError: a dtype NumPy lacks (BF16, F8)
        raise CorruptStoreError(f"{names['arrays']} is not a valid safetensors file ({exc!r})") from None
    odd = sorted(name for name, array in arrays.items() if array.dtype != np.float32)
    if odd:
        raise CorruptStoreError(f"{names['arrays']}: arrays {odd[:3]} are not float32")
    header = document.get("header") if isinstance(document, dict) else None
    if not isinstance(header, dict) or header.get("mode") != manifest["mode"]:
        raise CorruptStoreError("records file header does not match the manifest")
    return manifest, document, arrays


def _read_listed(directory: Path, name: str, spec) -> bytes:
    """A data file the manifest lists, checked against its declared size and checksum."""
    size, digest = (spec.get("size"), spec.get("sha256")) if isinstance(spec, dict) else (None, None)
    if not is_int(size) or size < 0 or not isinstance(digest, str):
        raise CorruptStoreError(f"manifest entry for {name} needs an integer size and a sha256")
    try:
        data = _read_file(directory, name, size)
    except FileNotFoundError:
        raise CorruptStoreError(f"{name} is listed in the manifest but missing") from None
    if len(data) != size:
        raise CorruptStoreError(f"{name} is {len(data)} bytes, the manifest says {size} (truncated or replaced)")
    if hashlib.sha256(data).hexdigest() != digest:
        raise CorruptStoreError(f"{name} fails its sha256 checksum (corrupted or modified)")
    return data


def parse_json(data: bytes, name: str):
    """JSON from bytes, refusing non-finite numbers; :class:`CorruptStoreError` naming ``name``."""
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
