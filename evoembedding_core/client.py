"""EvoEmbeddingClient: the message-level API (encode a chat, rerank candidates, pick history turns).

The client accepts the calls of the EvoEmbedding model card: the constructor keywords
``model_path``, ``tokenizer_name``, ``device`` and ``model_name``, ``rerank(...,
return_indices=True)`` returning ``(ranked_candidates, ranked_indices)``, and
``send_message_retrieve``. :data:`EvoRAGClient` is the same class under the card's other name.

>>> client = EvoEmbeddingClient(model_path="MiG-NJU/EvoEmbedding-4B", device="cpu")  # doctest: +SKIP
>>> ranked_candidates, ranked_indices = client.rerank(query, candidates, top_k=1, return_indices=True)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from .chat import fold_chat
from .model import EvoEmbeddingModel
from .rerank import rerank
from .validation import check_bool, check_positive_int, validate_id

__all__ = ["EvoEmbeddingClient", "EvoRAGClient", "fold_messages"]


def fold_messages(messages: Sequence[dict]) -> tuple[list[str], str]:
    """Fold chat messages into history turns and the query.

    Each user message and the assistant reply right after it become one turn
    ``"User: ...\\nAssistant: ..."``; any other message becomes ``"User: ..."``,
    ``"Assistant: ..."`` or ``"System: ..."``. The last message is the query. This is
    :func:`evoembedding_core.chat.fold_chat` with ``unit="pair"``.

    Args:
        messages: A non-empty list of ``{"role", "content"}`` dicts.

    Returns:
        ``(turns, query)``: the history turns and the last message's content.

    Raises:
        ValueError: The list is empty or malformed, a role is unknown or a content is empty.
        TypeError: A content is not a string.
    """
    return fold_chat(messages, unit="pair")


class EvoEmbeddingClient:
    """Message-level client over one :class:`EvoEmbeddingModel`.

    >>> client = EvoEmbeddingClient()                                  # doctest: +SKIP
    >>> client.rerank("Where does she live now?", ["She grew up in Rome.", "She moved to Oslo."])  # doctest: +SKIP
    [('She moved to Oslo.', 0.71), ('She grew up in Rome.', 0.42)]

    Every method reads with the same engine (:func:`evoembedding_core.rerank.rerank` and
    :class:`~evoembedding_core.stream.EvoStream`) and holds the model's lock while it does, so
    threads may share a client.

    Attributes:
        model: The :class:`EvoEmbeddingModel` in use.
        model_name: The label given as ``model_name`` (``"EvoEmbedding"`` by default).
    """

    def __init__(
        self,
        model: EvoEmbeddingModel | str | os.PathLike | None = None,
        device=None,
        *,
        model_path: str | os.PathLike | None = None,
        tokenizer_name: str | os.PathLike | None = None,
        model_name: str | None = None,
        dtype=None,
    ) -> None:
        """Load or wrap a model.

        The model card's keywords are keyword-only here; ``model`` and ``device`` are also positional.

        Args:
            model: An :class:`EvoEmbeddingModel`, or a hub id or directory to load one from;
                ``None`` (and no ``model_path``) loads the shipped default model.
            device: Where to load the model (``"cpu"``, ``"cuda"``, ...); ``None`` picks one.
            model_path: A hub id (e.g. ``"MiG-NJU/EvoEmbedding-4B"``) or a directory: a released
                EvoEmbedding checkpoint or a model saved by
                :meth:`EvoEmbeddingModel.save_pretrained`. The same as passing it as ``model``.
            tokenizer_name: The base model (hub id or directory) to take the tokenizer and base
                configuration from, overriding the one the checkpoint names (its
                ``base_model_name_or_path``), e.g. a local copy of ``Qwen/Qwen3-4B-Instruct-2507``.
                Only when loading from ``model``/``model_path``.
            model_name: A label for this client (kept as :attr:`model_name`); it selects nothing.
            dtype: The weights' dtype (``torch.float32``, ``torch.bfloat16``); ``None`` picks the
                device's default.

        Raises:
            ValueError: Both ``model`` and ``model_path`` are given, or ``tokenizer_name`` is given
                without a model to load.
            TypeError: ``model`` is not a model, a string or a path, or ``model_name`` is not a string.
        """
        self.model_name = validate_id(model_name, "model_name", optional=True) or "EvoEmbedding"
        if model_path is not None:
            if model is not None:
                raise ValueError("pass either model or model_path, not both")
            model = model_path
        if isinstance(model, EvoEmbeddingModel) or model is None:
            if tokenizer_name is not None:
                raise ValueError("tokenizer_name applies when loading a checkpoint: pass model_path as well")
            self.model = model if model is not None else EvoEmbeddingModel.default(device=device, dtype=dtype)
            return
        if not isinstance(model, (str, os.PathLike)):
            raise TypeError(f"model must be an EvoEmbeddingModel, a hub id or a path, got {type(model).__name__}")
        overrides = {} if tokenizer_name is None else {"backbone": str(tokenizer_name)}
        self.model = EvoEmbeddingModel.from_pretrained(model, device=device, dtype=dtype, **overrides)

    def encode_messages(self, messages: Sequence[dict]) -> np.ndarray:
        """Vectors of a chat's history turns and of its query.

        The history (all messages but the last, folded as by :func:`fold_messages`) is read in order
        by a fresh stream; the last message is encoded as a query against the memory it leaves.

        Args:
            messages: A non-empty list of ``{"role", "content"}`` dicts, in conversation order.

        Returns:
            A float32 array of shape ``(turns + 1, dim)``: one row per history turn, then the query
            (last row), all of unit length.

        Raises:
            ValueError: The messages are empty or malformed.
            TypeError: A content is not a string.
        """
        turns, query = fold_messages(messages)
        with self.model.lock:
            stream = self.model.stream()
            history = stream.add(turns) if turns else np.zeros((0, self.model.output_dim), np.float32)
            return np.vstack([history, stream.encode_query(query)[None]])

    def rerank(
        self, query: str, candidates: Sequence[str], top_k: int | None = None, return_indices: bool = False
    ) -> list[tuple[str, float]] | tuple[list[str], list[int]]:
        """Rank candidates for a query: stream them in the given order, then rank by cosine to the query.

        Args:
            query: A non-empty string.
            candidates: The texts to rank, in reading order.
            top_k: Keep only the ``top_k`` best; ``None`` keeps all.
            return_indices: Return ``(ranked_candidates, ranked_indices)`` as the model card does.

        Returns:
            ``[(candidate, score), ...]`` best first; with ``return_indices=True`` the pair
            ``(ranked_candidates, ranked_indices)``: the candidates best first and their positions in
            ``candidates``. For positions with scores use :meth:`rerank_with_scores`.

        Raises:
            TypeError: ``query`` is not a string, ``candidates`` not a list of strings, or
                ``return_indices`` not a bool.
            ValueError: ``query`` or a candidate is empty, or ``top_k`` is not a positive integer.
        """
        check_bool(return_indices, "return_indices")
        candidates = [candidates] if isinstance(candidates, str) else candidates
        ranked = self.rerank_with_scores(query, candidates, top_k=top_k)
        if return_indices:
            return [candidates[i] for i, _ in ranked], [i for i, _ in ranked]
        return [(candidates[i], score) for i, score in ranked]

    def rerank_with_scores(
        self, query: str, candidates: Sequence[str], top_k: int | None = None
    ) -> list[tuple[int, float]]:
        """Rank candidates for a query, as positions and scores (see :func:`evoembedding_core.rerank.rerank`).

        Args:
            query: A non-empty string.
            candidates: The texts to rank, in reading order.
            top_k: Keep only the ``top_k`` best; ``None`` keeps all.

        Returns:
            ``[(index, score), ...]`` best first: each candidate's position in ``candidates`` and
            its cosine similarity to the query.

        Raises:
            TypeError: ``query`` is not a string or ``candidates`` not a list of strings.
            ValueError: ``query`` or a candidate is empty, or ``top_k`` is not a positive integer.
        """
        return rerank(self.model, query, candidates, top_k=top_k)

    def send_message_retrieve(
        self, message: Sequence[dict], rag_sentence_num: int, native: bool = False, _sorted: bool = True
    ) -> list[int]:
        """Pick the history turns most relevant to a chat's last message.

        The history (all messages but the last) is folded into turns as by :func:`fold_messages`
        (a user message and the reply after it form one turn), read in order, and ranked by the
        last message read as a query against the memory of the whole history: the same ranking as
        :meth:`rerank_with_scores` over the turns.

        Args:
            message: A non-empty list of ``{"role", "content"}`` dicts; the last one is the query.
            rag_sentence_num: How many turns to return (fewer if the history is shorter).
            native: Read with the checkpoint's bundled static embedding model instead of the
                memory. It must match how the model was loaded: a model loaded with
                ``EvoEmbeddingModel.from_pretrained(path, native=True)`` reads natively, any other
                does not.
            _sorted: Return the turn indices in conversation order; ``False`` returns them best first.

        Returns:
            Indices of the chosen history turns (0 = the first turn); an empty list when the chat
            has no history.

        Raises:
            ValueError: The messages are empty or malformed, ``rag_sentence_num`` is not a positive
                integer, or ``native`` does not match the model's mode.
            TypeError: A content is not a string, or ``native`` / ``_sorted`` is not a bool.
        """
        turns, query = fold_messages(message)
        check_positive_int(rag_sentence_num, "rag_sentence_num")
        check_bool(native, "native")
        check_bool(_sorted, "_sorted")
        if native != self.model.config.native:
            how = "natively (static vectors)" if self.model.config.native else "with its memory"
            raise ValueError(
                f"native={native}, but this client's model reads {how}: pass native={self.model.config.native}, or "
                "give the client a model loaded with EvoEmbeddingModel.from_pretrained(path, native=True) "
                "(a released checkpoint that bundles its embedding model)"
            )
        if not turns:
            return []
        indices = [i for i, _ in rerank(self.model, query, turns, top_k=rag_sentence_num)]
        return sorted(indices) if _sorted else indices


EvoRAGClient = EvoEmbeddingClient
"""The model card's other name for :class:`EvoEmbeddingClient` (the same class)."""
