"""Rank metrics and the temporal question detector on hand-made cases (exact values)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evoembedding_core.eval.metrics import mean_percent, ndcg_at_k, question_metrics, ranking, recall_at_k
from evoembedding_core.eval.temporal import temporal_direction, temporal_summary


def test_ranking_is_descending_and_ties_keep_order():
    assert ranking(np.array([0.1, 0.5, 0.5, 0.2])).tolist() == [4, 1, 2, 3]
    with pytest.raises(ValueError, match="finite"):
        ranking(np.array([0.1, np.nan]))


def test_recall_at_k_is_the_fraction_of_evidence_found():
    assert recall_at_k([1, 3, 12], 1) == pytest.approx(1 / 3)
    assert recall_at_k([1, 3, 12], 10) == pytest.approx(2 / 3)
    assert recall_at_k([1, 3, 12], 20) == 1.0
    with pytest.raises(ValueError):
        recall_at_k([], 5)


def test_ndcg_exact_values():
    assert ndcg_at_k([1]) == 1.0
    assert ndcg_at_k([2]) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k([1, 3]) == pytest.approx((1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3)))
    assert ndcg_at_k([11, 30]) == 0.0
    assert ndcg_at_k(list(range(1, 13))) == 1.0  # ideal is capped at k relevant items


def test_question_metrics_and_mean():
    m = question_metrics([2, 15], session_ranks=[1])
    assert m["R@1"] == 0 and m["R@5"] == 0.5 and m["R@20"] == 1.0 and m["S-R@1"] == 1.0
    assert m["NDCG@10"] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert "S-R@1" not in question_metrics([1])
    assert mean_percent([{"R@1": 1.0}, {"R@1": 0.0}, {"R@1": 0.0}]) == {"R@1": 33.33}


@pytest.mark.parametrize(
    "question, expected",
    [
        ("When did Nicolas first ask the girl to meet?", "first"),
        ("Which seeds were started earliest?", "first"),
        ("When was the last time Akib went ice fishing?", "last"),
        ("Where did I go on my most recent trip?", "last"),
        ("What did Emi cook last week?", None),
        ("How many books did I buy in the last two months?", None),
        ("How much time passed between the first and the last visit?", None),
        ("Where does Maya live?", None),
    ],
)
def test_temporal_direction(question, expected):
    assert temporal_direction(question) == expected


def test_temporal_summary():
    records = [
        {"direction": "first", "ranks": {"s": [1, 5]}},
        {"direction": "first", "ranks": {"s": [9, 2]}},
        {"direction": "first", "ranks": {"s": [3]}},  # one evidence turn: not counted
        {"direction": "last", "ranks": {"s": [4, 1, 2]}},
        {"direction": None, "ranks": {"s": [1, 2]}},
    ]
    out = temporal_summary(records, "s")
    assert out["first"] == {
        "n": 2,
        "median_rank_first_event": 5.0,
        "median_rank_last_event": 3.5,
        "asked_end_wins": 50.0,
    }
    assert out["last"] == {
        "n": 1,
        "median_rank_first_event": 4.0,
        "median_rank_last_event": 2.0,
        "asked_end_wins": 100.0,
    }
