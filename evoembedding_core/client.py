"""EvoEmbeddingClient: the seed's message-level API (encode a chat, rerank candidates)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .model import EvoEmbeddingModel
from .stream import validate_texts


def fold_messages(messages: Sequence[dict]) -> tuple[list[str], str]:
    """Fold chat messages into history turns and the query.

    Each user message and the assistant reply after it become one turn "User: ...\\nAssistant: ...";
    a lone message becomes "User: ..." or "Assistant: ...". The last message is the query.
    """
    if not isinstance(messages, Sequence) or isinstance(messages, str) or not messages:
        raise ValueError("messages must be a non-empty list of {'role', 'content'} dicts")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "content" not in message or "role" not in message:
            raise ValueError(f"messages[{i}] must be a dict with 'role' and 'content'")
        if message["role"] not in ("user", "assistant", "system"):
            raise ValueError(f"messages[{i}]['role'] must be 'user', 'assistant' or 'system', got {message['role']!r}")
        validate_texts([message["content"]], f"messages[{i}]['content']")
    *history, last = messages
    turns: list[str] = []
    i = 0
    while i < len(history):
        role, content = history[i]["role"], history[i]["content"]
        if role == "user" and i + 1 < len(history) and history[i + 1]["role"] == "assistant":
            turns.append(f"User: {content}\nAssistant: {history[i + 1]['content']}")
            i += 2
            continue
        turns.append(f"{role.capitalize()}: {content}")
        i += 1
    return turns, last["content"]


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
        (query,) = validate_texts([query], "query")
        candidates = validate_texts(candidates, "candidates")
        if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
            raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
        stream = self.model.stream()
        vectors = stream.add(candidates)
        scores = vectors @ stream.encode_query(query) if candidates else np.zeros(0, np.float32)
        order = np.argsort(-scores, kind="stable")[:top_k]
        if return_indices:
            return [int(i) for i in order]
        return [(candidates[i], float(scores[i])) for i in order]
