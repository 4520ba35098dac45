"""Hybrid search: a BM25 ranking of the store's texts, fused with the vector ranking.

A BM25 index (:class:`~evoembedding_core.lexical.LexicalIndex`) covers the texts of the whole
store (``lexical_scope="store"``) or of one stream (``"stream"``: each stream its own word
statistics, so one tenant's writes never change another's scores), keyed by the store's labels; it
is built by the first hybrid search that needs it and then kept up to date by adds and deletes. The two rankings are combined by
reciprocal rank fusion over the best ``max(k, FUSION_DEPTH)`` items of each.

A database that ranks texts itself (the Qdrant backend's database-side search) is given each text's
BM25 terms as a sparse vector (:func:`document_terms`) and each query's (:func:`query_terms`): word
tokens hashed to uint32 indices, weighted by BM25's saturated term frequency; the database supplies
the inverse document frequency.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence

from evoembedding_core.lexical import FUSION_DEPTH, LexicalIndex, lexical_tokens, reciprocal_rank_fusion

__all__ = ["FUSION_DEPTH", "LexicalRanking", "document_terms", "fuse", "merge_rankings", "query_terms"]

SPARSE_MEAN_LENGTH = 32
"""The text length (tokens) that :func:`document_terms` normalises term frequencies against: BM25's
average document length, fixed, since a text's weights are written once while a collection's mean
length changes as it grows."""


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


def merge_rankings(rankings: Iterable[Iterable[tuple[Hashable, float, int]]], depth: int) -> list[Hashable]:
    """The ``depth`` best items of one or more rankings, merged by score.

    Args:
        rankings: Each an iterable of ``(item, score, tie key)``, best first (ties in increasing
            tie key); only its first ``depth`` items are read.
        depth: How many to return.

    Returns:
        Items, best first; ties: the earlier ranking first, then the smaller tie key.
    """
    merged = [
        (-score, n, tie, item)
        for n, ranking in enumerate(rankings)
        for item, score, tie in itertools.islice(ranking, depth)
    ]
    merged.sort(key=lambda entry: entry[:3])
    return [item for *_, item in merged[:depth]]


def term_index(token: str) -> int:
    """A word token's sparse-vector index: a uint32 from its BLAKE2b digest (the same in every process)."""
    digest = hashlib.blake2b(token.encode("utf-8", "surrogatepass"), digest_size=4).digest()
    return int.from_bytes(digest, "little")


def document_terms(text: str) -> tuple[list[int], list[float]]:
    """A stored text's BM25 terms as a sparse vector: ``(indices, weights)``, indices increasing.

    A term's weight is BM25's saturated term frequency ``tf (k1 + 1) / (tf + k1 (1 - b + b len /
    SPARSE_MEAN_LENGTH))`` with :class:`~evoembedding_core.lexical.LexicalIndex`'s ``k1`` and ``b``
    (words whose indices collide count as one term). Multiplied by the database's IDF, the dot
    product with :func:`query_terms` is the text's BM25 score.
    """
    tokens = lexical_tokens(text)
    counts = Counter(term_index(token) for token in tokens)
    k1, b = LexicalIndex.K1, LexicalIndex.B
    norm = k1 * (1 - b + b * len(tokens) / SPARSE_MEAN_LENGTH)
    indices = sorted(counts)
    return indices, [counts[i] * (k1 + 1) / (counts[i] + norm) for i in indices]


def query_terms(query: str) -> tuple[list[int], list[float]]:
    """A query's terms as a sparse vector: ``(indices, counts)`` (a repeated word counts again, as
    in :class:`~evoembedding_core.lexical.LexicalIndex`), indices increasing."""
    counts = Counter(term_index(token) for token in lexical_tokens(query))
    indices = sorted(counts)
    return indices, [float(counts[i]) for i in indices]
