"""EvoEmbeddingClient: the seed's message-level API (encode a chat, rerank candidates)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .chat import fold_chat
from .model import EvoEmbeddingModel
from .rerank import rerank


def fold_messages(messages: Sequence[dict]) -> tuple[list[str], str]:
    """Fold chat messages into history turns and the query.

    Each user message and the assistant reply after it become one turn "User: ...\\nAssistant: ...";
    a lone message becomes "User: ..." or "Assistant: ...". The last message is the query.
    (:func:`evoembedding_core.chat.fold_chat` with ``unit="pair"``.)
    """
    return fold_chat(messages, unit="pair")


class EvoEmbeddingClient:
    """Message-level client.

    >>> client = EvoEmbeddingClient()                                  # doctest: +SKIP
    >>> client.rerank("Where does she live now?", ["She grew up in Rome.", "She moved to Oslo."])  # doctest: +SKIP
    """

    def __init__(self, model: EvoEmbeddingModel | str | None = None, device=None) -> None:
        if model is None:
            model = EvoEmbeddingModel.default(device=device)
        elif isinstance(model, str):
            model = EvoEmbeddingModel.from_pretrained(model, device=device)
        self.model = model

    def encode_messages(self, messages: Sequence[dict]) -> np.ndarray:
        """Vectors of every history turn, then of the query (last row), all normalised."""
        turns, query = fold_messages(messages)
        stream = self.model.stream()
        history = stream.add(turns) if turns else np.zeros((0, self.model.output_dim), np.float32)
        return np.vstack([history, stream.encode_query(query)[None]])

    def rerank(self, query: str, candidates: Sequence[str], top_k: int | None = None, return_indices: bool = False):
        """Stream the candidates in the given order, then rank them by cosine to the query.

        Returns ``[(candidate, score), ...]`` best first, or ``[index, ...]`` with ``return_indices``.
        """
        candidates = [candidates] if isinstance(candidates, str) else candidates
        ranked = rerank(self.model, query, candidates, top_k=top_k)
        if return_indices:
            return [i for i, _ in ranked]
        return [(candidates[i], score) for i, score in ranked]
