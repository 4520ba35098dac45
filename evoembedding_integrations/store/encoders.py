"""What turns texts into vectors for a store: an EvoEmbedding model or a plain embedder.

Both encoders answer the same small interface (:class:`Encoder`), so the store never asks which
one it has:

* :class:`EvoEncoder` (``mode="evo"``): each stream has a memory (an
  :class:`~evoembedding_core.EvoStream`); a text's vector depends on the texts read before it in
  its stream, and a query is read over the searched stream's memory.
* :class:`PlainEncoder` (``mode="plain"``): any embedder (a LangChain ``Embeddings`` or a callable
  ``texts -> (n, d) vectors``); streams have no memory (``None``) and are only partitions.

The EvoEmbedding model code (torch, peft) is imported only when an :class:`EvoEncoder` is made,
so a plain store never loads it.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import defaults
from .index import normalise
from .records import CorruptStoreError, ModelMismatchError

PROBE_TEXT = "EvoEmbedding identity probe: the quick brown fox jumps over the lazy dog in Porto, 1987."
"""The text whose vector identifies a plain embedder (recorded when a plain store is saved)."""
PROBE_MIN_COSINE = 0.99
"""How close (cosine) the embedder's probe vector must be to the recorded one."""

if TYPE_CHECKING:
    from evoembedding_core import EvoEmbeddingModel, EvoStream


# ---------------------------------------------------------------------------------------- models
def model_lock(model: EvoEmbeddingModel) -> threading.RLock:
    """The model's own lock (see ``EvoEmbeddingModel.lock``).

    Hold it to keep a stream update and its forward passes together.
    """
    return model.lock


def resolve_model(model: EvoEmbeddingModel | str | os.PathLike | None = None) -> EvoEmbeddingModel:
    """A model instance, loaded once per process and then shared (the core's model cache).

    Args:
        model: An ``EvoEmbeddingModel`` (returned as is), ``None`` (the shipped default model), a
            model name or a directory.

    Returns:
        The model.

    Raises:
        TypeError: ``model`` is none of these.
    """
    from evoembedding_core.loading import load_model

    return load_model(model)


# ---------------------------------------------------------------------------------------- interface
class Encoder:
    """What the store asks of its encoder; :class:`EvoEncoder` and :class:`PlainEncoder` implement it.

    A stream's **memory** is whatever the encoder keeps per stream: an ``EvoStream`` (evo) or
    ``None`` (plain). The store never looks inside one.

    Attributes:
        mode: ``"evo"`` or ``"plain"``.
        model: The ``EvoEmbeddingModel``, or ``None``.
        embeddings: The plain embedder, or ``None``.
        dim: The vectors' dimension if the encoder fixes it (``None``: learned from the first vectors).
    """

    mode: str
    model: EvoEmbeddingModel | None = None
    embeddings: Any = None
    dim: int | None = None

    def new_memory(self) -> Any:
        """The memory of a new, empty stream."""
        raise NotImplementedError

    def copy_memory(self, memory) -> EvoStream:
        """A copy of a stream's memory, to inspect.

        Raises:
            ValueError: The encoder keeps no memories.
        """
        raise NotImplementedError

    def embed(self, texts: list[str], stream_of: list[str], memories: Mapping[str, Any], dim: int | None):
        """Vectors of new texts, each read in its stream (nothing given is modified).

        Args:
            texts: The checked texts.
            stream_of: Each text's stream id.
            memories: The current memory of each touched stream that exists.
            dim: The store's dimension (``None``: any).

        Returns:
            ``(vectors, memories)``: unit vectors (n, d) and each touched stream's advanced memory.
        """
        raise NotImplementedError

    def encode_query(self, query: str, memory, *, use_memory: bool, dim: int | None) -> np.ndarray:
        """One query's unit vector (d,), read over ``memory`` (an empty one if ``None`` or not ``use_memory``)."""
        raise NotImplementedError

    def query_vectors(self, query: str, memories: Sequence, *, use_memory: bool, dim: int | None) -> np.ndarray:
        """The query's unit vector read over each of ``memories``: (len(memories), d)."""
        raise NotImplementedError

    def identity(self) -> dict:
        """What a saved store records about its encoder: ``{"model": ..., "embedder": ...}``."""
        raise NotImplementedError

    def check_identity(self, header: Mapping, *, strict: bool = True) -> None:
        """Check a saved store's header against this encoder (``strict=False``: skip what can be skipped).

        Raises:
            ModelMismatchError: The store was written by another encoder.
        """
        raise NotImplementedError

    def memory_state(self, memory) -> dict | None:
        """A memory as ``{"memory", "chunk_memory": float32 arrays, "meta": dict}`` (``None``: no memory)."""
        raise NotImplementedError

    def restore_memory(self, state: Mapping | None) -> Any:
        """The memory that :meth:`memory_state` described.

        Raises:
            ValueError: The state is invalid for this encoder.
        """
        raise NotImplementedError


