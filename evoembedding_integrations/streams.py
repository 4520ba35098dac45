"""StreamPool: the per-stream :class:`~evoembedding_core.EvoStream` readers behind the framework embedders.

A LangChain ``Embeddings`` and a LlamaIndex ``BaseEmbedding`` embed texts one call at a time, yet
EvoEmbedding vectors depend on what the same stream read before. A :class:`StreamPool` keeps one
reader per stream id on one model, so each call continues its stream where the previous call left
it. Streams are created empty on first use; reading a stream that was never written encodes
against an empty memory without creating it.
"""

from __future__ import annotations

import threading

import numpy as np

from evoembedding_core import EvoEmbeddingModel, EvoStream
from evoembedding_core.splitting import check_long_texts, mean_per_text, segments_of
from evoembedding_core.validation import validate_texts

from . import defaults


class StreamPool:
    """One :class:`EvoStream` per stream id over one model; thread-safe.

    Every method holds the pool's lock and then the model's own lock, so a stream update and its
    forward passes are never interleaved with another thread's.

    Example:
        >>> pool = StreamPool(model)                                        # doctest: +SKIP
        >>> pool.add("ana", ["I grew up in Porto.", "Now I live in Oslo."])   # doctest: +SKIP
        >>> pool.encode_query("ana", "Where does Ana live?")                 # doctest: +SKIP
    """

    def __init__(self, model: EvoEmbeddingModel, long_texts: str = defaults.LONG_TEXTS) -> None:
        """Create an empty pool.

        Args:
            model: The EvoEmbedding model every stream of the pool reads with.
            long_texts: A text over the segment limit: ``"truncate"`` or ``"split"`` (as in the stores).
        """
        self.model = model
        self.long_texts = check_long_texts(long_texts)
        self._streams: dict[str, EvoStream] = {}
        self._lock = threading.RLock()

    def __contains__(self, stream_id: object) -> bool:
        return stream_id in self._streams

    def __len__(self) -> int:
        return len(self._streams)

    def stream_ids(self) -> list[str]:
        """The ids of the streams that hold a reader, in creation order."""
        with self._lock:
            return list(self._streams)

    def add(self, stream_id: str, texts: list[str]) -> np.ndarray:
        """Append texts to a stream, in order.

        With ``long_texts="split"``, a text over the model's segment limit is read as several
        consecutive segments, and its vector is their normalised mean (as in the stores).

        Args:
            stream_id: The stream to continue (created empty if new).
            texts: The texts to read (non-empty strings).

        Returns:
            One L2-normalised vector per text, shape ``(len(texts), dim)``.

        Raises:
            TypeError, ValueError: Invalid texts (nothing is read).
        """
        texts = validate_texts(texts)
        pieces, owners = segments_of(self.model, texts, self.long_texts)
        with self._lock, self.model.lock:
            reader = self._streams.get(stream_id)
            if reader is None:
                reader = self._streams[stream_id] = EvoStream(self.model)
            return mean_per_text(reader.add(pieces), owners, len(texts))

    def encode_query(self, stream_id: str, query: str, *, memory: bool = True) -> np.ndarray:
        """Encode a query against a stream's current memory (which it does not change).

        Args:
            stream_id: The stream whose memory the query reads; an unknown stream reads as empty
                (and is not created).
            query: The query text.
            memory: ``False`` encodes over an empty memory whatever the stream holds.

        Returns:
            The query's L2-normalised vector, shape ``(dim,)``.
        """
        with self._lock, self.model.lock:
            reader = self._streams.get(stream_id) or EvoStream(self.model)
            return reader.encode_query(query, memory=memory)

    def reset(self, stream_id: str | None = None) -> None:
        """Forget one stream's memory, or every stream's (``None``)."""
        with self._lock:
            if stream_id is None:
                self._streams.clear()
            else:
                self._streams.pop(stream_id, None)
