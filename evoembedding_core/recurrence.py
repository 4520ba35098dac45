"""The recurrence over a stream: chunking, memory evolution and representation, as pure functions.

Chunking rule (dynamic segment batching). Segments are grouped greedily into chunks of at most
``chunk_segments`` segments and ``chunk_tokens`` tokens: a segment opens a new chunk when the
open one is full or would overflow the token budget. Boundaries therefore depend only on the
sequence of segment lengths, never on how the stream was split into calls.

Within a chunk (one batched forward per operation):

* every segment evolves over the memory as it was when the chunk opened (``chunk_memory``), so
  the chunk's segments are independent rows of one batch;
* segment t is represented over the exact memory ``M_{t-1}``: the queue before the chunk plus the
  latents of the chunk's earlier segments, last C of them.

A segment's vector thus depends only on earlier segments (causality), the same way whatever the
call boundaries (split-invariance), and the queue never holds more than C latents.
The same function serves inference (under ``torch.inference_mode``) and training (with autograd).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from .model import EvoEmbeddingModel


@dataclass(frozen=True)
class StreamState:
    """Everything a stream needs to continue exactly: the queue and the open chunk."""

    memory: torch.Tensor
    """The FIFO queue of latents, oldest first: (m, D), m <= C."""
    chunk_memory: torch.Tensor
    """The queue as it was when the open chunk started."""
    chunk_segments: int = 0
    chunk_tokens: int = 0
    length: int = 0
    """Segments read so far."""
    chunk_ids: tuple[tuple[int, ...], ...] = ()
    """``evolution="packed"`` only: token ids of the open chunk's segments, so that a later call
    can recompute the chunk's causal row exactly (earlier query states do not change)."""

    @classmethod
    def empty(cls, model: EvoEmbeddingModel) -> StreamState:
        """The state of a stream that has read nothing (an empty memory on the model's device)."""
        memory = model.empty_memory()
        return cls(memory=memory, chunk_memory=memory)


def plan_chunks(
    state: StreamState, lengths: list[int], max_segments: int, max_tokens: int
) -> list[tuple[int, int, bool]]:
    """Split new segments into chunk runs by the chunking rule (a pure function of the lengths).

    Args:
        state: The stream's state (its open chunk's size counts).
        lengths: Token counts of the new segments, in order.
        max_segments: Most segments per chunk (``chunk_segments``).
        max_tokens: Most segment tokens per chunk (``chunk_tokens``); a longer single segment gets
            a chunk of its own.

    Returns:
        ``(start, stop, opens_new_chunk)`` runs covering ``range(len(lengths))`` in order; the
        first run continues the open chunk unless ``opens_new_chunk``.
    """
    runs: list[tuple[int, int, bool]] = []
    count, tokens = state.chunk_segments, state.chunk_tokens
    start, opens = 0, count == 0
    for i, n in enumerate(lengths):
        if count > 0 and (count >= max_segments or tokens + n > max_tokens):
            if i > start:
                runs.append((start, i, opens))
            start, opens, count, tokens = i, True, 0, 0
        count += 1
        tokens += n
    if start < len(lengths):
        runs.append((start, len(lengths), opens))
    return runs


def advance(
    model: EvoEmbeddingModel, state: StreamState, segments: list[list[int]]
) -> tuple[torch.Tensor, StreamState]:
    """Read tokenised segments in order.

    Args:
        model: The model.
        state: The stream's state before these segments.
        segments: Token ids of the new segments, in order.

    Returns:
        Their vectors (n, output_dim) and the new state. A segment's vector depends only on the
        segments before it, whatever the call boundaries.

    Evolution runs chunk by chunk (each chunk needs the memory the previous one left). No later
    step needs a segment's vector, so all representations of the call run at the end, in batches of
    rows of similar length (:func:`length_batches`): far less padding than one batch per chunk.
    """
    vectors, states = advance_many(model, [state], [segments], max_rows=model.config.chunk_segments)
    return vectors[0], states[0]


MANY_BATCH_ROWS = 64
"""Most rows per forward call of :func:`advance_many` (rows of different streams share a batch)."""


