"""Rank metrics for evidence retrieval: Recall@k and NDCG@k from the ranks of the relevant items."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RECALL_KS = (1, 5, 10, 20)
NDCG_K = 10
SESSION_KS = (1, 5, 10)


def ranking(scores: np.ndarray) -> np.ndarray:
    """1-based rank of every item, highest score first; ties keep the earlier item first (deterministic)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1 or not np.isfinite(scores).all():
        raise ValueError("scores must be a finite 1-d array")
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(1, len(order) + 1)
    return ranks


def recall_at_k(ranks: Sequence[int], k: int) -> float:
    """Fraction of the relevant items (given by their ranks) found in the top ``k``."""
    if not len(ranks):
        raise ValueError("recall needs at least one relevant item")
    return sum(1 for r in ranks if r <= k) / len(ranks)


def ndcg_at_k(ranks: Sequence[int], k: int = NDCG_K) -> float:
    """Binary-gain NDCG@k: sum of 1/log2(rank+1) over relevant items in the top k, over the ideal."""
    if not len(ranks):
        raise ValueError("NDCG needs at least one relevant item")
    dcg = sum(1.0 / np.log2(r + 1) for r in ranks if r <= k)
    ideal = sum(1.0 / np.log2(i + 1) for i in range(1, min(len(ranks), k) + 1))
    return float(dcg / ideal)


def question_metrics(ranks: Sequence[int], session_ranks: Sequence[int] | None = None) -> dict[str, float]:
    """All metrics of one question, as fractions in [0, 1]."""
    out = {f"R@{k}": recall_at_k(ranks, k) for k in RECALL_KS}
    out[f"NDCG@{NDCG_K}"] = ndcg_at_k(ranks, NDCG_K)
    if session_ranks:
        out.update({f"S-R@{k}": recall_at_k(session_ranks, k) for k in SESSION_KS})
    return out


def mean_percent(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each metric over questions, in percent (rounded to 0.01)."""
    if not rows:
        return {}
    keys = rows[0].keys()
    return {key: round(100.0 * float(np.mean([row[key] for row in rows])), 2) for key in keys}
