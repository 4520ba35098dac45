"""Static baselines on the same candidates: dense mean-pooled MiniLM and BM25."""

from __future__ import annotations

import numpy as np

from ..lexical import LexicalIndex
from ..static import StaticEmbedder
from .conversation import Conversation


class DenseBaseline:
    """Every turn and question encoded on its own by a :class:`StaticEmbedder`; cosine scores.
    ``query_prefix`` is put before every question (e.g. an instruction, to measure what it does)."""

    def __init__(self, embedder: StaticEmbedder, *, query_prefix: str = "", name: str = "minilm") -> None:
        self.embedder, self.query_prefix, self.name = embedder, query_prefix, name

    def score(self, conversation: Conversation, progress: bool = False) -> np.ndarray:
        docs = self.embedder.encode([s.text for s in conversation.candidates], progress=progress)
        queries = self.embedder.encode([self.query_prefix + q.text for q in conversation.questions])
        return queries @ docs.T


class BM25Baseline:
    """Okapi BM25 (:class:`~evoembedding_core.lexical.LexicalIndex`) over each turn's words."""

    name = "bm25"
    lexical = True
    """A score of 0 means no shared word: fusion leaves such turns out of this system's ranking."""

    def score(self, conversation: Conversation, progress: bool = False) -> np.ndarray:
        index = LexicalIndex([s.text for s in conversation.candidates])
        rows = [index.score_array(q.text) for q in conversation.questions]
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(conversation.candidates))