def advance_many(
    model: EvoEmbeddingModel,
    states: Sequence[StreamState],
    segments_per_stream: Sequence[list[list[int]]],
    *,
    max_rows: int = MANY_BATCH_ROWS,
) -> tuple[list[torch.Tensor], list[StreamState]]:
    """Read new segments of several independent streams at once: :func:`advance` per stream, batched.

    Every stream's chunks evolve in their own order, exactly as :func:`advance` would run them; but
    round ``r`` evolves the ``r``-th chunk of every stream that has one in shared forward calls,
    and the representation rows of all streams run together at the end. Rows are grouped by
    length (:func:`length_batches`, at most ``max_rows`` per call), so one stream's vectors and
    state are the same (up to float rounding) as from :func:`advance` on that stream alone.

    Args:
        model: The model.
        states: Each stream's state before its new segments.
        segments_per_stream: Token ids of each stream's new segments, in order (may be empty).
        max_rows: Most rows per forward call.

    Returns:
        ``(vectors, states)``: per stream, its vectors (n_i, output_dim) and its new state (a stream
        with no new segments keeps its state object).

    Raises:
        ValueError: ``states`` and ``segments_per_stream`` have different lengths.
    """
    if len(states) != len(segments_per_stream):
        raise ValueError(
            f"one list of segments per state is required (got {len(states)} states and "
            f"{len(segments_per_stream)} lists)"
        )
    cfg = model.config
    states = list(states)
    if cfg.native:  # static mode: no memory at all
        flat = [s for segments in segments_per_stream for s in segments]
        vectors = model.represent_native(flat) if flat else _no_vectors(model)
        states = [
            replace(st, length=st.length + len(segs)) if segs else st for st, segs in zip(states, segments_per_stream)
        ]
        return list(vectors.split([len(segs) for segs in segments_per_stream])), states
    capacity, k = cfg.capacity, cfg.num_queries
    packed = cfg.evolution == "packed"
    plans = [
        plan_chunks(st, [len(s) for s in segs], cfg.chunk_segments, cfg.chunk_tokens)
        for st, segs in zip(states, segments_per_stream)
    ]
    memories: list[list[torch.Tensor]] = [[] for _ in states]  # M_{t-1} of every new segment
    for round_ in range(max((len(p) for p in plans), default=0)):
        active = [(i, plan[round_]) for i, plan in enumerate(plans) if round_ < len(plan)]
        chunks = []
        for i, (start, stop, opens) in active:
            if opens:
                states[i] = replace(
                    states[i], chunk_memory=states[i].memory, chunk_segments=0, chunk_tokens=0, chunk_ids=()
                )
            chunks.append(segments_per_stream[i][start:stop])
        if packed:  # one causal row per chunk, its earlier segments recomputed
            latents = []
            for (i, _), chunk in zip(active, chunks):
                earlier = [list(ids) for ids in states[i].chunk_ids]
                latents.append(model.evolve_packed(states[i].chunk_memory, earlier + chunk)[len(earlier) :])
                states[i] = replace(states[i], chunk_ids=states[i].chunk_ids + tuple(tuple(s) for s in chunk))
        else:  # independent rows over each chunk's opening memory, all streams in shared batches
            row_memories = [states[i].chunk_memory for (i, _), chunk in zip(active, chunks) for _ in chunk]
            rows_segments = [s for chunk in chunks for s in chunk]
            batches = length_batches([m.shape[0] + len(s) for m, s in zip(row_memories, rows_segments)], max_rows)
            parts = [
                model.evolve([row_memories[j] for j in rows], [rows_segments[j] for j in rows]) for rows in batches
            ]
            latents = _in_input_order(parts, batches).split([len(c) for c in chunks])  # (n_i, K, D) each
        for (i, _), chunk, new in zip(active, chunks, latents):
            state = states[i]
            queue = torch.cat([state.memory, new.flatten(0, 1)])
            before = state.memory.shape[0]
            memories[i] += [queue[max(0, end - capacity) : end] for end in range(before, before + k * len(chunk), k)]
            states[i] = replace(
                state,
                memory=queue[-capacity:],
                chunk_segments=state.chunk_segments + len(chunk),
                chunk_tokens=state.chunk_tokens + sum(len(s) for s in chunk),
                length=state.length + len(chunk),
            )
    flat_memories = [m for stream in memories for m in stream]
    flat_segments = [s for segments in segments_per_stream for s in segments]
    if not flat_segments:
        return [_no_vectors(model) for _ in states], states
    batches = length_batches([m.shape[0] + len(s) for m, s in zip(flat_memories, flat_segments)], max_rows)
    parts = [model.represent([flat_memories[i] for i in rows], [flat_segments[i] for i in rows]) for rows in batches]
    vectors = _in_input_order(parts, batches)
    return list(vectors.split([len(segs) for segs in segments_per_stream])), states


