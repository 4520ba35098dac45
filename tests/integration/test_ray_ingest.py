"""Parallel ingest on a real local Ray cluster equals a serial ingest, and survives a killed worker.

The cluster is one node with two CPUs (``ray.init(num_cpus=2)``); every worker loads the shipped
model. The conversations are small (3 to 5 short turns), so the tests measure correctness, not speed.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from evoembedding_integrations.distributed import (  # noqa: E402
    IngestError,
    entry_id,
    ingest_conversations,
    ingest_serial,
    ingest_stream,
    worker_names,
)
from evoembedding_integrations.distributed.ray_ingest import Conversation  # noqa: E402
from evoembedding_integrations.store import EvoStore  # noqa: E402

pytestmark = pytest.mark.slow
TOPICS = ["moving to Oslo", "a new job", "the book club", "a sore knee", "the garden", "a trip to Porto", "piano"]


def conversations(n: int = 50) -> dict[str, list[str]]:
    """``n`` small conversations of 3 to 5 short turns."""
    out = {}
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        turns = [f"User {i}: let's talk about {topic}.", f"Assistant: sure, what about {topic}?"]
        turns += [f"User {i}: detail {j} on {topic}." for j in range(1 + i % 3)]
        out[f"chat-{i:02d}"] = turns
    return out


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The reference: a serial ingest of the same conversations (batches of 2 texts)."""
    path = tmp_path_factory.mktemp("serial")
    report = ingest_serial(conversations(), path, batch=2, progress=False)
    assert report.new == 50 and report.texts == sum(map(len, conversations().values()))
    store = EvoStore(path=path)
    ids = sorted(store.ids())
    return ids, store.vectors(ids), {sid: len(store.stream(sid)) for sid in store.streams()}


def assert_same(path, serial) -> None:
    ids, vectors, lengths = serial
    store = EvoStore(path=path)
    assert sorted(store.ids()) == ids  # same ids, none duplicated, none lost
    assert len(store) == len(ids)
    np.testing.assert_allclose(store.vectors(ids), vectors, atol=1e-5)
    assert {sid: len(store.stream(sid)) for sid in store.streams()} == lengths
    for sid, texts in conversations().items():
        assert [r.text for r in store.get([entry_id(sid, p) for p in range(len(texts))])] == texts


def test_ray_ingest_equals_serial_ingest(cluster, serial, tmp_path):
    report = ingest_conversations(conversations(), tmp_path, num_workers=2, batch=2, progress=False)
    assert (report.new, report.resumed, report.skipped, report.retries, report.workers) == (50, 0, 0, 0, 2)
    assert_same(tmp_path, serial)
    again = ingest_conversations(conversations(), tmp_path, num_workers=2, batch=2, progress=False)
    assert (again.skipped, again.texts) == (50, 0)  # a complete stream is skipped
    assert_same(tmp_path, serial)


def test_killed_worker_resumes_without_duplicates(cluster, serial, tmp_path):
    chats = conversations()
    # Streams a killed worker left half-written: their first batch is committed, the rest is not.
    partial = EvoStore(path=tmp_path)
    for sid in list(chats)[:5]:
        ingest_stream(partial, Conversation(sid, tuple(chats[sid][:2])), batch=2)
    partial.close()

    # A run whose first worker is killed mid-ingest, and that may not retry: it fails, and what it
    # acknowledged stays stored.
    outcome = {}

    def run():
        try:
            outcome["report"] = ingest_conversations(
                chats, tmp_path, num_workers=2, batch=2, max_retries=0, progress=False
            )
        except IngestError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    watcher = EvoStore(path=tmp_path)
    deadline = time.monotonic() + 600
    while len(watcher.streams()) < 15 and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.2)
    names = sorted(worker_names())
    assert names, "no ingest worker is running"
    ray.kill(ray.get_actor(names[0]))
    thread.join(600)
    assert "error" in outcome, "the killed worker's streams should be reported as failed"
    failed = outcome["error"].report.failed
    assert failed and all("Actor" in reason or "actor" in reason for reason in failed.values())
    assert len(watcher) == len(set(watcher.ids()))

    # A re-run resumes the failed streams from their stored lengths and skips the complete ones.
    report = ingest_conversations(chats, tmp_path, num_workers=2, batch=2, progress=False)
    assert report.skipped + report.resumed + report.new == 50 and report.skipped >= 5
    assert_same(tmp_path, serial)


def test_dead_worker_is_replaced_within_a_run(cluster, serial, tmp_path):
    chats = conversations()
    outcome = {}
    thread = threading.Thread(
        target=lambda: outcome.setdefault(
            "report", ingest_conversations(chats, tmp_path, num_workers=2, batch=2, progress=False)
        )
    )
    thread.start()
    watcher = EvoStore(path=tmp_path)
    deadline = time.monotonic() + 600
    while len(watcher.streams()) < 10 and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.2)
    ray.kill(ray.get_actor(sorted(worker_names())[0]))
    thread.join(900)
    report = outcome["report"]
    assert report.retries >= 1 and not report.failed
    assert_same(tmp_path, serial)
