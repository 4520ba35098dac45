"""The systems an evaluation compares: our model (with or without memory) and the static baselines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from ..model import EvoEmbeddingModel
from ..recurrence import StreamState, represent_queries
from ..static import StaticEmbedder
from .baselines import BM25Baseline, DenseBaseline
from .conversation import Conversation

SYSTEMS = ("evo", "evo-query-no-memory", "evo-zero-memory", "minilm", "minilm-dated", "bm25", "bm25-dated")
STREAM_BLOCK = 64
"""Segments handed to ``EvoStream.add`` per call (results do not depend on it: chunking is split-invariant)."""


class RetrievalSystem(Protocol):
    name: str

    def score(self, conversation: Conversation, progress: bool = False) -> np.ndarray:
        """Scores (n_questions, n_candidates) of every question against every candidate turn."""


class EvoSystem:
    """Our model: the whole conversation (headers and turns) is streamed in order through one
    :class:`~evoembedding_core.stream.EvoStream`; the turns' vectors are the candidates, and each
    question is encoded against the memory left after the last segment.

    ``query_memory=False`` (``evo-query-no-memory``): the same turn vectors, but the questions are
    read over an empty memory (``encode_queries(memory=False)``): the final memory holds the last
    turns of the conversation, which a question about any earlier point does not concern.
    ``zero_memory=True`` is the context-removed ablation: every turn and question is encoded over an
    empty memory (headers are not read at all). Systems built together share ``streamed`` (turn
    vectors per conversation), so the conversation is streamed once for both ``evo`` rows.
    """

    def __init__(
        self, model: EvoEmbeddingModel, *, zero_memory: bool = False, query_memory: bool = True,
        streamed: dict | None = None,
    ) -> None:
        self.model, self.zero_memory, self.query_memory = model, zero_memory, query_memory
        self.name = "evo-zero-memory" if zero_memory else "evo" if query_memory else "evo-query-no-memory"
        self.streamed = {} if streamed is None else streamed

    def score(self, conversation: Conversation, progress: bool = False) -> np.ndarray:
        questions = [q.text for q in conversation.questions]
        if self.zero_memory:
            turns = self._encode_empty([s.text for s in conversation.candidates], query=False, progress=progress)
            return self._encode_empty(questions, query=True) @ turns.T
        if conversation.name not in self.streamed:
            self.streamed.clear()  # only the conversation in progress is kept
            self.streamed[conversation.name] = self._stream(conversation, progress)
        stream, turns = self.streamed[conversation.name]
        return stream.encode_queries(questions, memory=self.query_memory) @ turns.T

    def _stream(self, conversation: Conversation, progress: bool):
        stream, vectors = self.model.stream(), []
        segments = conversation.segments
        with tqdm(total=len(segments), desc=f"{self.name} stream", unit="seg", disable=not progress, leave=False) as bar:
            for start in range(0, len(segments), STREAM_BLOCK):
                block = segments[start : start + STREAM_BLOCK]
                out = stream.add([s.text for s in block])
                vectors += [v for v, s in zip(out, block) if s.kind == "turn"]
                bar.update(len(block))
        return stream, np.stack(vectors)

    def _encode_empty(self, texts: list[str], *, query: bool, progress: bool = False) -> np.ndarray:
        tokens = self.model.tokenize(texts, query=query)
        empty = StreamState.empty(self.model)
        order = sorted(range(len(tokens)), key=lambda i: len(tokens[i]))
        out = np.zeros((len(tokens), self.model.output_dim), dtype=np.float32)
        starts = range(0, len(order), STREAM_BLOCK)
        for start in tqdm(starts, desc=f"{self.name} encode", unit="batch", disable=not progress, leave=False):
            batch = order[start : start + STREAM_BLOCK]
            with torch.inference_mode():
                out[batch] = represent_queries(self.model, empty, [tokens[i] for i in batch]).cpu().numpy()
        return out


def build_systems(
    names: list[str] | tuple[str, ...],
    model: EvoEmbeddingModel | Callable[[], EvoEmbeddingModel] | None = None,
    embedder: StaticEmbedder | None = None,
) -> list[RetrievalSystem]:
    """Systems by name (see :data:`SYSTEMS`). ``model`` may be a model or a function that loads one
    (called only when an ``evo`` system is asked for)."""
    unknown = [n for n in names if n not in SYSTEMS]
    if unknown or not names:
        raise ValueError(f"unknown system(s) {unknown}; choose from {', '.join(SYSTEMS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"systems listed twice: {list(names)}")
    if any(n.startswith("evo") for n in names):
        if model is None:
            raise ValueError("the evo systems need a model")
        model = model() if callable(model) and not isinstance(model, EvoEmbeddingModel) else model
    if embedder is None and any(n.startswith("minilm") for n in names):
        embedder = StaticEmbedder()
    streamed: dict = {}
    factories = {
        "evo": lambda: EvoSystem(model, streamed=streamed),
        "evo-query-no-memory": lambda: EvoSystem(model, query_memory=False, streamed=streamed),
        "evo-zero-memory": lambda: EvoSystem(model, zero_memory=True),
        "minilm": lambda: DenseBaseline(embedder),
        "minilm-dated": lambda: DenseBaseline(embedder, dated=True),
        "bm25": lambda: BM25Baseline(),
        "bm25-dated": lambda: BM25Baseline(dated=True),
    }
    return [factories[n]() for n in names]
