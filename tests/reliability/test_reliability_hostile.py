"""Hostile and corrupt files: stores, stream states and model directories fail to load with a clear,
specific error; nothing in them is executed; nothing allocates what a file merely declares."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import resource
import select
import shutil
import signal
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from fuzz_strategies import HashingEmbeddings, assert_consistent
from safetensors.numpy import save as save_arrays

from evoembedding_integrations.store import CorruptStoreError, EvoStore

EMBEDDER = HashingEmbeddings()


class Payload:
    """Unpickling this creates ``path``: proof that code ran."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def pickle_bytes(sentinel: Path) -> bytes:
    return pickle.dumps({"memory": Payload(sentinel)})


def torch_bytes(tmp_path: Path, sentinel: Path) -> bytes:
    path = tmp_path / "payload.pt"
    torch.save({"memory": Payload(sentinel)}, path)
    return path.read_bytes()


# ---------------------------------------------------------------------------------------- stores
@pytest.fixture(scope="module")
def saved_store(tmp_path_factory) -> Path:
    store = EvoStore(embeddings=EMBEDDER)
    store.add(["Ana: I live in Oslo.", "Ana: I have a cat."], stream_id="ana", metadatas=[{"n": 1}, {"n": 2}])
    store.add(["Bob: I play the cello."], stream_id="bob")
    return store.save(tmp_path_factory.mktemp("hostile") / "store")


@pytest.fixture
def store_dir(saved_store, tmp_path) -> Path:
    return Path(shutil.copytree(saved_store, tmp_path / "store"))


def manifest_of(directory: Path) -> dict:
    return json.loads((directory / "manifest.json").read_text())


def data_file(directory: Path, kind: str) -> Path:
    return next(directory / name for name in manifest_of(directory)["files"] if name.startswith(kind))