def make_encoder(model, embeddings, long_texts: str = defaults.LONG_TEXTS) -> EvoEncoder | PlainEncoder:
    """The encoder for ``EvoStore(model, embeddings=...)``.

    Args:
        model: An ``EvoEmbeddingModel``, a name, a directory or ``None`` (the default model).
        embeddings: ``None`` (EvoEmbedding mode), a LangChain ``Embeddings`` or a callable.
        long_texts: EvoEmbedding mode: ``"truncate"`` or ``"split"`` texts over the segment limit.

    Returns:
        A :class:`PlainEncoder` when ``embeddings`` is given, else an :class:`EvoEncoder`.

    Raises:
        ValueError: Both ``model`` and ``embeddings`` were given.
        TypeError: ``embeddings`` is neither an ``Embeddings`` nor callable, or ``model`` is not a model.
    """
    if embeddings is not None and model is not None:
        raise ValueError("pass either model (EvoEmbedding mode) or embeddings (plain mode), not both")
    if embeddings is None:
        return EvoEncoder(resolve_model(model), long_texts)
    if not (callable(embeddings) or hasattr(embeddings, "embed_documents")):
        raise TypeError("embeddings must be a LangChain Embeddings or a callable texts -> vectors")
    return PlainEncoder(embeddings)


def check_mode(header: Mapping, embeddings) -> None:
    """Refuse to open a saved store with the wrong kind of encoder.

    Args:
        header: The saved store's manifest (``mode`` already checked to be ``"evo"`` or ``"plain"``).
        embeddings: The embedder given to ``EvoStore.load`` (``None``: EvoEmbedding mode).

    Raises:
        ModelMismatchError: A plain store without ``embeddings``, or an EvoEmbedding store with them.
    """
    if header["mode"] == "plain" and embeddings is None:
        raise ModelMismatchError(
            f"this store was built with plain embeddings ({header.get('embedder')}): pass embeddings="
        )
    if header["mode"] == "evo" and embeddings is not None:
        raise ModelMismatchError("this store was built with an EvoEmbedding model: pass model=, not embeddings=")


# ---------------------------------------------------------------------------------------- plain
class PlainEncoder(Encoder):
    """Any embedder: vectors are normalised, streams have no memory.

    Args:
        embeddings: A LangChain ``Embeddings`` (``embed_documents`` / ``embed_query``) or a
            callable ``texts -> (n, d) vectors``.
    """

    mode = "plain"

    def __init__(self, embeddings) -> None:
        self.embeddings = embeddings
        self._probe: list[float] | None = None

    def new_memory(self) -> None:
        return None

    def copy_memory(self, memory) -> EvoStream:
        raise ValueError("a plain store has no stream memories")

    def embed(self, texts, stream_of, memories, dim):
        if hasattr(self.embeddings, "embed_documents"):
            raw = self.embeddings.embed_documents(texts)
        else:
            raw = self.embeddings(texts)
        vectors = normalise(raw, dim, "document vectors")
        if len(vectors) != len(texts):
            raise ValueError(f"the embedder returned {len(vectors)} document vectors for {len(texts)} texts")
        return vectors, {}

    def encode_query(self, query, memory, *, use_memory, dim) -> np.ndarray:
        if hasattr(self.embeddings, "embed_query"):
            raw = [self.embeddings.embed_query(query)]
        else:
            raw = self.embeddings([query])
        return normalise(raw, dim, "query vector")[0]

    def query_vectors(self, query, memories, *, use_memory, dim) -> np.ndarray:
        vector = self.encode_query(query, None, use_memory=False, dim=dim)
        return np.repeat(vector[None], len(memories), axis=0)

    def identity(self) -> dict:
        """The embedder's class name and its vector of :data:`PROBE_TEXT` (``embedder_probe``,
        computed once; ``None`` if the embedder fails on it)."""
        if self._probe is None:
            try:
                self._probe = [round(float(x), 6) for x in self.embed([PROBE_TEXT], ["probe"], {}, None)[0][0]]
            except Exception:  # an embedder that cannot embed the probe is recorded without one
                return {"model": None, "embedder": type(self.embeddings).__name__, "embedder_probe": None}
        return {"model": None, "embedder": type(self.embeddings).__name__, "embedder_probe": self._probe}

    def check_identity(self, header, *, strict: bool = True) -> None:
        """Check that this embedder is the one that wrote the store: it must embed
        :data:`PROBE_TEXT` as recorded (cosine >= :data:`PROBE_MIN_COSINE`). Stores saved before
        the probe was recorded are not checked; ``strict=False`` skips the check.

        Raises:
            ModelMismatchError: The embedder's probe vector differs from the recorded one.
            CorruptStoreError: The recorded probe is not a list of finite numbers.
        """
        recorded = header.get("embedder_probe")
        if not strict or recorded is None:
            return
        if (
            not isinstance(recorded, list)
            or not 0 < len(recorded) <= 65_536
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in recorded)
        ):
            raise CorruptStoreError("the recorded embedder_probe is not a list of finite numbers")
        current = np.asarray(self.identity()["embedder_probe"] or [], np.float64)
        recorded = np.asarray(recorded, np.float64)
        same = (
            current.shape == recorded.shape
            and float(current @ recorded) / max(float(np.linalg.norm(recorded)), 1e-12) >= PROBE_MIN_COSINE
        )
        if not same:
            raise ModelMismatchError(
                f"this store was written by another embedder ({header.get('embedder')}): the given "
                f"{type(self.embeddings).__name__} embeds a probe text differently, so stored and new vectors "
                "would not be comparable. Open it with the embedder that built it, or pass check_embedder=False "
                "if you know they are the same"
            )

    def memory_state(self, memory) -> None:
        return None

    def restore_memory(self, state) -> None:
        if state is not None:
            raise ValueError("a plain store has no stream memories")
        return None


