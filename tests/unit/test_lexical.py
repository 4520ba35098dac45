"""BM25 index (equal to rank-bm25's BM25Okapi, kept up to date incrementally) and rank fusion."""

from __future__ import annotations

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from evoembedding_core.lexical import RANKED_HEAD, LexicalIndex, lexical_tokens, reciprocal_rank_fusion, top_ranked
from evoembedding_core.training.synth import generate


def _texts(n: int = 120) -> list[str]:
    """Realistic chat turns (the synthetic generator), plus an empty text and a punctuation-only one."""
    turns = [t for s in generate(20, seed=3) for t in s["meta"]["turns"]]
    return turns[: n - 2] + ["", "?!"]


def _reference(texts: list[str], query: str) -> np.ndarray:
    return BM25Okapi([lexical_tokens(t) for t in texts]).get_scores(lexical_tokens(query))


def test_tokens():
    assert lexical_tokens("Maya: I GREW up-in Porto!") == ["maya", "i", "grew", "up", "in", "porto"]


def test_scores_equal_rank_bm25_and_follow_adds_and_removals():
    texts = _texts()
    queries = [lexical_tokens(t) for t in texts[:5]] + [["where", "did", "i", "grow", "up", "up"], ["zzz"]]
    index = LexicalIndex(texts[:60])
    index.add(list(range(60, len(texts))), texts[60:])  # incremental adds give the same index
    for words in queries:
        query = " ".join(words)
        np.testing.assert_allclose(index.score_array(query), _reference(texts, query), rtol=1e-9, atol=1e-12)
        assert all(v != 0 for v in index.scores(query).values())  # only texts sharing a word are listed
        reference = _reference(texts, query)
        expected = [
            (int(i), pytest.approx(reference[i])) for i in np.argsort(-reference, kind="stable") if reference[i] > 0
        ]
        assert list(index.ranked(query)) == expected
    removed = list(range(0, len(texts), 3))
    index.remove(removed + [10_000])  # unknown keys are ignored
    kept = [i for i in range(len(texts)) if i not in removed]
    assert len(index) == len(kept)
    for words in queries:
        query = " ".join(words)
        scores = index.scores(query)
        assert set(scores) <= set(kept)
        got = np.array([scores.get(i, 0.0) for i in kept])
        np.testing.assert_allclose(got, _reference([texts[i] for i in kept], query), rtol=1e-9, atol=1e-12)


def test_empty_and_bad_input():
    assert LexicalIndex().scores("anything") == {} and len(LexicalIndex()) == 0
    assert LexicalIndex(["", "..."]).score_array("x").tolist() == [0.0, 0.0]  # no words: rank-bm25 would divide by 0
    index = LexicalIndex(["a cat"])
    with pytest.raises(ValueError, match="already indexed"):
        index.add([0], ["a dog"])
    with pytest.raises(ValueError, match="2 keys for 1 texts"):
        index.add([1, 2], ["a dog"])
    index.remove([0])
    assert index.scores("cat") == {}


def test_top_ranked_and_fusion():
    scores = np.array([0.0, 3.0, 1.0, 3.0, -1.0])
    assert top_ranked(scores, 3).tolist() == [1, 3, 2]  # ties: earlier first
    assert top_ranked(scores, 10, positive=True).tolist() == [1, 3, 2]
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "d"]], k=60)
    assert list(fused) == ["c", "a", "b", "d"]
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61) and fused["d"] == pytest.approx(1 / 62)
    assert list(reciprocal_rank_fusion([["x", "y"], ["y", "x"]])) == ["x", "y"]  # equal scores: first seen first


def test_ranked_and_cached_postings_match_a_fresh_index_after_edits():
    import random

    rng = random.Random(5)
    vocabulary = ["cat", "dog", "river", "oslo", "porto", "job", "the", "a", "code", "rain"]
    texts = {n: " ".join(rng.choices(vocabulary, k=rng.randint(1, 8))) for n in range(1200)}
    index = LexicalIndex()
    index.add(list(texts), list(texts.values()))
    query = "the cat by the river"
    list(index.ranked(query))  # builds the cached word arrays
    removed = rng.sample(sorted(texts), 300)
    index.remove(removed)
    for n in removed:
        del texts[n]
    added = {2000 + n: " ".join(rng.choices(vocabulary, k=4)) for n in range(200)}
    index.add(list(added), list(added.values()))
    texts.update(added)
    fresh = LexicalIndex()
    fresh.add(list(texts), list(texts.values()))
    got, expected = list(index.ranked(query)), list(fresh.ranked(query))
    assert len(got) > RANKED_HEAD  # the two-group path runs
    assert [k for k, _ in got] == [k for k, _ in expected]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], rtol=1e-12)
    # a full stable sort of every score (ties: the earlier-added text first) gives the same ranking
    full = [key for key, score in sorted(index.scores(query).items(), key=lambda kv: -kv[1]) if score > 0]
    assert [k for k, _ in got] == full
