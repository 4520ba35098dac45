"""Regression tests for the store defects found by attack (issue #14): D5 deep or huge metadata,
D7 another plain embedder, D9 safetensors dtypes NumPy lacks, D12 counters and dimensions out of
range; each in the snapshot format and, where it applies, in the database."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import struct
from pathlib import Path

import numpy as np
import pytest
from fuzz_strategies import HASH_DIM, HashingEmbeddings, assert_same_snapshot, snapshot

from evoembedding_integrations.memory import EvoAgentMemory
from evoembedding_integrations.store import CorruptStoreError, EvoStore, ModelMismatchError
from evoembedding_integrations.store.records import MAX_METADATA_BYTES, MAX_METADATA_DEPTH
from evoembedding_integrations.store.sqlite_backend import DATABASE

EMBEDDER = HashingEmbeddings()


class OtherEmbeddings(HashingEmbeddings):
    """Another embedder of the same dimension (different vectors)."""

    @staticmethod
    def _vector(text: str) -> np.ndarray:
        return -HashingEmbeddings._vector(text[::-1] + "salt")


def nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


@pytest.fixture
def saved(tmp_path) -> Path:
    store = EvoStore(embeddings=EMBEDDER)
    store.add(["ana likes tea", "ana moved to Oslo"], stream_id="ana", metadatas=[{"n": 0}, {"n": 1}])
    return store.save(tmp_path / "saved")


def files(directory: Path) -> dict:
    return json.loads((directory / "manifest.json").read_text())["files"]


def replace_data(directory: Path, kind: str, data: bytes) -> None:
    """Overwrite a data file and fix its size and checksum in the manifest (a careful attacker)."""
    manifest = json.loads((directory / "manifest.json").read_text())
    name = next(n for n in manifest["files"] if n.startswith(kind))
    (directory / name).write_bytes(data)
    manifest["files"][name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (directory / "manifest.json").write_text(json.dumps(manifest))


def edit_records(directory: Path, change) -> None:
    name = next(n for n in files(directory) if n.startswith("records"))
    doc = json.loads((directory / name).read_text())
    change(doc)
    replace_data(directory, "records", json.dumps(doc).encode())


def edit_manifest(directory: Path, change) -> None:
    manifest = json.loads((directory / "manifest.json").read_text())
    change(manifest)
    (directory / "manifest.json").write_text(json.dumps(manifest))


def durable_copy(tmp_path: Path) -> Path:
    store = EvoStore(embeddings=EMBEDDER, path=tmp_path / "db")
    store.add(["ana likes tea", "ana moved to Oslo"], stream_id="ana", metadatas=[{"n": 0}, {"n": 1}])
    store.close()
    return tmp_path / "db"


def edit_database(directory: Path, sql: str, *args) -> None:
    conn = sqlite3.connect(directory / DATABASE)
    conn.execute(sql, args)
    conn.commit()
    conn.close()


# ---------------------------------------------------------------------------------------- D5
@pytest.mark.parametrize("depth", [MAX_METADATA_DEPTH + 1, 990, 5000])
def test_d5_deep_metadata_is_refused_at_add_and_changes_nothing(tmp_path, depth):
    store = EvoStore(embeddings=EMBEDDER, path=tmp_path / "s")
    store.add(["kept"], ids=["k0"], metadatas=[nested(MAX_METADATA_DEPTH)])  # the limit itself is fine
    before = snapshot(store)
    with pytest.raises(ValueError, match=f"at most {MAX_METADATA_DEPTH} are allowed"):
        store.add(["deep"], metadatas=[nested(depth)])
    assert_same_snapshot(snapshot(store), before)
    store.save(tmp_path / "export")  # saving still works (it raised RecursionError before)
    assert len(EvoStore.load(tmp_path / "export", embeddings=EMBEDDER)) == 1


def test_d5_huge_metadata_is_refused_and_the_agent_memory_keeps_working(tmp_path, minilm_model):
    store = EvoStore(embeddings=EMBEDDER)
    with pytest.raises(ValueError, match=f"at most {MAX_METADATA_BYTES} are allowed"):
        store.add(["big"], metadatas=[{"blob": "x" * MAX_METADATA_BYTES}])
    assert len(store) == 0
    memory = EvoAgentMemory(tmp_path / "mem", model=minilm_model)
    with pytest.raises(ValueError, match="nested"):
        memory.add("poison", user_id="eve", metadata=nested(2000))
    memory.add("I like tea.", user_id="ana")  # every later add of every user still works
    assert len(EvoAgentMemory(tmp_path / "mem", model=minilm_model)) == 1


def test_d5_deep_metadata_on_disk_is_refused_at_load(saved, tmp_path):
    def deepen(doc):
        doc["streams"][0]["records"][0]["metadata"] = nested(MAX_METADATA_DEPTH + 5)

    edit_records(saved, deepen)
    with pytest.raises(CorruptStoreError, match="nested"):
        EvoStore.load(saved, embeddings=EMBEDDER)
    db = durable_copy(tmp_path)
    edit_database(db, "UPDATE records SET metadata = ?", json.dumps(nested(MAX_METADATA_DEPTH + 5)))
    with pytest.raises(CorruptStoreError, match="nested"):
        EvoStore.open(db, embeddings=EMBEDDER)
    edit_database(db, "UPDATE records SET metadata = ?", "[" * 100_000)  # deeper than the JSON parser goes
    with pytest.raises(CorruptStoreError, match="not valid JSON"):
        EvoStore.open(db, embeddings=EMBEDDER)


# ---------------------------------------------------------------------------------------- D7
def test_d7_another_plain_embedder_is_refused_unless_overridden(saved, tmp_path):
    with pytest.raises(ModelMismatchError, match="another embedder.*check_embedder=False"):
        EvoStore.load(saved, embeddings=OtherEmbeddings())
    store = EvoStore.load(saved, embeddings=OtherEmbeddings(), check_embedder=False)  # explicit override
    assert len(store) == 2
    assert len(EvoStore.load(saved, embeddings=HashingEmbeddings())) == 2  # the same embedder, another object
    db = durable_copy(tmp_path)
    with pytest.raises(ModelMismatchError, match="another embedder"):
        EvoStore.open(db, embeddings=OtherEmbeddings())
    with pytest.raises(ModelMismatchError, match="another embedder"):
        EvoStore(embeddings=OtherEmbeddings(), path=db)
    assert len(EvoStore.open(db, embeddings=OtherEmbeddings(), check_embedder=False)) == 2
    edit_manifest(saved, lambda m: m.pop("embedder_probe"))  # saved before the probe was recorded
    assert len(EvoStore.load(saved, embeddings=OtherEmbeddings())) == 2
    edit_manifest(saved, lambda m: m.update(embedder_probe=["x"] * HASH_DIM))
    with pytest.raises(CorruptStoreError, match="embedder_probe"):
        EvoStore.load(saved, embeddings=EMBEDDER)


# ---------------------------------------------------------------------------------------- D9
def safetensors_bytes(dtype: str, shape: list[int], itemsize: int) -> bytes:
    size = int(np.prod(shape)) * itemsize
    header = json.dumps({"0/vectors": {"dtype": dtype, "shape": shape, "data_offsets": [0, size]}}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + b"\0" * size


@pytest.mark.parametrize(("dtype", "itemsize"), [("BF16", 2), ("F8_E4M3", 1), ("F8_E5M2", 1), ("F16", 2)])
def test_d9_arrays_of_unexpected_dtypes_raise_the_store_error(saved, dtype, itemsize):
    replace_data(saved, "arrays", safetensors_bytes(dtype, [2, HASH_DIM], itemsize))
    with pytest.raises(CorruptStoreError, match="safetensors|float32"):
        EvoStore.load(saved, embeddings=EMBEDDER)


# ---------------------------------------------------------------------------------------- D12
@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        ("length", 10**30, "length must be an integer"),
        ("dim", 2**62, "bad dimension"),
        ("hnsw_threshold", 10**30, "index options"),
        ("entries", 10**30, "entries"),
    ],
)
def test_d12_counters_out_of_range_in_a_snapshot_are_refused(saved, where, value, message):
    if where == "length":
        edit_records(saved, lambda doc: doc["streams"][0].update(length=value))
    elif where == "hnsw_threshold":
        edit_manifest(saved, lambda m: m["index"].update(hnsw_threshold=value))
    else:
        edit_manifest(saved, lambda m: m.update({where: value}))
    with pytest.raises(CorruptStoreError, match=message):
        EvoStore.load(saved, embeddings=EMBEDDER)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("UPDATE streams SET length = 1e30", "stream length"),
        ("UPDATE streams SET length = 9223372036854775807", "stream length"),
        ("UPDATE records SET position = -1", "position"),
        ("UPDATE meta SET value = '1e300' WHERE key = 'seq'", "seq|not a usable"),
        ("UPDATE meta SET value = json_set(value, '$.dim', 4611686018427387904) WHERE key = 'header'", "dimension"),
        ("UPDATE records SET vector = zeroblob(8)", "float32"),
    ],
)
def test_d12_counters_out_of_range_in_a_database_are_refused(tmp_path, sql, message):
    db = durable_copy(tmp_path)
    edit_database(db, sql)
    with pytest.raises(CorruptStoreError, match=message):
        EvoStore.open(db, embeddings=EMBEDDER)
