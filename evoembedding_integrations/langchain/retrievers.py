"""EvoRetriever: a LangChain ``BaseRetriever`` over one stream of an :class:`EvoVectorStore`.

Texts or chat messages are streamed in, in order; chat messages are folded into segments by
:func:`evoembedding_core.chat.fold_messages` with ``unit="pair"`` (a user message and the reply after
it form one segment).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.messages import BaseMessage
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from evoembedding_core import EvoEmbeddingModel
from evoembedding_core.chat import fold_messages

from ..store import DEFAULT_STREAM
from .vectorstores import EvoVectorStore, to_document

__all__ = ["EvoRetriever", "to_chat_messages"]

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "user": "user", "assistant": "assistant"}


def to_chat_messages(messages: Sequence[Any]) -> list[Any]:
    """LangChain messages as ``{"role", "content"}`` dicts (dicts pass through unchanged).

    Args:
        messages: LangChain ``BaseMessage`` objects (human, ai, system) and/or chat dicts.

    Returns:
        The messages, LangChain ones converted; :mod:`evoembedding_core.chat` validates the rest.

    Raises:
        TypeError: ``messages`` is not a list.
        ValueError: A LangChain message has another type (tool, function, ...) or non-text content.
    """
    if isinstance(messages, (str, dict)) or not isinstance(messages, Sequence):
        raise TypeError("messages must be a list of {'role', 'content'} dicts or LangChain messages")
    out = []
    for i, message in enumerate(messages):
        if isinstance(message, BaseMessage):
            role = _ROLES.get(message.type)
            if role is None or not isinstance(message.content, str):
                raise ValueError(f"messages[{i}]: unsupported message type {message.type!r} or non-text content")
            message = {"role": role, "content": message.content}
        out.append(message)
    return out


class EvoRetriever(BaseRetriever):
    """Retrieve from one stream of an :class:`EvoVectorStore` (by default a new one on the default model).

    Returned documents have ``id`` set and ``score``, ``stream_id`` and ``position`` in their metadata.

    Example:
        >>> retriever = EvoRetriever(texts=["Ana grew up in Porto.", "Ana moved to Oslo."], k=1)  # doctest: +SKIP
        >>> retriever.invoke("Where does Ana live now?")                                        # doctest: +SKIP
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    vectorstore: EvoVectorStore | None = None
    k: int = Field(default=4, ge=1)
    stream_id: str | list[str] | None = DEFAULT_STREAM
    """Stream(s) searched and appended to (``None`` searches all streams; adding then goes to "default")."""
    filter: Any = None

    def __init__(
        self,
        *,
        texts: Sequence[str] | None = None,
        messages: Sequence[Any] | None = None,
        metadatas: list[dict] | None = None,
        model: EvoEmbeddingModel | str | os.PathLike | None = None,
        **kwargs: Any,
    ):
        """Create the retriever, optionally streaming texts and/or chat messages in.

        Args:
            texts: Texts to add first, in order.
            messages: Chat messages (dicts or LangChain messages) to add after ``texts``.
            metadatas: One metadata dict per text of ``texts``.
            model: The model of a new vector store (not with ``vectorstore=``).
            **kwargs: The fields: ``vectorstore``, ``k``, ``stream_id``, ``filter``.

        Raises:
            ValueError: Both ``vectorstore`` and ``model`` are given.
        """
        super().__init__(**kwargs)
        if self.vectorstore is None:
            self.vectorstore = EvoVectorStore(model)
        elif model is not None:
            raise ValueError("pass either vectorstore or model, not both")
        if texts is not None:
            self.add_texts(texts, metadatas=metadatas)
        if messages is not None:
            self.add_messages(messages)

    @property
    def _target_stream(self) -> str:
        return self.stream_id if isinstance(self.stream_id, str) else DEFAULT_STREAM

    def add_texts(
        self, texts: Sequence[str], metadatas: list[dict] | None = None, ids: list[str] | None = None
    ) -> list[str]:
        """Stream texts in, in order.

        Args:
            texts: The texts.
            metadatas: One metadata dict per text, or ``None``.
            ids: One id per text, or ``None`` for UUIDs.

        Returns:
            The ids of the added texts.
        """
        return self.vectorstore.store.add(texts, stream_id=self._target_stream, ids=ids, metadatas=metadatas)

    def add_messages(self, messages: Sequence[Any]) -> list[str]:
        """Stream chat messages in: a user message and the reply after it form one segment.

        Args:
            messages: ``{"role", "content"}`` dicts and/or LangChain human / ai / system messages.

        Returns:
            The ids of the added segments (each has ``{"kind": "turn"}`` as metadata).

        Raises:
            TypeError: ``messages`` is not a list, or a message has the wrong shape.
            ValueError: A role is unknown or a content is empty.
        """
        segments = fold_messages(to_chat_messages(messages), unit="pair")
        if not segments:
            return []
        return self.add_texts(segments, metadatas=[{"kind": "turn"} for _ in segments])

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None, filter: Any = None
    ) -> list[Document]:
        hits = self.vectorstore.store.search(
            query,
            k=self.k if k is None else k,
            stream_ids=self.stream_id,
            filter=self.filter if filter is None else filter,
        )
        return [to_document(h, score=h.score, stream_id=h.stream_id, position=h.position) for h in hits]
