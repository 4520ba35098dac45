"""advance_many: several streams read together give each stream exactly what advance gives it alone."""

from __future__ import annotations

import pytest
import torch
from conftest import randomize_adapters

from evoembedding_core import EvoEmbeddingConfig, EvoEmbeddingModel
from evoembedding_core.recurrence import StreamState, advance, advance_many

TURNS = [
    "Ana: I grew up in Porto, near the river.",
    "Bob: Did you like it there?",
    "Ana: Yes, but last spring I moved to Oslo for work; winter was a shock.",
    "Bob: How is the weather in Oslo?",
    "Ana: Cold, and the days are short in winter.",
    "Bob: Do you have a pet?",
    "Ana: A grey cat called Miso.",
    "Bob: Miso! Like the soup?",
    "Ana: Exactly, he is the colour of white miso.",
]
ATOL = 1e-5


@pytest.fixture(scope="module")
def small_chunks_minilm(adapted_minilm_model) -> EvoEmbeddingModel:
    """The adapted MiniLM model with 3-segment chunks, so that a few turns span several chunks."""
    config = EvoEmbeddingConfig(**{**adapted_minilm_model.config.__dict__, "chunk_segments": 3})
    model = EvoEmbeddingModel(config, device="cpu")
    model.load_state_dict(adapted_minilm_model.state_dict())
    return model.eval()


@pytest.fixture(scope="module")
def packed_model(tiny_causal_model) -> EvoEmbeddingModel:
    config = EvoEmbeddingConfig(**{**tiny_causal_model.config.__dict__, "evolution": "packed", "chunk_segments": 3})
    return randomize_adapters(EvoEmbeddingModel(config, device="cpu"), seed=3, std=0.2)


def _streams(model: EvoEmbeddingModel) -> list[list[list[int]]]:
    """Streams of different lengths and contents (one empty), some longer than one chunk."""
    ids = model.tokenize(TURNS)
    return [ids, ids[3:5], [], ids[::-1], ids[:1], ids[2:] + ids[:2]]


def _assert_same_state(a: StreamState, b: StreamState) -> None:
    torch.testing.assert_close(a.memory, b.memory, atol=ATOL, rtol=0)
    torch.testing.assert_close(a.chunk_memory, b.chunk_memory, atol=ATOL, rtol=0)
    assert (a.chunk_segments, a.chunk_tokens, a.length, a.chunk_ids) == (
        b.chunk_segments,
        b.chunk_tokens,
        b.length,
        b.chunk_ids,
    )


@pytest.mark.parametrize("which", ["minilm", "causal-rows", "packed"])
@pytest.mark.parametrize("max_rows", [4, 64])
def test_advance_many_equals_advance_per_stream(
    which, max_rows, small_chunks_minilm, adapted_tiny_causal_model, packed_model
):
    model = {"minilm": small_chunks_minilm, "causal-rows": adapted_tiny_causal_model, "packed": packed_model}[which]
    streams = _streams(model)
    with torch.inference_mode():
        # Streams that already hold some history (one mid-chunk), and fresh ones.
        starts = [StreamState.empty(model) for _ in streams]
        starts[0] = advance(model, starts[0], model.tokenize(TURNS[:2]))[1]
        starts[3] = advance(model, starts[3], model.tokenize(TURNS[4:]))[1]
        together, states = advance_many(model, starts, streams, max_rows=max_rows)
        alone = [advance(model, s, segs) for s, segs in zip(starts, streams)]
    assert len(together) == len(states) == len(streams)
    for vectors, state, (want_vectors, want_state), segs in zip(together, states, alone, streams):
        assert vectors.shape == (len(segs), model.output_dim)
        torch.testing.assert_close(vectors, want_vectors, atol=ATOL, rtol=0)
        _assert_same_state(state, want_state)
    assert states[2] is starts[2]  # a stream with nothing new keeps its state


def test_advance_many_continues_like_one_long_call(small_chunks_minilm):
    model = small_chunks_minilm
    ids = model.tokenize(TURNS)
    with torch.inference_mode():
        first, states = advance_many(model, [StreamState.empty(model)] * 2, [ids[:4], ids[:2]])
        rest, states = advance_many(model, states, [ids[4:], ids[2:]])
        whole, _ = advance(model, StreamState.empty(model), ids)
    for a, b in zip(first, rest):
        torch.testing.assert_close(torch.cat([a, b]), whole, atol=ATOL, rtol=0)


