"""Which stream a LangChain document is read in: the stream-key rule shared by the vector store and
the embeddings.

A document's stream is, in order of precedence:

1. its metadata's ``"stream_id"`` (an explicit stream always wins);
2. the **stream key**: a metadata key (``"source"`` by default, so each source file is its own
   stream) whose value names the stream, or a callable ``Document -> stream id``;
3. ``"default"``.

Documents of different sources are then independent streams: the chunks of file B are not read
over the memory of file A, and re-indexing one file re-reads only that file's stream.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.documents import Document

from ..store import DEFAULT_STREAM

__all__ = ["DEFAULT_STREAM_KEY", "StreamKey", "check_stream_key", "stream_of", "streams_of"]

StreamKey = str | Callable[[Document], Any] | None
"""A metadata key, a callable ``Document -> stream id``, or ``None`` (only ``metadata["stream_id"]``)."""

DEFAULT_STREAM_KEY = "source"
"""The default stream key: one stream per ``metadata["source"]`` (what LangChain loaders set)."""


def check_stream_key(stream_key: Any) -> StreamKey:
    """Validate a stream key.

    Args:
        stream_key: A non-empty metadata key, a callable ``Document -> stream id``, or ``None``.

    Returns:
        The stream key, unchanged.

    Raises:
        TypeError: Not a string, a callable or ``None``.
        ValueError: An empty string.
    """
    if stream_key is None or callable(stream_key):
        return stream_key
    if not isinstance(stream_key, str):
        raise TypeError(f"stream_key must be a metadata key, a callable or None, got {type(stream_key).__name__}")
    if not stream_key.strip():
        raise ValueError("stream_key must not be empty")
    return stream_key


def stream_of(text: str, metadata: Mapping | None, stream_key: StreamKey = DEFAULT_STREAM_KEY) -> str:
    """The stream of one text with its metadata (see the module docstring for the rule).

    Args:
        text: The text (given to a callable stream key as the document's ``page_content``).
        metadata: The text's metadata, or ``None``.
        stream_key: As for :func:`check_stream_key`.

    Returns:
        The stream id (a non-empty string; other values of the key are turned into strings).
    """
    metadata = metadata if isinstance(metadata, Mapping) else {}
    explicit = metadata.get("stream_id")
    if explicit is not None:
        return _as_stream_id(explicit)
    if callable(stream_key):
        value = stream_key(Document(page_content=text, metadata=dict(metadata)))
    elif stream_key is not None:
        value = metadata.get(stream_key)
    else:
        value = None
    return DEFAULT_STREAM if value is None else _as_stream_id(value)


def streams_of(texts: Sequence[str], metadatas: Any, stream_key: StreamKey = DEFAULT_STREAM_KEY) -> list[str]:
    """One stream id per text (``metadatas``: one dict per text, or ``None``)."""
    if not isinstance(metadatas, Sequence) or len(metadatas) != len(texts):
        metadatas = [None] * len(texts)
    return [stream_of(t, m, stream_key) for t, m in zip(texts, metadatas)]


def _as_stream_id(value: Any) -> str:
    value = value if isinstance(value, str) else str(value)
    return value if value.strip() else DEFAULT_STREAM
