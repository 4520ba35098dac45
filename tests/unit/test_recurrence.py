"""The pure functions of the recurrence: chunk planning, length batching, advance, represent_queries."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from conftest import randomize_adapters
from hypothesis import given, settings
from hypothesis import strategies as st

from evoembedding_core import EvoEmbeddingConfig, EvoEmbeddingModel
from evoembedding_core.recurrence import StreamState, advance, length_batches, plan_chunks, represent_queries

TURNS = [
    "Ana: I grew up in Porto, near the river.",
    "Bob: Did you like it there?",
    "Ana: Yes, but last spring I moved to Oslo for work.",
    "Bob: How is the weather in Oslo?",
    "Ana: Cold, and the days are short in winter.",
    "Bob: Do you have a pet?",
    "Ana: A grey cat called Miso.",
]
ATOL = 1e-5


def _empty_state() -> StreamState:
    memory = torch.zeros(0, 4)
    return StreamState(memory=memory, chunk_memory=memory)


def _chunk_starts(lengths: list[int], cuts: list[int], max_segments: int, max_tokens: int) -> list[int]:
    """Global indices where a chunk opens, planning the lengths in calls split at ``cuts``."""
    state, starts = _empty_state(), []
    bounds = [0, *cuts, len(lengths)]
    for a, b in zip(bounds, bounds[1:]):
        for start, stop, opens in plan_chunks(state, lengths[a:b], max_segments, max_tokens):
            if opens:
                state = replace(state, chunk_segments=0, chunk_tokens=0)
                starts.append(a + start)
            run = lengths[a + start : a + stop]
            state = replace(
                state, chunk_segments=state.chunk_segments + len(run), chunk_tokens=state.chunk_tokens + sum(run)
            )
    return starts


# ---------------------------------------------------------------------------------------- plan_chunks
@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 40), max_size=40),
    cuts=st.lists(st.integers(0, 40), max_size=6),
    max_segments=st.integers(1, 6),
    max_tokens=st.integers(1, 80),
)
def test_chunk_boundaries_depend_only_on_lengths(lengths, cuts, max_segments, max_tokens):
    cuts = sorted({c for c in cuts if 0 < c < len(lengths)})
    whole = _chunk_starts(lengths, [], max_segments, max_tokens)
    assert _chunk_starts(lengths, cuts, max_segments, max_tokens) == whole
    # Every chunk respects both budgets (a single over-long segment gets a chunk of its own).
    for a, b in zip(whole, [*whole[1:], len(lengths)]):
        assert 1 <= b - a <= max_segments
        assert sum(lengths[a:b]) <= max_tokens or b - a == 1


def test_plan_chunks_continues_the_open_chunk():
    state = replace(_empty_state(), chunk_segments=2, chunk_tokens=10)
    assert plan_chunks(state, [5, 5, 5], max_segments=3, max_tokens=100) == [(0, 1, False), (1, 3, True)]
    assert plan_chunks(state, [], max_segments=3, max_tokens=100) == []
    assert plan_chunks(_empty_state(), [50, 60], max_segments=8, max_tokens=100) == [(0, 1, True), (1, 2, True)]


# ---------------------------------------------------------------------------------------- length_batches
@settings(max_examples=200, deadline=None)
@given(lengths=st.lists(st.integers(0, 500), max_size=60), max_rows=st.integers(1, 20))
def test_length_batches_cover_every_row_once_within_max_rows(lengths, max_rows):
    batches = length_batches(lengths, max_rows)
    assert sorted(i for rows in batches for i in rows) == list(range(len(lengths)))
    assert all(1 <= len(rows) <= max_rows for rows in batches)


def test_length_batches_group_similar_lengths():
    batches = length_batches([3, 400, 5, 410, 4], max_rows=8)
    assert sorted(map(sorted, batches)) == [[0, 2, 4], [1, 3]]


# ---------------------------------------------------------------------------------------- advance
@pytest.fixture(scope="module")
def packed_model(tiny_causal_model) -> EvoEmbeddingModel:
    """The tiny causal model with packed chunk evolution and random adapters."""
    config = EvoEmbeddingConfig(**{**tiny_causal_model.config.__dict__, "evolution": "packed"})
    return randomize_adapters(EvoEmbeddingModel(config, device="cpu"), seed=3, std=0.2)


@pytest.mark.parametrize("which", ["rows", "packed"])
def test_advance_is_causal_and_split_invariant(which, adapted_tiny_causal_model, packed_model):
    model = adapted_tiny_causal_model if which == "rows" else packed_model
    ids = model.tokenize(TURNS)
    other = model.tokenize(["Zed: something else entirely, in a longer turn."])
    with torch.inference_mode():
        whole, _ = advance(model, StreamState.empty(model), ids)
        changed, _ = advance(model, StreamState.empty(model), ids[:4] + other + ids[5:])
        first, state = advance(model, StreamState.empty(model), ids[:2])
        rest, _ = advance(model, state, ids[2:])
    # A later segment never changes an earlier vector ...
    torch.testing.assert_close(changed[:4], whole[:4], atol=ATOL, rtol=0)
    assert (changed[5:] - whole[5:]).abs().max() > 1e-3  # ... but it does change the later ones
    # ... and the call boundaries do not matter.
    torch.testing.assert_close(torch.cat([first, rest]), whole, atol=ATOL, rtol=0)


def test_advance_keeps_the_memory_bounded(adapted_tiny_causal_model):
    model = adapted_tiny_causal_model
    with torch.inference_mode():
        vectors, state = advance(model, StreamState.empty(model), model.tokenize(TURNS))
    assert vectors.shape == (len(TURNS), model.output_dim)
    assert state.length == len(TURNS)
    assert state.memory.shape[0] == model.config.capacity
    empty, same = advance(model, state, [])
    assert empty.shape == (0, model.output_dim) and same is state


# ---------------------------------------------------------------------------------------- represent_queries
def test_represent_queries_over_several_states_equals_one_at_a_time(adapted_minilm_model):
    model = adapted_minilm_model
    queries = model.tokenize(["Where does Ana live now?", "What is the cat called?", "Weather?"], query=True)
    with torch.inference_mode():
        states = [StreamState.empty(model)]
        for end in (2, 4, 7):
            states.append(advance(model, StreamState.empty(model), model.tokenize(TURNS[:end]))[1])
        rows = [(s, q) for s in states for q in queries]
        batched = represent_queries(model, [s for s, _ in rows], [q for _, q in rows], max_rows=5)
        single = torch.cat([represent_queries(model, s, [q]) for s, q in rows])
        torch.testing.assert_close(batched, single, atol=ATOL, rtol=0)
        # One state for all queries, and one query over several states.
        torch.testing.assert_close(represent_queries(model, states[2], queries), single[6:9], atol=ATOL, rtol=0)
        over_states = represent_queries(model, states, queries[:1])
        torch.testing.assert_close(over_states, single[0::3], atol=ATOL, rtol=0)
    assert (single[0] - single[9]).abs().max() > 1e-3  # the memory matters
    assert represent_queries(model, states[0], []).shape == (0, model.output_dim)
    with pytest.raises(ValueError, match="one state per query"):
        represent_queries(model, states[:2], queries)


def test_represent_queries_keeps_autograd_for_training(adapted_tiny_causal_model):
    model = adapted_tiny_causal_model
    vector = represent_queries(model, StreamState.empty(model), model.tokenize(["Where?"], query=True))[0]
    assert vector.requires_grad
    vector.sum().backward()
    grads = [p.grad for n, p in model.trainable_named_parameters() if "lora_A.retriever" in n]
    assert grads and all(g is not None for g in grads)
    model.zero_grad(set_to_none=True)
