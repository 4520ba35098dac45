"""The store's write path helpers: per-stream ordering, embedding in chunks, progress reporting.

An ``add`` embeds its texts **outside** the store's lock (searches and writes to other streams go
on meanwhile); the lock is held only to commit. Two adds to the same stream must still read the
stream in order, so each stream has its own guard (:class:`StreamGuards`), held from reading the
stream's memory to committing the advanced one.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import numpy as np

EMBED_CHUNK = 32
"""Texts per progress step of a bulk add."""
EVO_STEP = 4
"""Texts of one stream an EvoEmbedding model reads per step of an add: the model's lock is released (and handed
to a waiting search) between steps, so a search waits for one step, not for the whole add. A stream
read in several steps gets the vectors of one pass up to float rounding (about 1e-6)."""
STEP_ROWS = 64
"""Most texts one step of an add over several streams reads (:func:`evo_steps`)."""
HANDOFF_S = 0.002
"""Pause between two steps, so a thread waiting for the model's lock gets it."""


class StreamGuards:
    """One lock per stream id; :meth:`hold` takes those of some streams (in sorted order: no deadlock)."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @contextmanager
    def hold(self, stream_ids: Iterable[str]) -> Iterator[None]:
        """Hold the guards of ``stream_ids`` for the block."""
        with self._guard:
            locks = [self._locks.setdefault(sid, threading.Lock()) for sid in sorted(set(stream_ids))]
        taken = []
        try:
            for lock in locks:
                lock.acquire()
                taken.append(lock)
            yield
        finally:
            for lock in reversed(taken):
                lock.release()


@contextmanager
def reporter(progress, total: int) -> Iterator[Callable[[int, int], None] | None]:
    """What reports a bulk add's progress: ``None`` (silent), the caller's callable, or a tqdm bar.

    Args:
        progress: ``None`` (a bar when stderr is a terminal and there is more than one step),
            ``True`` (a bar), ``False`` (silent), or a callable receiving ``(done, total)``.
        total: How many texts the add embeds.

    Raises:
        TypeError: ``progress`` is none of these.
    """
    if progress is not None and not isinstance(progress, bool) and not callable(progress):
        raise TypeError(f"progress must be None, a bool or a callable (done, total), got {type(progress).__name__}")
    if callable(progress) and not isinstance(progress, bool):
        yield progress
        return
    if progress is False or (progress is None and not (total > EMBED_CHUNK and _stderr_is_a_terminal())):
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="text", desc="embedding", file=sys.stderr)
    try:
        yield lambda done, _total: bar.update(done - bar.n)
    finally:
        bar.close()


def _stderr_is_a_terminal() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def evo_steps(stream_of: list[str]) -> list[list[int]]:
    """Which texts each step of an EvoEmbedding add reads: every stream's texts in order,
    :data:`EVO_STEP` at a time, with the next texts of several streams in one step (at most one
    such group per stream and :data:`STEP_ROWS` texts), so their rows share forward calls.

    Args:
        stream_of: Each text's stream id.

    Returns:
        The text indices of each step, in the order the steps run.
    """
    positions: dict[str, list[int]] = {}
    for i, sid in enumerate(stream_of):
        positions.setdefault(sid, []).append(i)
    longest = max((len(idx) for idx in positions.values()), default=0)
    groups = [idx[r : r + EVO_STEP] for r in range(0, longest, EVO_STEP) for idx in positions.values() if r < len(idx)]
    steps: list[list[int]] = []
    current: list[int] = []
    in_step: set[str] = set()
    for group in groups:
        sid = stream_of[group[0]]
        if current and (sid in in_step or len(current) + len(group) > STEP_ROWS):
            steps.append(current)
            current, in_step = [], set()
        current += group
        in_step.add(sid)
    if current:
        steps.append(current)
    return steps


def embed_in_chunks(encoder, texts, stream_of, memories, dim, report, *, chunked: bool):
    """``encoder.embed`` over the texts in steps, each step reading on from the memories the
    previous one left: :func:`evo_steps` if ``chunked``, else :data:`EMBED_CHUNK` texts at a time
    when progress is reported, else one step.

    Returns:
        ``(vectors, memories)`` as ``encoder.embed`` returns them for all the texts.
    """
    size = EMBED_CHUNK if report is not None else max(len(texts), 1)
    steps = (
        evo_steps(stream_of)
        if chunked
        else [list(range(s, min(s + size, len(texts)))) for s in range(0, len(texts), size)]
    )
    if len(steps) <= 1:
        vectors, advanced = encoder.embed(texts, stream_of, memories, dim)
        if report is not None:
            report(len(texts), len(texts))
        return vectors, advanced
    out, current, advanced, done = None, dict(memories), {}, 0
    for n, indices in enumerate(steps):
        if n:
            time.sleep(HANDOFF_S)
        vectors, step = encoder.embed([texts[i] for i in indices], [stream_of[i] for i in indices], current, dim)
        current.update(step)
        advanced.update(step)
        dim = vectors.shape[1] if dim is None else dim
        if out is None:
            out = np.zeros((len(texts), vectors.shape[1]), vectors.dtype)
        out[indices] = vectors
        done += len(indices)
        if report is not None:
            report(done, len(texts))
    return out, advanced
