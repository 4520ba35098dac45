"""EvoMemoryBlock: a LlamaIndex long-term memory block with one EvoEmbedding stream per session (or user).

LlamaIndex's ``Memory`` keeps the recent chat in its short-term queue and hands the messages that
overflow it to its memory blocks, tagged with the memory's ``session_id``. This block reads each
message, in order, into the stream of its session, so every message's vector depends on the
earlier turns of the same conversation and never on another session's; retrieval searches that
stream only, with the recent messages as the query. Give it a fixed ``stream_id`` (a user id, say)
to share one stream across a user's sessions instead.
"""

from __future__ import annotations

import asyncio
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, TextBlock
from llama_index.core.memory.memory import BaseMemoryBlock
from llama_index.core.prompts import BasePromptTemplate, PromptTemplate, RichPromptTemplate
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery
from pydantic import Field, field_validator

from evoembedding_core.validation import validate_id

from ..store import DEFAULT_STREAM
from .vector_stores import EvoVectorStore

__all__ = ["EvoMemoryBlock"]

SESSION_KEY = "session_id"


class EvoMemoryBlock(BaseMemoryBlock[str]):
    """Long-term chat memory on an :class:`EvoVectorStore`: one stream per session, or per ``stream_id``.

    Each message flushed out of the ``Memory``'s short-term queue becomes one node,
    ``"<role>: <text>"``, read into its session's stream in order (metadata ``session_id`` and
    ``role``). :meth:`aget` encodes the last ``retrieval_context_window`` messages as the query
    against that stream's memory and returns the ``similarity_top_k`` best earlier messages, oldest
    first. Sessions never see each other's messages.

    Example:
        >>> from llama_index.core.memory import Memory                            # doctest: +SKIP
        >>> block = EvoMemoryBlock(vector_store=EvoVectorStore())                # doctest: +SKIP
        >>> memory = Memory.from_defaults(session_id="ana-1", memory_blocks=[block])  # doctest: +SKIP
        >>> # one stream per user instead: EvoMemoryBlock(vector_store=store, stream_id="user:ana")
    """

    name: str = Field(default="RetrievedMessages", description="The name of the memory block.")
    vector_store: EvoVectorStore = Field(
        default_factory=EvoVectorStore, description="Where the messages are kept (one stream per session)."
    )
    stream_id: str | None = Field(
        default=None, description="A fixed stream for every session (e.g. a user id); None: the session's own stream."
    )
    similarity_top_k: int = Field(default=2, gt=0, description="How many earlier messages to retrieve.")
    retrieval_context_window: int = Field(
        default=5, gt=0, description="How many of the latest messages form the query."
    )
    format_template: BasePromptTemplate = Field(
        default=RichPromptTemplate("{{ text }}"), description="Template of the retrieved text ({{ text }})."
    )

    @field_validator("stream_id")
    @classmethod
    def _check_stream_id(cls, value: str | None) -> str | None:
        return None if value is None else validate_id(value, "stream_id")

    @field_validator("format_template", mode="before")
    @classmethod
    def _template(cls, value: Any) -> Any:
        if isinstance(value, str):
            return RichPromptTemplate(value) if "{{" in value else PromptTemplate(value)
        return value

    def stream_for(self, session_id: str | None) -> str:
        """The stream that holds a session's messages.

        Args:
            session_id: The ``Memory``'s session id (``None``: no session).

        Returns:
            ``stream_id`` when set, else the session id (``"default"`` without one).
        """
        return self.stream_id or session_id or DEFAULT_STREAM

    @staticmethod
    def _text(message: ChatMessage) -> str:
        return " ".join(block.text for block in message.blocks if isinstance(block, TextBlock) and block.text.strip())

    async def _aput(self, messages: list[ChatMessage]) -> None:
        """Read the messages, in order, into their sessions' streams (messages without text are skipped)."""
        nodes = []
        for message in messages:
            session_id = message.additional_kwargs.pop(SESSION_KEY, None)
            text = self._text(message)
            if not text:
                continue
            node = TextNode(
                text=f"{message.role.value}: {text}", metadata={SESSION_KEY: session_id, "role": message.role.value}
            )
            node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=self.stream_for(session_id))
            nodes.append(node)
        if nodes:
            await asyncio.to_thread(self.vector_store.add, nodes)

    async def _aget(
        self, messages: list[ChatMessage] | None = None, session_id: str | None = None, **block_kwargs: Any
    ) -> str:
        """The session's earlier messages that best match the latest ones (``""`` when there are none)."""
        stream = self.stream_for(session_id)
        recent = [self._text(m) for m in (messages or [])[-self.retrieval_context_window :]]
        query_text = " ".join(t for t in recent if t)
        if not query_text or stream not in self.vector_store.store.streams():
            return ""
        query = VectorStoreQuery(query_str=query_text, similarity_top_k=self.similarity_top_k, doc_ids=[stream])
        result = await asyncio.to_thread(self.vector_store.query, query)
        if not result.nodes:
            return ""
        position = {id_: i for i, id_ in enumerate(self.vector_store.store.ids(stream))}
        ordered = sorted(result.nodes, key=lambda node: position.get(node.node_id, 0))  # oldest first
        return self.format_template.format(text="\n".join(node.get_content() for node in ordered))
