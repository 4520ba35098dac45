"""Static baselines on the same candidates: dense mean-pooled MiniLM and BM25, each optionally dated."""

from __future__ import annotations

import re

import numpy as np
from rank_bm25 import BM25Okapi

from ..static import StaticEmbedder
from .conversation import Conversation

_WORD = re.compile(r"\w+")


def candidate_texts(conversation: Conversation, *, dated: bool = False) -> list[str]:
    """The candidates' texts; ``dated`` prefixes each with its session date: ``"[29.12.2023] Emi: ..."``."""
    return [f"[{s.date}] {s.text}" if dated and s.date else s.text for s in conversation.candidates]


def bm25_tokens(text: str) -> list[str]:
    """Lower-cased ``\\w+`` tokens."""
    return _WORD.findall(text.lower())


class DenseBaseline:
    """Every turn and question encoded on its own by a :class:`StaticEmbedder`; cosine scores.
    ``query_prefix`` is put before every question (e.g. an instruction, to measure what it does)."""

    def __init__(
        self, embedder: StaticEmbedder, *, dated: bool = False, query_prefix: str = "", name: str | None = None
    ) -> None:
        self.embedder, self.dated, self.query_prefix = embedder, dated, query_prefix
        self.name = name or ("minilm-dated" if dated else "minilm")

    def score(self, conversation: Conversation, progress: bool = False) -> np.ndarray:
        docs = self.embedder.encode(candidate_texts(conversation, dated=self.dated), progress=progress)
        queries = self.embedder.encode([self.query_prefix + q.text for q in conversation.questions])
        return queries @ docs.T


class BM25Baseline:
    """Okapi BM25 (rank-bm25 defaults) over lower-cased ``\\w+`` tokens of each turn."""

    def __init__(self, *, dated: bool = False) -> None:
        self.dated = dated
        self.name = "bm25-dated" if dated else "bm25"

    def score(self, conversation: Conversation, progress: bool = False) -> np.ndarray:
        index = BM25Okapi([bm25_tokens(t) for t in candidate_texts(conversation, dated=self.dated)])
        rows = [index.get_scores(bm25_tokens(q.text)) for q in conversation.questions]
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(conversation.candidates))