def _no_vectors(model: EvoEmbeddingModel) -> torch.Tensor:
    return torch.zeros(0, model.output_dim, device=model.device)


def _in_input_order(parts: list[torch.Tensor], batches: list[list[int]]) -> torch.Tensor:
    """Concatenate per-batch results and put their rows back in input order."""
    order = torch.tensor([i for rows in batches for i in rows], device=parts[0].device)
    return torch.cat(parts)[torch.argsort(order)]


BATCH_OVERHEAD_TOKENS = 192
"""Cost of one extra forward call, in padded token positions, used to group rows by length."""


def length_batches(lengths: list[int], max_rows: int, overhead: int = BATCH_OVERHEAD_TOKENS) -> list[list[int]]:
    """Group row indices into batches that minimise padded positions plus ``overhead`` per batch.

    Rows are sorted by length; a batch costs ``rows x its longest row + overhead``; the optimal
    split of the sorted order into runs of at most ``max_rows`` is found by dynamic programming.

    Args:
        lengths: Length of each row.
        max_rows: Most rows per batch.
        overhead: Cost of one more batch, in padded positions.

    Returns:
        Batches of row indices, shortest rows first; every row is in exactly one batch.
    """
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    best = [0] + [None] * len(order)  # best[i]: cheapest cost of the first i sorted rows
    cut = [0] * (len(order) + 1)
    for i in range(1, len(order) + 1):
        longest = lengths[order[i - 1]]
        for j in range(max(0, i - max_rows), i):
            cost = best[j] + (i - j) * longest + overhead
            if best[i] is None or cost < best[i]:
                best[i], cut[i] = cost, j
    batches, i = [], len(order)
    while i > 0:
        batches.append(order[cut[i] : i])
        i = cut[i]
    return batches[::-1]


QUERY_BATCH_ROWS = 64
"""Most query rows per forward call of :func:`represent_queries`."""


def represent_queries(
    model: EvoEmbeddingModel,
    states: StreamState | Sequence[StreamState],
    queries: list[list[int]],
    *,
    max_rows: int = QUERY_BATCH_ROWS,
) -> torch.Tensor:
    """Vectors of tokenised queries, each read over a stream's current memory (which is unchanged).

    The one place queries become vectors, for streams, stores, evaluation and training. Rows are
    grouped by length (:func:`length_batches`) into forward calls of at most ``max_rows`` rows.
    A released checkpoint in ``native`` mode reads every query with its bundled embedding model
    (no memory), like the segments.

    Args:
        model: The model.
        states: One state for all queries, or one state per query.
        queries: Token ids of each query (``model.tokenize(texts, query=True)``); a single query
            with several states is read over each of them.
        max_rows: Most rows per forward call.

    Returns:
        One vector per (state, query) row: (n, output_dim), in input order. Autograd follows the
        caller's mode (training calls this with gradients on).

    Raises:
        ValueError: ``states`` and ``queries`` have different lengths (neither being one).
    """
    memories = [states.memory] if isinstance(states, StreamState) else [s.memory for s in states]
    if len(queries) == 1 and len(memories) > 1:
        queries = queries * len(memories)
    elif len(memories) == 1:
        memories = memories * len(queries)
    if len(memories) != len(queries):
        raise ValueError(f"one state per query is required (got {len(memories)} states and {len(queries)} queries)")
    if not queries:
        return torch.zeros(0, model.output_dim, device=model.device)
    native = model.config.native
    batches = length_batches([len(q) + (0 if native else m.shape[0]) for m, q in zip(memories, queries)], max_rows)
    if native:
        parts = [model.represent_native([queries[i] for i in rows]) for rows in batches]
    else:
        parts = [model.represent([memories[i] for i in rows], [queries[i] for i in rows]) for rows in batches]
    return _in_input_order(parts, batches)
