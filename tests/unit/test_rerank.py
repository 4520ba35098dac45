"""evoembedding_core.rerank: the one reranker (stream the candidates, rank by the query)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from evoembedding_core.rerank import rerank

QUERY = "Which city did Maya move to last spring?"
CANDIDATES = ["Leo fixes bicycles.", "The ferry leaves at nine.", QUERY, "Maya likes white wine with fish."]


def test_rerank_equals_streaming_the_candidates_then_the_query(minilm_model):
    ranked = rerank(minilm_model, QUERY, CANDIDATES)
    stream = minilm_model.stream()
    scores = stream.add(CANDIDATES) @ stream.encode_query(QUERY)
    assert [i for i, _ in ranked] == list(np.argsort(-scores, kind="stable"))
    np.testing.assert_allclose([s for _, s in ranked], np.sort(scores)[::-1], atol=1e-6)
    assert ranked[0][0] == 2 and all(isinstance(i, int) and isinstance(s, float) for i, s in ranked)


def test_top_k_and_empty_candidates(minilm_model):
    assert rerank(minilm_model, QUERY, CANDIDATES, top_k=2) == rerank(minilm_model, QUERY, CANDIDATES)[:2]
    assert rerank(minilm_model, QUERY, CANDIDATES, top_k=10) == rerank(minilm_model, QUERY, CANDIDATES)
    assert rerank(minilm_model, QUERY, []) == []


def test_rerank_holds_the_model_lock(tiny_causal_model):
    entered = threading.Event()
    result = []

    def other_thread():
        entered.set()
        result.append(rerank(tiny_causal_model, "q", ["a", "b"]))

    with tiny_causal_model.lock:
        worker = threading.Thread(target=other_thread)
        worker.start()
        entered.wait(5)
        worker.join(0.5)
        assert worker.is_alive() and not result  # waits for the lock
    worker.join(60)
    assert len(result) == 1 and sorted(i for i, _ in result[0]) == [0, 1]


@pytest.mark.parametrize(
    "query, candidates, top_k, error",
    [
        ("", ["a"], None, ValueError),
        (None, ["a"], None, TypeError),
        ("q", ["a", 3], None, TypeError),
        ("q", ["a", " "], None, ValueError),
        ("q", 5, None, TypeError),
        ("q", ["a"], 0, ValueError),
        ("q", ["a"], True, ValueError),
    ],
)
def test_rerank_rejects_bad_input(tiny_causal_model, query, candidates, top_k, error):
    with pytest.raises(error):
        rerank(tiny_causal_model, query, candidates, top_k=top_k)
