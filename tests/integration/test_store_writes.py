"""The write path: embedding outside the store's lock (a search on one stream answers while a long
add to another runs), adds to one stream kept in order, and ``progress=`` on bulk adds."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from fuzz_strategies import HashingEmbeddings, assert_consistent

from evoembedding_integrations.store import EvoStore
from evoembedding_integrations.store.writing import EMBED_CHUNK, EVO_STEP, STEP_ROWS, evo_steps


class SlowEmbeddings(HashingEmbeddings):
    """A plain embedder that takes ``delay`` seconds per text (a remote API, a big model)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def __call__(self, texts):
        time.sleep(self.delay * len(texts))
        return super().__call__(texts)


def search_while_adding(store: EvoStore, texts: list[str], query: str) -> tuple[list[float], float]:
    """Search stream "a" repeatedly while one thread adds ``texts`` to stream "b"; the search times and the add's."""
    started, done, took = threading.Event(), threading.Event(), []

    def add():
        start = time.perf_counter()
        started.set()
        store.add(texts, stream_id="b", progress=False)
        took.append(time.perf_counter() - start)
        done.set()

    store.search(query, k=2, stream_ids="a")  # warm: the latency measured is the add's, not a first call's
    thread = threading.Thread(target=add)
    thread.start()
    started.wait()
    times = []
    while not done.is_set() or not times:
        start = time.perf_counter()
        hits = store.search(query, k=2, stream_ids="a")
        times.append(time.perf_counter() - start)
        assert hits and all(h.stream_id == "a" for h in hits)
        time.sleep(0.05)
    thread.join()
    return times, took[0]


def test_a_search_answers_while_a_2000_turn_add_runs(tmp_path):
    store = EvoStore(embeddings=SlowEmbeddings(0.0015), path=tmp_path / "s")
    store.add(["ana likes tea", "ana moved to Oslo"], stream_id="a")
    turns = [f"turn {i}: bob talks about topic {i % 17}" for i in range(2000)]
    times, add_s = search_while_adding(store, turns, "tea")
    assert add_s > 2.5 and len(times) > 10  # the add embedded for seconds, searches went on meanwhile
    assert max(times) < 1.0, f"a search waited {max(times):.2f} s"
    assert len(store.ids("b")) == 2000 and [r.position for r in store.get(store.ids("b"))] == list(range(2000))


def test_a_search_answers_while_a_real_model_add_runs(minilm_model):
    store = EvoStore(minilm_model)
    store.add(["I grew up in Porto.", "Last month I moved to Oslo."], stream_id="a")
    turns = [f"Bob, turn {i}: I went hiking near the lake and saw {i} birds." for i in range(48)]
    times, add_s = search_while_adding(store, turns, "Where do I live?")
    assert max(times) < 1.0, f"a search waited {max(times):.2f} s (the add took {add_s:.1f} s)"
    assert len(store.stream("b")) == len(turns)
    reference = minilm_model.stream()  # chunked reading equals one pass, up to float rounding
    np.testing.assert_allclose(store.vectors(store.ids("b")), reference.add(turns), atol=1e-5)


def test_concurrent_adds_to_one_stream_stay_in_order(tmp_path):
    store = EvoStore(embeddings=SlowEmbeddings(0.002), path=tmp_path / "s")
    errors = []

    def worker(n):
        try:
            for i in range(10):
                store.add([f"w{n} text {i}", f"w{n} text {i} bis"], stream_id="shared", ids=[f"{n}-{i}", f"{n}-{i}b"])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    records = store.get(store.ids("shared"))
    assert [r.position for r in records] == list(range(80))
    for n in range(4):  # each call's two texts are adjacent, each thread's calls in its order
        mine = [r for r in records if r.id.startswith(f"{n}-")]
        assert [r.id for r in mine] == [x for i in range(10) for x in (f"{n}-{i}", f"{n}-{i}b")]
        assert all(b.position == a.position + 1 for a, b in zip(mine[::2], mine[1::2]))
    assert_consistent(EvoStore.open(tmp_path / "s", embeddings=HashingEmbeddings()))


def test_progress_option(capsys):
    store = EvoStore(embeddings=HashingEmbeddings())
    calls = []
    texts = [f"text {i}" for i in range(3 * EMBED_CHUNK + 5)]
    store.add(texts, stream_id="a", progress=lambda done, total: calls.append((done, total)))
    n = len(texts)
    assert calls[-1] == (n, n) and [d for d, _ in calls] == sorted(d for d, _ in calls) and len(calls) == 4
    store.add(texts[:5], stream_id="b", progress=False)
    store.add(texts[:5], stream_id="c")  # stderr is not a terminal here: silent by default
    assert capsys.readouterr().err == ""
    store.add(texts, stream_id="d", progress=True)
    assert f"{n}/{n}" in capsys.readouterr().err
    with pytest.raises(TypeError, match="progress"):
        store.add(["x"], progress="yes")
    assert len(store) == 2 * n + 10


def test_steps_batch_several_streams_and_keep_each_streams_order():
    stream_of = ["a"] * 10 + ["b"] * 3 + ["c"] * 20
    steps = evo_steps(stream_of)
    assert sorted(i for step in steps for i in step) == list(range(len(stream_of)))  # every text once
    for sid in "abc":  # each stream's texts in order, EVO_STEP at a time, one group per step
        order = [i for step in steps for i in step if stream_of[i] == sid]
        assert order == sorted(order)
        assert all(sum(stream_of[i] == sid for i in step) <= EVO_STEP for step in steps)
    assert all(len(step) <= STEP_ROWS for step in steps)
    assert len(steps[0]) == 3 * EVO_STEP - 1  # the first step reads the first texts of all three streams
    assert evo_steps(["a"] * 9) == [[0, 1, 2, 3], [4, 5, 6, 7], [8]]  # one stream: as before
    wide = evo_steps([f"s{n}" for n in range(100) for _ in range(2)])  # 100 streams of 2 texts
    assert [len(step) for step in wide] == [STEP_ROWS, STEP_ROWS, STEP_ROWS, 200 - 3 * STEP_ROWS]


def test_an_add_over_many_streams_equals_adding_each_stream_alone(minilm_model):
    texts = [f"User {n % 7}: turn {n} mentions item {n * 13 % 29}." for n in range(60)]
    stream_of = [f"u{n % 9}" for n in range(60)]  # interleaved, 9 streams of 6-7 turns
    together = EvoStore(minilm_model)
    ids = together.add(texts, stream_id=stream_of)
    alone = EvoStore(minilm_model)
    for sid in dict.fromkeys(stream_of):
        rows = [n for n, s in enumerate(stream_of) if s == sid]
        alone.add([texts[n] for n in rows], stream_id=sid, ids=[ids[n] for n in rows])
    np.testing.assert_allclose(together.vectors(ids), alone.vectors(ids), atol=1e-5)
    assert [r.position for r in together.get(ids)] == [r.position for r in alone.get(ids)]
    for sid in together.streams():
        np.testing.assert_allclose(together.encode_query("item 13", sid), alone.encode_query("item 13", sid), atol=1e-5)
