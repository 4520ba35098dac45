"""EvoEmbeddingClient: message folding, encode_messages and rerank on real MiniLM weights."""

from __future__ import annotations

import numpy as np
import pytest

from evoembedding_core import EvoEmbeddingClient
from evoembedding_core.client import fold_messages

CHAT = [
    {"role": "user", "content": "I grew up in Porto."},
    {"role": "assistant", "content": "Porto is lovely."},
    {"role": "user", "content": "Last spring I moved to Oslo."},
    {"role": "assistant", "content": "Quite a change!"},
    {"role": "user", "content": "Where do I live now?"},
]


def test_fold_messages_pairs_user_and_assistant_turns():
    turns, query = fold_messages(CHAT)
    assert turns == [
        "User: I grew up in Porto.\nAssistant: Porto is lovely.",
        "User: Last spring I moved to Oslo.\nAssistant: Quite a change!",
    ]
    assert query == "Where do I live now?"


def test_fold_messages_unpaired_roles():
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Hi."},
        {"role": "user", "content": "Anyone there?"},
        {"role": "assistant", "content": "Yes."},
        {"role": "user", "content": "Good."},
    ]
    turns, query = fold_messages(messages)
    assert turns == ["System: Be brief.", "Assistant: Hello!", "User: Hi.", "User: Anyone there?\nAssistant: Yes."]
    assert query == "Good."
    assert fold_messages(CHAT[-1:]) == ([], "Where do I live now?")


@pytest.mark.parametrize(
    "messages, match",
    [
        ([], "non-empty list"),
        ("hello", "non-empty list"),
        ([{"role": "user"}], r"messages\[0\] must be a dict"),
        ([{"role": "bot", "content": "hi"}], r"messages\[0\]\['role'\]"),
        ([{"role": "user", "content": "  "}], r"messages\[0\]\['content'\]"),
    ],
)
def test_fold_messages_rejects_bad_input(messages, match):
    with pytest.raises(ValueError, match=match):
        fold_messages(messages)


def test_encode_messages_equals_streaming_the_turns(minilm_model):
    vectors = EvoEmbeddingClient(minilm_model).encode_messages(CHAT)
    turns, query = fold_messages(CHAT)
    stream = minilm_model.stream()
    expected = np.vstack([stream.add(turns), stream.encode_query(query)[None]])
    assert vectors.shape == (3, minilm_model.output_dim)
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_rerank_puts_an_exact_duplicate_first(minilm_model):
    client = EvoEmbeddingClient(minilm_model)
    query = "Which city did Maya move to last spring?"
    candidates = ["Leo fixes bicycles.", "The ferry leaves at nine.", query, "Maya likes white wine with fish."]
    ranked = client.rerank(query, candidates)
    assert [c for c, _ in ranked][0] == query
    scores = [s for _, s in ranked]
    assert scores == sorted(scores, reverse=True) and len(ranked) == 4
    assert client.rerank(query, candidates, top_k=2, return_indices=True) == (
        [query, ranked[1][0]],
        [2, candidates.index(ranked[1][0])],
    )


@pytest.mark.parametrize(
    "query, candidates, top_k, error",
    [
        ("", ["a"], None, ValueError),
        ("q", ["a", 3], None, TypeError),
        ("q", ["a"], 0, ValueError),
        ("q", ["a"], True, ValueError),
        (None, ["a"], None, TypeError),
    ],
)
def test_rerank_rejects_bad_input(tiny_causal_model, query, candidates, top_k, error):
    with pytest.raises(error):
        EvoEmbeddingClient(tiny_causal_model).rerank(query, candidates, top_k=top_k)


def test_client_loads_a_saved_model_by_path(adapted_tiny_causal_model, tmp_path):
    adapted_tiny_causal_model.save_pretrained(tmp_path / "m")
    client = EvoEmbeddingClient(str(tmp_path / "m"), device="cpu")
    assert client.model.fingerprint() == adapted_tiny_causal_model.fingerprint()
    np.testing.assert_array_equal(
        client.encode_messages(CHAT), EvoEmbeddingClient(adapted_tiny_causal_model).encode_messages(CHAT)
    )
