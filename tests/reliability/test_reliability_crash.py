"""Crash safety: a process SIGKILLed at random points while adding and saving leaves the last complete
save loadable, consistent, and exactly equal to a replay of the acknowledged work.

Each trial forks the test process (cheap: the model and store are inherited, nothing is re-imported).
The child runs generations of ``delete one + add a batch + save`` on the store and reports ``begin g`` /
``done g`` through a pipe; it is killed either at a random file-system step (before or after any
write, fsync, rename or unlink of :func:`EvoStore.save`, including a torn half-written file) or after a
random delay (which lands in ``add`` or ``save``). The parent then loads the directory and compares
it with its own replay of the acknowledged generations (or of the one in flight, if the kill came
after the commit point but before ``done``).

Most trials use plain mode with a hashing embedder: ``save`` writes through the very same code
(``format.write_snapshot``: same files, fsyncs, rename and clean-up) in both modes; evo mode only adds the
memory arrays, which the evo trials (tiny causal model, real stream memories) cover.
"""

from __future__ import annotations

import os
import random
import signal
import tempfile
import time

import pytest
import torch
from fuzz_strategies import HashingEmbeddings, assert_consistent, assert_same_snapshot, snapshot

import evoembedding_integrations.store.format as store_module
from evoembedding_integrations.store import EvoStore

TRIALS = {"plain-steps": 40, "plain-timer": 20, "evo-steps": 12}
STREAMS = ("ana", "bob")