def replace_data(directory: Path, kind: str, data: bytes) -> None:
    """Overwrite a data file and, like a careful attacker, fix its size and checksum in the manifest."""
    path = data_file(directory, kind)
    path.write_bytes(data)
    manifest = manifest_of(directory)
    manifest["files"][path.name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (directory / "manifest.json").write_text(json.dumps(manifest))


def edit_records(directory: Path, change) -> None:
    doc = json.loads(data_file(directory, "records").read_text())
    change(doc)
    replace_data(directory, "records", json.dumps(doc).encode())


def load(directory: Path) -> EvoStore:
    return EvoStore.load(directory, embeddings=EMBEDDER)


def test_the_untouched_copy_loads(store_dir):
    store = load(store_dir)
    assert len(store) == 3
    assert_consistent(store)


def _truncate(kind):
    def corrupt(d: Path):
        path = data_file(d, kind)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    return corrupt


def _flip(kind, where):
    def corrupt(d: Path):
        path = data_file(d, kind)
        data = bytearray(path.read_bytes())
        data[int(len(data) * where)] ^= 0x5A
        path.write_bytes(bytes(data))

    return corrupt


def _manifest(change):
    def corrupt(d: Path):
        manifest = manifest_of(d)
        change(manifest)
        (d / "manifest.json").write_text(json.dumps(manifest))

    return corrupt


def _first_file(manifest: dict) -> dict:
    return next(iter(manifest["files"].values()))


def _rename_listed(manifest: dict, new_name: str) -> None:
    name = next(iter(manifest["files"]))
    manifest["files"][new_name] = manifest["files"].pop(name)


def _nested_json(d: Path):
    replace_data(d, "records", b"[" * 200_000 + b"]" * 200_000)


CORRUPTIONS = {
    "truncated records": (_truncate("records"), "bytes, the manifest says"),
    "truncated arrays": (_truncate("arrays"), "bytes, the manifest says"),
    "flipped byte in records": (_flip("records", 0.5), "sha256"),
    "flipped byte in arrays header": (_flip("arrays", 0.01), "sha256"),
    "flipped byte in arrays data": (_flip("arrays", 0.9), "sha256"),
    "truncated manifest": (
        lambda d: (d / "manifest.json").write_bytes((d / "manifest.json").read_bytes()[:40]),
        "not valid JSON",
    ),
    "manifest of a newer version": (_manifest(lambda m: m.update(format_version=2)), "format_version 2"),
    "manifest of another format": (
        _manifest(lambda m: m.update(format="pickle")),
        "not an evoembedding-store manifest",
    ),
    "manifest with a wrong checksum": (_manifest(lambda m: _first_file(m).update(sha256="0" * 64)), "sha256"),
    "manifest with a huge declared size": (
        _manifest(lambda m: _first_file(m).update(size=2**50)),
        "the manifest says 1125899906842624",
    ),
    "manifest with a negative size": (_manifest(lambda m: _first_file(m).update(size=-1)), "integer size"),
    "manifest naming a file outside": (
        _manifest(lambda m: _rename_listed(m, "../records-" + "0" * 32 + ".json")),
        "one records and one arrays",
    ),
    "manifest naming a .pt file": (
        _manifest(lambda m: _rename_listed(m, "arrays-" + "0" * 32 + ".pt")),
        "one records and one arrays",
    ),
    "manifest with NaN": (lambda d: (d / "manifest.json").write_text('{"format": NaN}'), "non-finite"),
    "deeply nested records": (_nested_json, "not valid JSON"),
    "records with a non-finite number": (
        lambda d: replace_data(d, "records", data_file(d, "records").read_bytes().replace(b'"n": 1', b'"n": 1e999')),
        "non-finite",
    ),
    "records with a duplicate id": (
        lambda d: edit_records(
            d, lambda doc: doc["streams"][0]["records"][1].update(id=doc["streams"][0]["records"][0]["id"])
        ),
        "duplicate record id",
    ),
    "records with a bad position": (
        lambda d: edit_records(d, lambda doc: doc["streams"][0]["records"][0].update(position=99)),
        "position 99",
    ),
    "records with a blank text": (
        lambda d: edit_records(d, lambda doc: doc["streams"][0]["records"][0].update(text=" ")),
        "empty or whitespace",
    ),
    "records with more entries than vectors": (
        lambda d: edit_records(
            d,
            lambda doc: doc["streams"][1]["records"].append(
                {"id": "extra", "position": 0, "text": "x", "metadata": {}}
            ),
        ),
        "vectors must be float32",
    ),
    "arrays with a huge declared shape": (
        lambda d: replace_data(d, "arrays", _huge_shape_safetensors()),
        "not a valid safetensors",
    ),
    "arrays with a huge header length": (
        lambda d: replace_data(d, "arrays", struct.pack("<Q", 2**60) + b"{}"),
        "not a valid safetensors",
    ),
    "arrays with NaN vectors": (
        lambda d: replace_data(
            d,
            "arrays",
            save_arrays({"0/vectors": np.full((2, 16), np.nan, np.float32), "1/vectors": np.ones((1, 16), np.float32)}),
        ),
        "NaN or inf|must be finite",
    ),
}


def _huge_shape_safetensors() -> bytes:
    header = json.dumps({"0/vectors": {"dtype": "F32", "shape": [2**40, 2**20], "data_offsets": [0, 8]}}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + b"\0" * 8


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupt_store_fails_with_a_specific_error(store_dir, case):
    corrupt, message = CORRUPTIONS[case]
    corrupt(store_dir)
    with pytest.raises(CorruptStoreError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load(store_dir)


@pytest.mark.parametrize("kind", ["records", "arrays"])
@pytest.mark.parametrize("planted", ["pickle", "torch"])
def test_planted_pickle_or_pt_is_never_executed(store_dir, tmp_path, kind, planted):
    sentinel = tmp_path / "pwned"
    data = pickle_bytes(sentinel) if planted == "pickle" else torch_bytes(tmp_path, sentinel)
    replace_data(store_dir, kind, data)  # size and checksum made to match: only the format can refuse it
    with pytest.raises(CorruptStoreError, match="not valid JSON" if kind == "records" else "not a valid safetensors"):
        load(store_dir)
    assert not sentinel.exists(), "a planted payload was executed"


@pytest.mark.parametrize("target", ["manifest", "records", "arrays"])
def test_symlinks_out_of_the_directory_are_refused(store_dir, tmp_path, target):
    outside = tmp_path / "outside"
    outside.mkdir()
    path = store_dir / "manifest.json" if target == "manifest" else data_file(store_dir, target)
    shutil.move(path, outside / path.name)
    path.symlink_to(outside / path.name)  # same content, but reached through a link
    with pytest.raises(CorruptStoreError, match="symlinks are refused"):
        load(store_dir)


def test_a_data_file_that_is_a_directory_is_refused(store_dir):
    path = data_file(store_dir, "arrays")
    path.unlink()
    path.mkdir()
    with pytest.raises(CorruptStoreError, match="not a regular file|cannot open safely"):
        load(store_dir)


def test_a_planted_fifo_does_not_hang_the_load(store_dir):
    path = data_file(store_dir, "records")
    path.unlink()
    os.mkfifo(path)  # opening a FIFO for reading would block forever without a writer
    outcome = _run_in_child(lambda: load(store_dir), timeout_s=30)
    assert outcome.startswith("CorruptStoreError") and "not a regular file" in outcome, outcome


def _run_in_child(function, *, memory_limit: int | None = None, timeout_s: float = 60) -> str:
    """Run ``function`` in a forked child (optionally under an address-space limit of ``memory_limit``
    bytes above its current use); returns its outcome as text, or ``"timeout"``."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            if memory_limit is not None:
                with open("/proc/self/statm") as handle:
                    used = int(handle.read().split()[0]) * resource.getpagesize()
                resource.setrlimit(resource.RLIMIT_AS, (used + memory_limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
            try:
                function()
                outcome = "loaded"
            except Exception as exc:  # reported to the parent
                outcome = f"{type(exc).__name__}: {exc}"
            os.write(write_fd, outcome.encode()[:4000])
        finally:
            os._exit(0)
    os.close(write_fd)
    ready, _, _ = select.select([read_fd], [], [], timeout_s)
    if not ready:
        os.kill(pid, signal.SIGKILL)
    outcome = os.read(read_fd, 8192).decode() if ready else "timeout"
    os.close(read_fd)
    os.waitpid(pid, 0)
    return outcome


@pytest.mark.parametrize(
    "case",
    ["manifest with a huge declared size", "arrays with a huge declared shape", "arrays with a huge header length"],
)
def test_huge_declared_sizes_are_rejected_without_allocating(store_dir, case):
    CORRUPTIONS[case][0](store_dir)
    outcome = _run_in_child(lambda: load(store_dir), memory_limit=256 * 2**20)
    assert outcome.startswith("CorruptStoreError"), outcome


def test_an_evo_store_with_a_poisoned_memory_is_refused(tmp_path, tiny_causal_model):
    store = EvoStore(tiny_causal_model)
    store.add(["Ana: I live in Oslo.", "Ana: I have a cat."], stream_id="ana")
    directory = store.save(tmp_path / "evo")
    from safetensors.numpy import load as load_arrays

    arrays = load_arrays(data_file(directory, "arrays").read_bytes())
    arrays["0/memory"][0, 0] = np.nan
    replace_data(directory, "arrays", save_arrays(arrays))
    with pytest.raises(CorruptStoreError, match="memory contains NaN"):
        EvoStore.load(directory, tiny_causal_model)


# ---------------------------------------------------------------------------------------- stream states
@pytest.fixture
def stream_file(tmp_path, tiny_causal_model) -> Path:
    stream = tiny_causal_model.stream()
    stream.add(["Ana: I live in Oslo.", "Ana: I have a cat.", "Bob: I play the cello."])
    path = tmp_path / "stream.safetensors"
    stream.save(path)
    return path


def _flip_stream(where: float):
    def corrupt(path: Path, tmp_path: Path):
        data = bytearray(path.read_bytes())
        data[int(len(data) * where)] ^= 0x5A
        path.write_bytes(bytes(data))

    return corrupt


STREAM_CORRUPTIONS = {
    "truncated": (lambda p, t: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "not a readable stream state"),
    "flipped byte in the header": (
        _flip_stream(0.02),
        "not a readable stream state|missing evoembedding_stream|checksum",
    ),
    "flipped byte in the data": (_flip_stream(0.95), "checksum"),
    "huge header length": (lambda p, t: p.write_bytes(struct.pack("<Q", 2**60) + b"{}"), "not a readable stream state"),
    "planted pickle": (lambda p, t: p.write_bytes(pickle_bytes(t / "pwned")), "not a readable stream state"),
    "planted .pt": (lambda p, t: p.write_bytes(torch_bytes(t, t / "pwned")), "not a readable stream state"),
    "no metadata": (
        lambda p, t: p.write_bytes(save_arrays({"memory": np.zeros((2, 64), np.float32)})),
        "missing evoembedding_stream metadata",
    ),
    "a directory": (lambda p, t: (p.unlink(), p.mkdir()), "not a readable stream state"),
}


@pytest.mark.parametrize("case", sorted(STREAM_CORRUPTIONS))
def test_corrupt_stream_state_fails_clearly_and_runs_nothing(stream_file, tmp_path, tiny_causal_model, case):
    corrupt, message = STREAM_CORRUPTIONS[case]
    corrupt(stream_file, tmp_path)
    stream = tiny_causal_model.stream()
    stream.add(["an earlier segment"])
    before = stream.state_dict()
    with pytest.raises(ValueError, match=message):
        stream.load(stream_file)
    assert not (tmp_path / "pwned").exists(), "a planted payload was executed"
    after = stream.state_dict()
    assert after["meta"] == before["meta"] and torch.equal(after["memory"], before["memory"]), (
        "a failed load changed the stream"
    )


def test_intact_stream_state_round_trips(stream_file, tiny_causal_model):
    stream = tiny_causal_model.stream().load(stream_file)
    assert len(stream) == 3


def test_stream_state_with_huge_declared_shape_is_rejected_without_allocating(stream_file, tiny_causal_model):
    stream_file.write_bytes(_huge_shape_safetensors())
    outcome = _run_in_child(lambda: tiny_causal_model.stream().load(stream_file), memory_limit=256 * 2**20)
    assert outcome.startswith("ValueError") and "not a readable stream state" in outcome, outcome
