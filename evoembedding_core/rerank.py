"""Reranking the EvoEmbedding way: read the candidates in order, then rank them against the query.

This is the one reranker of the library: :meth:`EvoEmbeddingClient.rerank
<evoembedding_core.client.EvoEmbeddingClient.rerank>` and the LangChain and LlamaIndex rerankers
all call :func:`rerank`.

>>> rerank(model, "Where does she live now?", ["She grew up in Rome.", "She moved to Oslo."])  # doctest: +SKIP
[(1, 0.71), (0, 0.42)]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .model import EvoEmbeddingModel
from .validation import check_positive_int, validate_id, validate_texts

__all__ = ["rerank"]


def rerank(
    model: EvoEmbeddingModel, query: str, candidates: Sequence[str], *, top_k: int | None = None
) -> list[tuple[int, float]]:
    """Rank candidates for a query with a model's context-aware vectors.

    The candidates are read in the given order by a fresh stream (so each candidate's vector depends
    on the ones before it), the query is encoded against the memory they leave, and the candidates
    are ranked by cosine similarity to the query. Ties keep the given order. The model's lock
    (:attr:`EvoEmbeddingModel.lock`) is held meanwhile, so threads sharing a model take turns.

    Args:
        model: The model that reads the candidates and encodes the query.
        query: A non-empty string.
        candidates: The texts to rank, in reading order: non-empty strings (a single string is one
            candidate). An empty list gives an empty ranking.
        top_k: Keep only the ``top_k`` best candidates; ``None`` keeps all.

    Returns:
        ``(index, score)`` pairs, best first: the candidate's position in ``candidates`` and its
        cosine similarity to the query.

    Raises:
        TypeError: ``query`` is not a string, or ``candidates`` is not a list of strings.
        ValueError: ``query`` or a candidate is empty or whitespace-only, or ``top_k`` is not a
            positive integer or ``None``.
    """
    query = validate_id(query, "query")
    candidates = validate_texts(candidates, "candidates")
    top_k = check_positive_int(top_k, "top_k", optional=True)
    if not candidates:
        return []
    with model.lock:
        stream = model.stream()
        scores = stream.add(candidates) @ stream.encode_query(query)
    order = np.argsort(-scores, kind="stable")[:top_k]
    return [(int(i), float(scores[i])) for i in order]