def test_advance_many_edge_cases(small_chunks_minilm):
    model = small_chunks_minilm
    assert advance_many(model, [], []) == ([], [])
    empty = StreamState.empty(model)
    vectors, states = advance_many(model, [empty, empty], [[], []])
    assert [v.shape for v in vectors] == [(0, model.output_dim)] * 2 and states == [empty, empty]
    with pytest.raises(ValueError, match="one list of segments per state"):
        advance_many(model, [empty], [[], []])


def test_eval_prefetch_streams_many_conversations_with_the_same_scores(small_chunks_minilm):
    from evoembedding_core.eval.conversation import Conversation, Question, Segment
    from evoembedding_core.eval.systems import build_systems, prefetch

    def conversation(name: str, turns: list[str]) -> Conversation:
        segments = [Segment("Session date: 1 May 2023", kind="header", date="01.05.2023")]
        segments += [Segment(t, turn_id=f"{name}-{i}", date="01.05.2023") for i, t in enumerate(turns)]
        questions = [Question(f"{name}-q", "Where does Ana live now?", (f"{name}-2",))]
        return Conversation(name=name, segments=segments, questions=questions)

    conversations = [conversation("a", TURNS), conversation("b", TURNS[::-1]), conversation("c", TURNS[2:6])]
    names = ["evo", "evo-query-no-memory-dated", "evo-zero-memory"]
    alone = build_systems(names, model=small_chunks_minilm)
    want = [[s.score(c) for s in alone] for c in conversations]
    together = build_systems(names, model=small_chunks_minilm)
    prefetch(together, conversations)
    cache = together[0].system.streamed
    assert sorted(cache) == ["a", "a-dated", "b", "b-dated", "c", "c-dated"]
    for c, scores in zip(conversations, want):
        for system, expected in zip(together, scores):
            assert system.score(c).shape == expected.shape == (1, len(c.candidates))
            assert abs(system.score(c) - expected).max() < 1e-5
    assert sorted(cache) == ["a", "a-dated", "b", "b-dated", "c", "c-dated"]  # nothing streamed again


# ------------------------------------------------------------------------------- EvoStream add_many
def test_add_many_gives_each_stream_what_add_gives_it(small_chunks_minilm):
    from evoembedding_core.stream import EvoStream, add_many

    texts = [TURNS[:5], [], TURNS[2:], TURNS[:1]]
    alone, together = ([EvoStream(small_chunks_minilm) for _ in texts] for _ in range(2))
    for stream in (alone[3], together[3]):
        stream.add(TURNS[4:6])  # a stream with a history continues it
    expected = [stream.add(t) if t else None for stream, t in zip(alone, texts)]
    got = add_many(together, texts)
    query = "Where does Ana live?"
    for n, (vectors, s_alone, s_together) in enumerate(zip(got, alone, together)):
        assert len(s_together) == len(s_alone), n
        if texts[n]:
            torch.testing.assert_close(torch.from_numpy(vectors), torch.from_numpy(expected[n]), atol=ATOL, rtol=0)
        else:
            assert vectors.shape == (0, small_chunks_minilm.output_dim)
        torch.testing.assert_close(
            torch.from_numpy(s_together.encode_query(query)),
            torch.from_numpy(s_alone.encode_query(query)),
            atol=ATOL,
            rtol=0,
        )


def test_add_many_rejects_bad_calls_before_changing_any_stream(small_chunks_minilm):
    from evoembedding_core.stream import EvoStream, add_many

    a, b = EvoStream(small_chunks_minilm), EvoStream(small_chunks_minilm)
    with pytest.raises(ValueError, match="one list of texts per stream"):
        add_many([a, b], [TURNS[:1]])
    with pytest.raises(ValueError, match="given twice"):
        add_many([a, a], [TURNS[:1], TURNS[1:2]])
    with pytest.raises(ValueError):
        add_many([a, b], [TURNS[:2], ["   "]])  # b's blank text: a is not advanced either
    assert (len(a), len(b)) == (0, 0)
    with pytest.raises(ValueError, match="different models"):
        add_many([a, EvoStream(EvoEmbeddingModel(EvoEmbeddingConfig()))], [TURNS[:1], TURNS[:1]])
