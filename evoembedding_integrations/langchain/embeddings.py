"""EvoEmbeddings: context-aware LangChain ``Embeddings``.

``embed_documents`` appends texts to the current stream, in order, so a vector depends on the order
of the texts and on what the stream read before; ``embed_query`` encodes a query against the current
stream's memory. Streams are kept by a :class:`~evoembedding_integrations.streams.StreamPool`.
Works with any LangChain vector store.
"""

from __future__ import annotations

import os

from langchain_core.embeddings import Embeddings

from evoembedding_core import EvoEmbeddingModel
from evoembedding_core.validation import validate_id, validate_texts

from ..store import DEFAULT_STREAM, resolve_model
from ..streams import StreamPool

__all__ = ["EvoEmbeddings"]


class EvoEmbeddings(Embeddings):
    """Context-aware, stateful LangChain embeddings: one EvoEmbedding stream per stream id.

    Example:
        >>> emb = EvoEmbeddings()                                              # doctest: +SKIP
        >>> emb.stream("ana").embed_documents(["I grew up in Porto.", "Now I live in Oslo."])  # doctest: +SKIP
        >>> emb.embed_query("Where does Ana live?")                           # doctest: +SKIP
    """

    def __init__(
        self, model: EvoEmbeddingModel | str | os.PathLike | None = None, *, stream_id: str = DEFAULT_STREAM
    ) -> None:
        """Create the embeddings.

        Args:
            model: An ``EvoEmbeddingModel``, a model name or directory, or ``None`` for the shipped
                default model (loaded once per process).
            stream_id: The stream used until :meth:`stream` switches to another.

        Raises:
            TypeError: ``stream_id`` is not a string.
            ValueError: ``stream_id`` is empty.
        """
        self.model = resolve_model(model)
        self._pool = StreamPool(self.model)
        self.stream(stream_id)

    @property
    def stream_id(self) -> str:
        """The stream that ``embed_documents`` appends to and ``embed_query`` reads."""
        return self._stream_id

    def stream(self, stream_id: str) -> EvoEmbeddings:
        """Switch to a stream (created empty on first use).

        Args:
            stream_id: The stream's id.

        Returns:
            ``self``, for chaining.

        Raises:
            TypeError: ``stream_id`` is not a string.
            ValueError: ``stream_id`` is empty or whitespace-only.
        """
        self._stream_id = validate_id(stream_id, "stream_id")
        return self

    def reset(self) -> None:
        """Clear the current stream's memory."""
        self._pool.reset(self._stream_id)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Append texts to the current stream, in order.

        Args:
            texts: Non-empty strings.

        Returns:
            One vector per text (L2-normalised).

        Raises:
            TypeError: ``texts`` is not a list of strings.
            ValueError: A text is empty or whitespace-only.
        """
        texts = validate_texts(texts)
        if not texts:
            return []
        return self._pool.add(self._stream_id, texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        """Encode a query against the current stream's memory (which it does not change).

        Args:
            text: The query.

        Returns:
            The query's vector (L2-normalised).

        Raises:
            TypeError: ``text`` is not a string.
            ValueError: ``text`` is empty or whitespace-only.
        """
        return self._pool.encode_query(self._stream_id, validate_id(text, "query")).tolist()