# ---------------------------------------------------------------------------------------- evo
class EvoEncoder(Encoder):
    """An EvoEmbedding model: one memory per stream, queries read over the stream's memory.

    Every forward pass holds the model's lock. Queries go through
    :func:`evoembedding_core.recurrence.represent_queries`, the one definition of how a query is
    read in every mode (adapter or ``native``), so stored and query vectors always come from the
    same encoder. With ``long_texts="split"`` a text over the model's segment limit is read as
    several consecutive segments (:mod:`evoembedding_core.splitting`), and its vector is the
    normalised mean of theirs.

    Args:
        model: The loaded ``EvoEmbeddingModel``.
        long_texts: ``"truncate"`` or ``"split"``.
    """

    mode = "evo"

    def __init__(self, model: EvoEmbeddingModel, long_texts: str = defaults.LONG_TEXTS) -> None:
        from evoembedding_core.splitting import check_long_texts, mean_per_text, segments_of
        from evoembedding_core.stream import EvoStream, add_many

        self.model = model
        self.dim = model.output_dim
        self._stream_class, self._add_many = EvoStream, add_many
        self._segments, self._mean = segments_of, mean_per_text
        self.long_texts = check_long_texts(long_texts)

    def new_memory(self) -> EvoStream:
        return self._stream_class(self.model)

    def copy_memory(self, memory: EvoStream) -> EvoStream:
        return self._stream_class(self.model).load_state_dict(memory.state_dict())

    def embed(self, texts, stream_of, memories, dim):
        vectors = np.zeros((len(texts), self.model.output_dim), np.float32)
        rows = {sid: [i for i, s in enumerate(stream_of) if s == sid] for sid in dict.fromkeys(stream_of)}
        readers = {
            sid: self.copy_memory(memories[sid]) if memories.get(sid) is not None else self.new_memory() for sid in rows
        }
        split = [self._segments(self.model, [texts[i] for i in r], self.long_texts) for r in rows.values()]
        with model_lock(self.model):  # the streams' rows share forward calls
            per_stream = self._add_many(list(readers.values()), [pieces for pieces, _ in split])
        for r, (_, owners), piece_vectors in zip(rows.values(), split, per_stream):
            vectors[r] = self._mean(piece_vectors, owners, len(r))
        return vectors, readers

    def encode_query(self, query, memory, *, use_memory, dim) -> np.ndarray:
        reader = memory if memory is not None else self.new_memory()
        with model_lock(self.model):
            return reader.encode_query(query, memory=use_memory)

    def query_vectors(self, query, memories, *, use_memory, dim) -> np.ndarray:
        if not use_memory or self.model.config.native or not memories:
            # the query does not depend on the memory: one vector serves every stream
            vector = self.encode_query(query, None, use_memory=False, dim=dim)
            return np.repeat(vector[None], len(memories), axis=0)
        import torch

        from evoembedding_core.recurrence import represent_queries

        tokens = self.model.tokenize([query], query=True)
        with model_lock(self.model), torch.inference_mode():
            vectors = represent_queries(self.model, [memory.state for memory in memories], tokens)
        return vectors.float().cpu().numpy()

    def identity(self) -> dict:
        return {"model": self.model.fingerprint(), "embedder": None}

    def check_identity(self, header, *, strict: bool = True) -> None:
        if header.get("model") != self.model.fingerprint():
            raise ModelMismatchError(
                "this store was written by a different model (fingerprint mismatch): load it with the model "
                "that built it, or re-embed the texts with this one"
            )

    def memory_state(self, memory: EvoStream) -> dict:
        state = memory.state_dict()
        return {
            "memory": state["memory"].float().numpy(),
            "chunk_memory": state["chunk_memory"].float().numpy(),
            "meta": state["meta"],
        }

    def restore_memory(self, state) -> EvoStream:
        import torch

        tensors = {name: torch.from_numpy(np.array(state[name], copy=True)) for name in ("memory", "chunk_memory")}
        return self._stream_class(self.model).load_state_dict({**tensors, "meta": state["meta"]})
