"""StaticEmbedder: the context-free MiniLM baseline on the real packaged weights."""

from __future__ import annotations

import numpy as np
import pytest

from evoembedding_core.eval.systems import EvoSystem
from evoembedding_core.static import StaticEmbedder

TEXTS = [
    "Maya: I grew up in Porto, right by the river.",
    "Leo: Madrid must have been hot in summer.",
    "Maya: It was! Last spring I finally moved again, to Oslo, and I love the dark winters there.",
]


@pytest.fixture(scope="module")
def embedder() -> StaticEmbedder:
    return StaticEmbedder(batch_size=2)


def test_vectors_are_normalised_and_order_independent(embedder):
    vectors = embedder.encode(TEXTS)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    one_by_one = np.stack([embedder.encode([t])[0] for t in TEXTS])
    np.testing.assert_allclose(vectors, one_by_one, atol=1e-5)


def test_equals_untrained_model_over_empty_memory(embedder, minilm_model):
    """An untrained EvoEmbedding model with an empty memory is exactly mean-pooled MiniLM."""
    ours = EvoSystem(minilm_model, zero_memory=True)._encode_empty(TEXTS, query=False)
    np.testing.assert_allclose(embedder.encode(TEXTS), ours, atol=1e-4)


def test_semantic_neighbour_ranks_first(embedder):
    query = embedder.encode(["Which city did Maya grow up in?"])[0]
    assert int(np.argmax(embedder.encode(TEXTS) @ query)) == 0


def test_truncates_to_max_tokens(embedder):
    short = StaticEmbedder(max_tokens=8)
    long_text = TEXTS[2]
    assert not np.allclose(short.encode([long_text]), embedder.encode([long_text]), atol=1e-3)
    prefix = short.tokenizer.decode(short.tokenizer(long_text)["input_ids"][1:7])
    np.testing.assert_allclose(short.encode([long_text]), embedder.encode([prefix]), atol=1e-4)


def test_bad_input(embedder):
    with pytest.raises(ValueError, match="empty"):
        embedder.encode(["ok", "  "])
    with pytest.raises(TypeError, match=r"texts\[0\]"):
        embedder.encode([3])
    with pytest.raises(ValueError, match="batch_size"):
        StaticEmbedder(batch_size=0)
