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
    def empty(cls, model: EvoEmbeddingModel) -> "StreamState":
        memory = model.empty_memory()
        return cls(memory=memory, chunk_memory=memory)


def plan_chunks(state: StreamState, lengths: list[int], max_segments: int, max_tokens: int) -> list[tuple[int, int, bool]]:
    """Split the new segments into ``(start, stop, opens_new_chunk)`` runs by the chunking rule."""
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


def advance(model: EvoEmbeddingModel, state: StreamState, segments: list[list[int]]) -> tuple[torch.Tensor, StreamState]:
    """Read tokenised segments in order: returns their vectors (n, E) and the new state."""
    cfg = model.config
    if cfg.native:  # static mode: no memory at all
        state = replace(state, length=state.length + len(segments))
        vectors = model.represent_native(segments) if segments else torch.zeros(0, model.output_dim, device=model.device)
        return vectors, state
    capacity = cfg.capacity
    packed = cfg.evolution == "packed"
    vectors = []
    for start, stop, opens in plan_chunks(state, [len(s) for s in segments], cfg.chunk_segments, cfg.chunk_tokens):
        chunk = segments[start:stop]
        if opens:
            state = replace(state, chunk_memory=state.memory, chunk_segments=0, chunk_tokens=0, chunk_ids=())
        if packed:  # one causal row for the whole chunk, its earlier segments recomputed
            earlier = [list(ids) for ids in state.chunk_ids]
            latents = model.evolve_packed(state.chunk_memory, earlier + chunk)[len(earlier) :]
            state = replace(state, chunk_ids=state.chunk_ids + tuple(tuple(s) for s in chunk))
        else:
            latents = model.evolve([state.chunk_memory] * len(chunk), chunk)  # (n, K, D)
        queue = torch.cat([state.memory, latents.flatten(0, 1)])
        before = state.memory.shape[0]
        k = cfg.num_queries
        memories = [queue[max(0, end - capacity) : end] for end in range(before, before + k * len(chunk), k)]
        vectors.append(model.represent(memories, chunk))
        state = replace(
            state,
            memory=queue[-capacity:],
            chunk_segments=state.chunk_segments + len(chunk),
            chunk_tokens=state.chunk_tokens + sum(len(s) for s in chunk),
            length=state.length + len(chunk),
        )
    if not vectors:
        return torch.zeros(0, model.output_dim, device=model.device), state
    return torch.cat(vectors), state


def represent_queries(model: EvoEmbeddingModel, state: StreamState, queries: list[list[int]]) -> torch.Tensor:
    """Vectors of tokenised queries, each read over the stream's current memory (memory unchanged)."""
    if model.config.native:
        return model.represent_native(queries)
    return model.represent([state.memory] * len(queries), queries)
