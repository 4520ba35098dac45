"""Lexical matching for hybrid search: BM25 over word tokens, and reciprocal rank fusion of rankings.

Dense vectors miss rare exact words (names, titles, places) that BM25 matches; the two fail on
different questions, so fusing their rankings beats either (README, "Evaluation").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Hashable, Iterator, Sequence

import numpy as np

_WORD = re.compile(r"\w+")

RRF_K = 60
"""The constant of reciprocal rank fusion (Cormack et al., 2009): score = sum over rankings of 1 / (k + rank)."""
FUSION_DEPTH = 100
"""How many of each ranking's best items take part in the fusion."""
RANKED_HEAD = 256
"""How many of the best texts :meth:`LexicalIndex.ranked` sorts first (the rest only if asked for)."""


def lexical_tokens(text: str) -> list[str]:
    """Lower-cased ``\\w+`` tokens."""
    return _WORD.findall(text.lower())


class LexicalIndex:
    """Okapi BM25 over the word tokens of texts, kept up to date as texts are added and removed.

    Scores equal rank-bm25's ``BM25Okapi`` (k1 1.5, b 0.75, negative idf floored at 0.25 x the mean
    idf) over the texts present (tested); unlike it, adding or removing a text does not rebuild the
    index, and only the texts that share a word with the query are scored.
    """

    K1, B, EPSILON = 1.5, 0.75, 0.25

    def __init__(self, texts: Sequence[str] = ()) -> None:
        self._postings: dict[str, dict[int, int]] = {}  # word -> {slot: count in that text}
        self._words: list[Counter | None] = []  # per slot; None once removed
        self._lengths = np.zeros(0)
        self._slots: dict[Hashable, int] = {}
        self._keys: list[Hashable] = []
        self._total_length = 0
        self._idf: dict[str, float] | None = None  # cached until the texts change
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # word -> (slots, counts), cached
        self.add(range(len(texts)), texts)

    def __len__(self) -> int:
        return len(self._slots)

    def add(self, keys: Sequence[Hashable], texts: Sequence[str]) -> None:
        """Index texts.

        Args:
            keys: New keys, one per text.
            texts: The texts.

        Raises:
            ValueError: Lengths differ, or a key is repeated or already indexed.
        """
        if len(keys) != len(texts):
            raise ValueError(f"{len(keys)} keys for {len(texts)} texts")
        taken = [k for k in keys if k in self._slots]
        if taken or len(set(keys)) != len(keys):
            raise ValueError(f"keys already indexed or repeated: {taken[:3] or list(keys)[:3]}")
        first = len(self._words)
        self._lengths = np.concatenate([self._lengths, np.zeros(len(texts))])
        for slot, (key, text) in enumerate(zip(keys, texts), first):
            tokens = lexical_tokens(text)
            words = Counter(tokens)
            for word, count in words.items():
                self._postings.setdefault(word, {})[slot] = count
                self._arrays.pop(word, None)
            self._words.append(words)
            self._lengths[slot] = len(tokens)
            self._total_length += len(tokens)
            self._slots[key] = slot
            self._keys.append(key)
        self._idf = None

    def remove(self, keys: Sequence[Hashable]) -> None:
        """Forget texts.

        Args:
            keys: Keys of the texts to forget (unknown keys are ignored).
        """
        for key in keys:
            slot = self._slots.pop(key, None)
            if slot is None:
                continue
            for word in self._words[slot]:
                postings = self._postings[word]
                del postings[slot]
                self._arrays.pop(word, None)
                if not postings:
                    del self._postings[word]
            self._total_length -= int(self._lengths[slot])
            self._words[slot] = None
        self._idf = None

    def _word_idf(self) -> dict[str, float]:
        if self._idf is None:
            n = len(self._slots)
            words = list(self._postings)
            df = np.fromiter((len(self._postings[w]) for w in words), dtype=np.float64, count=len(words))
            idf = np.log(n - df + 0.5) - np.log(df + 0.5)
            floor = self.EPSILON * idf.mean() if len(idf) else 0.0
            self._idf = dict(zip(words, np.where(idf < 0, floor, idf).tolist()))
        return self._idf

    def _accumulate(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """BM25 score per slot, and which slots share a word with ``query``."""
        total = np.zeros(len(self._words))
        matched = np.zeros(len(self._words), dtype=bool)
        if not self._total_length:
            return total, matched
        idf, mean_length = self._word_idf(), self._total_length / len(self._slots)
        for word in lexical_tokens(query):  # a repeated query word counts again, as in rank-bm25
            arrays = self._word_arrays(word)
            if arrays is None:
                continue
            slots, counts = arrays
            norm = self.K1 * (1 - self.B + self.B * self._lengths[slots] / mean_length)
            total[slots] += idf[word] * (counts * (self.K1 + 1) / (counts + norm))
            matched[slots] = True
        return total, matched

    def _word_arrays(self, word: str) -> tuple[np.ndarray, np.ndarray] | None:
        """A word's postings as arrays (slots, counts), built once until its postings change."""
        arrays = self._arrays.get(word)
        if arrays is None:
            postings = self._postings.get(word)
            if not postings:
                return None
            slots = np.fromiter(postings, dtype=np.int64, count=len(postings))
            counts = np.fromiter(postings.values(), dtype=np.float64, count=len(postings))
            arrays = self._arrays[word] = (slots, counts)
        return arrays

    def scores(self, query: str) -> dict[Hashable, float]:
        """BM25 score of every text that shares a word with ``query`` (the others score 0), by key."""
        total, matched = self._accumulate(query)
        return {self._keys[slot]: float(total[slot]) for slot in np.flatnonzero(matched)}

    def ranked(self, query: str) -> Iterator[tuple[Hashable, float]]:
        """Rank the texts for a query, lazily: take as many as needed.

        Args:
            query: The query.

        Yields:
            ``(key, score)`` of the texts scoring above 0, best first (ties: the earlier added first).
        """
        total, _ = self._accumulate(query)
        slots = np.flatnonzero(total > 0)
        groups = [slots]
        if len(slots) > RANKED_HEAD:  # sort the best RANKED_HEAD (and their ties) first, the rest if asked
            scores = total[slots]
            threshold = np.partition(scores, len(scores) - RANKED_HEAD)[len(scores) - RANKED_HEAD]
            best = scores >= threshold
            groups = [slots[best], slots[~best]]
        for group in groups:  # each group in slot order, so a stable sort keeps ties earlier-first
            for slot in group[np.argsort(-total[group], kind="stable")]:
                yield self._keys[slot], float(total[slot])

    def score_array(self, query: str) -> np.ndarray:
        """:meth:`scores` as an array over keys ``0..n-1`` (an index built from a list of texts)."""
        out = np.zeros(len(self._slots))
        for key, value in self.scores(query).items():
            out[key] = value
        return out


def top_ranked(scores: np.ndarray, depth: int = FUSION_DEPTH, *, positive: bool = False) -> np.ndarray:
    """Indices of the ``depth`` highest scores, best first (ties: earlier index first); ``positive``
    keeps only scores above 0 (BM25: texts that share a word with the query)."""
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")[:depth]
    return order[scores[order] > 0] if positive else order


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Hashable]], k: int = RRF_K) -> dict[Hashable, float]:
    """Fused score of every item in any ranking (each best first): sum of ``1 / (k + rank)``, rank from 1.
    Returned in descending score order (ties: first seen first)."""
    fused: dict[Hashable, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, 1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return dict(sorted(fused.items(), key=lambda kv: -kv[1]))