def generation(store: EvoStore, trial: int, gen: int) -> None:
    """One unit of work: delete the oldest entry (if any), then add a batch across two streams."""
    ids = store.ids()
    if ids:
        store.delete([ids[0]])
    texts = [f"trial {trial} generation {gen} message {j}: we talked about item {gen * 3 + j}" for j in range(3)]
    store.add(
        texts,
        stream_id=[STREAMS[j % 2] for j in range(3)],
        ids=[f"t{trial}g{gen}j{j}" for j in range(3)],
        metadatas=[{"trial": trial, "gen": gen}] * 3,
    )


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _arm_step_kill(target: int) -> None:
    """In the child: SIGKILL at the ``target``-th file-system step of saving (torn writes included)."""
    steps = {"n": 0}

    def tick() -> None:
        steps["n"] += 1
        if steps["n"] == target:
            _kill_self()

    write_new = store_module._write_new

    def torn_write_new(path, data):
        tick()
        if steps["n"] + 1 == target:  # die halfway through this file
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, data[: len(data) // 2])
            os.fsync(fd)
            _kill_self()
        write_new(path, data)
        tick()

    def wrap(function):
        def wrapped(*args, **kwargs):
            tick()
            result = function(*args, **kwargs)
            tick()
            return result

        return wrapped

    store_module._write_new = torn_write_new
    store_module._fsync_dir = wrap(store_module._fsync_dir)
    os.replace = wrap(os.replace)
    os.unlink = wrap(os.unlink)


def _child(store: EvoStore, directory, trial: int, write_fd: int, step_target: int | None) -> None:
    torch.set_num_threads(1)
    if step_target is not None:
        _arm_step_kill(step_target)
    for gen in range(1, 1000):
        generation(store, trial, gen)
        os.write(write_fd, f"begin {gen}\n".encode())
        store.save(directory)
        os.write(write_fd, f"done {gen}\n".encode())
    os._exit(0)


def run_trial(store: EvoStore, directory, trial: int, rng: random.Random, *, steps: bool) -> tuple[int, int]:
    """Fork a child working on ``store`` until it is killed; returns (last done, last begun) generation."""
    step_target = rng.randint(1, 36) if steps else None  # drawn here: the child's rng copy is thrown away
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(read_fd)
            _child(store, directory, trial, write_fd, step_target)
        finally:
            os._exit(1)
    os.close(write_fd)
    if not steps:
        time.sleep(rng.uniform(0.0, 0.05))
        os.kill(pid, signal.SIGKILL)
    chunks = []
    while chunk := os.read(read_fd, 4096):
        chunks.append(chunk)
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"child ended with status {status}"
    events = b"".join(chunks).decode().split()
    done = [int(g) for word, g in zip(events[::2], events[1::2]) if word == "done"]
    begun = [int(g) for word, g in zip(events[::2], events[1::2]) if word == "begin"]
    return (done[-1] if done else 0), (begun[-1] if begun else 0)


def crash_series(tmp_path, load, make_empty, trials: int, *, steps: bool, seed: int, atol: float) -> dict:
    directory = tmp_path / "store"
    first = make_empty()
    first.add(["the very first message"], stream_id="ana", ids=["origin"])
    first.save(directory)
    rng = random.Random(seed)
    outcomes = {"previous": 0, "in-flight": 0}
    for trial in range(trials):
        before = load(directory)
        done, begun = run_trial(before, directory, trial, rng, steps=steps)
        loaded = load(directory)
        assert_consistent(loaded)
        candidates = [done] + ([begun] if begun > done else [])
        replays = _replays(before, trial, candidates)
        got = snapshot(loaded)
        matched = []
        for g, expected in replays.items():
            try:
                assert_same_snapshot(got, expected, atol=atol)
                matched.append(g)
            except AssertionError:
                pass
        assert matched, f"trial {trial}: loaded store matches neither generation {done} (acknowledged) nor {begun}"
        outcomes["previous" if matched[0] == done else "in-flight"] += 1
    # The directory stays usable and is cleaned of any torn or stale files by the next save.
    final = load(directory)
    final.add(["one more"], stream_id="ana")
    final.save(directory)
    names = sorted(p.name for p in directory.iterdir())
    assert len(names) == 3 and "manifest.json" in names, f"stale files left: {names}"
    assert_consistent(load(directory))
    return outcomes


def _replays(before: EvoStore, trial: int, candidates: list[int]) -> dict[int, tuple]:
    """Snapshots of ``before`` (the parent's copy, untouched by the child) after each candidate generation."""
    copy, out = _copy(before), {}
    for gen in range(0, max(candidates) + 1):
        if gen:
            generation(copy, trial, gen)
        if gen in candidates:
            out[gen] = snapshot(copy)
    return out


def _copy(store: EvoStore) -> EvoStore:
    with tempfile.TemporaryDirectory() as tmp:
        store.save(tmp)
        return EvoStore.load(tmp, store.model, embeddings=store.embeddings)


@pytest.fixture(scope="module")
def embedder():
    return HashingEmbeddings()


def test_sigkill_at_random_save_steps_plain(tmp_path, embedder):
    outcomes = crash_series(
        tmp_path,
        lambda d: EvoStore.load(d, embeddings=embedder),
        lambda: EvoStore(embeddings=embedder),
        TRIALS["plain-steps"],
        steps=True,
        seed=1,
        atol=0,
    )
    print(f"plain step kills: {TRIALS['plain-steps']} trials, outcomes {outcomes}")
    assert outcomes["previous"] and outcomes["in-flight"], "the kill points should cover both sides of the commit"


def test_sigkill_at_random_times_during_add_and_save_plain(tmp_path, embedder):
    outcomes = crash_series(
        tmp_path,
        lambda d: EvoStore.load(d, embeddings=embedder),
        lambda: EvoStore(embeddings=embedder),
        TRIALS["plain-timer"],
        steps=False,
        seed=2,
        atol=0,
    )
    print(f"plain timed kills: {TRIALS['plain-timer']} trials, outcomes {outcomes}")


def test_sigkill_at_random_save_steps_evo(tmp_path, tiny_causal_model):
    outcomes = crash_series(
        tmp_path,
        lambda d: EvoStore.load(d, tiny_causal_model),
        lambda: EvoStore(tiny_causal_model),
        TRIALS["evo-steps"],
        steps=True,
        seed=3,
        atol=1e-5,
    )
    print(f"evo step kills: {TRIALS['evo-steps']} trials, outcomes {outcomes}")
