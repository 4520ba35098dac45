"""Hybrid search: a BM25 ranking of the store's texts, fused with the vector ranking.

A BM25 index (:class:`~evoembedding_core.lexical.LexicalIndex`) covers the texts of the whole
store (``lexical_scope="store"``) or of one stream (``"stream"``: each stream its own word
statistics, so one tenant's writes never change another's scores), keyed by the store's labels; it
is built by the first hybrid search that needs it and then kept up to date by adds and deletes. The two rankings are combined by
reciprocal rank fusion over the best ``max(k, FUSION_DEPTH)`` items of each.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence

from evoembedding_core.lexical import FUSION_DEPTH, LexicalIndex, reciprocal_rank_fusion

__all__ = ["FUSION_DEPTH", "LexicalRanking", "fuse"]


class LexicalRanking:
    """BM25 over texts keyed by label, built on first use and maintained incrementally.

    Args:
        corpus: Called once, when the first ranking is needed: ``(labels, texts)`` of every text
            the store holds at that moment, in the order they were added.
    """

    def __init__(self, corpus: Callable[[], tuple[Sequence[int], Sequence[str]]]) -> None:
        self._corpus = corpus
        self._index: LexicalIndex | None = None

    def add(self, labels: Sequence[int], texts: Sequence[str]) -> None:
        """Index new texts (a no-op until the index is built)."""
        if self._index is not None:
            self._index.add(list(labels), list(texts))

    def remove(self, labels: Iterable[int]) -> None:
        """Forget texts (a no-op until the index is built)."""
        if self._index is not None:
            self._index.remove(list(labels))

    def reset(self) -> None:
        """Drop the index (the next ranking rebuilds it from the corpus)."""
        self._index = None

    def ranked(self, query: str) -> Iterator[tuple[int, float]]:
        """``(label, BM25 score)`` of the texts scoring above 0 for ``query``, best first (ties:
        the earlier added first); lazy, take as many as needed."""
        if self._index is None:
            labels, texts = self._corpus()
            self._index = LexicalIndex()
            self._index.add(list(labels), list(texts))
        yield from self._index.ranked(query)


def fuse(dense: Sequence[Hashable], lexical: Sequence[Hashable], k: int) -> list[tuple[Hashable, float]]:
    """The ``k`` best items of two rankings (each best first) by reciprocal rank fusion.

    Args:
        dense: Ids ranked by vector similarity.
        lexical: Ids ranked by BM25.
        k: How many to return.

    Returns:
        ``(id, fused score)`` pairs, best first.
    """
    return list(reciprocal_rank_fusion([dense, lexical]).items())[:k]
