"""EvoStream: a stateful reader of one stream of segments (a conversation, a document, a user)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load, save_file

from .model import EvoEmbeddingModel
from .recurrence import StreamState, advance, advance_many, represent_queries
from .validation import check_int, validate_texts

__all__ = [
    "STATE_FORMAT_VERSION",
    "EvoStream",
    "add_many",
    "validate_texts",
]  # validate_texts: kept importable from here
STATE_FORMAT_VERSION = 1
MAX_STREAM_LENGTH = 2**53
"""Most segments a saved stream state may count (integers stay exact in JSON and floats below it)."""


class EvoStream:
    """Reads segments in order, keeps the latent memory, and encodes queries against it.

    >>> stream = EvoEmbeddingModel.default().stream()                  # doctest: +SKIP
    >>> stream.add(["Alice: I moved to Lyon.", "Bob: How is it?"]).shape  # doctest: +SKIP
    (2, 384)

    Not thread-safe: guard a shared stream with a lock (the stores do).

    Args:
        model: The model whose memory and adapters the stream uses.
    """

    def __init__(self, model: EvoEmbeddingModel) -> None:
        self.model = model
        self._state = StreamState.empty(model)

    def __len__(self) -> int:
        return self._state.length

    def __repr__(self) -> str:
        return f"EvoStream(segments={len(self)}, memory={self._state.memory.shape[0]}/{self.model.config.capacity})"

    @property
    def memory(self) -> torch.Tensor:
        """The FIFO queue of latents, oldest first: a (m, D) copy with m <= C."""
        return self._state.memory.clone()

    @property
    def state(self) -> StreamState:
        """The stream's immutable state (queue, open chunk, length)."""
        return self._state

    def add(self, texts: Sequence[str] | str) -> np.ndarray:
        """Append segments in order.

        Args:
            texts: The segments (a single string is one segment).

        Returns:
            Their context-aware vectors, (n, d) float32.

        Raises:
            TypeError, ValueError: Invalid texts (see :func:`~evoembedding_core.validation.validate_texts`),
                raised before anything changes, so a rejected call leaves the stream as it was.
        """
        texts = validate_texts(texts)
        if not texts:
            return np.zeros((0, self.model.output_dim), dtype=np.float32)
        with torch.inference_mode():
            vectors, state = advance(self.model, self._state, self.model.tokenize(texts))
        self._state = state
        return vectors.cpu().numpy().astype(np.float32)

    def encode_queries(self, queries: Sequence[str] | str, *, memory: bool = True) -> np.ndarray:
        """Vectors of queries against the current memory (which they do not change).

        Args:
            queries: The queries (a single string is one query).
            memory: ``False`` reads the queries over an empty memory instead: for questions about
                the whole past rather than the current context (the turns keep their context
                either way).

        Returns:
            The query vectors, (n, d) float32.

        Raises:
            TypeError, ValueError: Invalid queries.
        """
        queries = validate_texts(queries, "queries")
        if not queries:
            return np.zeros((0, self.model.output_dim), dtype=np.float32)
        state = self._state if memory else StreamState.empty(self.model)
        with torch.inference_mode():
            vectors = represent_queries(self.model, state, self.model.tokenize(queries, query=True))
        return vectors.cpu().numpy().astype(np.float32)

    def encode_query(self, query: str, *, memory: bool = True) -> np.ndarray:
        """Vector of one query against the current memory.

        Args:
            query: The query.
            memory: ``False``: read it over an empty memory.

        Returns:
            The query vector, (d,) float32.

        Raises:
            TypeError: ``query`` is not a string.
            ValueError: ``query`` is empty.
        """
        if not isinstance(query, str):
            raise TypeError(f"query must be a string, got {type(query).__name__}")
        return self.encode_queries([query], memory=memory)[0]

    def reset(self) -> None:
        """Forget everything: empty memory, length 0."""
        self._state = StreamState.empty(self.model)

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict:
        """The stream's state as plain tensors and counters.

        Returns:
            ``{"memory", "chunk_memory", "meta"}``: restores this stream exactly with
            :meth:`load_state_dict` (on the same model).
        """
        s = self._state
        return {
            "memory": s.memory.detach().cpu().clone(),
            "chunk_memory": s.chunk_memory.detach().cpu().clone(),
            "meta": {
                "format_version": STATE_FORMAT_VERSION,
                "length": s.length,
                "chunk_segments": s.chunk_segments,
                "chunk_tokens": s.chunk_tokens,
                "chunk_ids": [list(ids) for ids in s.chunk_ids],
                "model": self.model.fingerprint(),
            },
        }

    def load_state_dict(self, state: dict) -> "EvoStream":
        """Restore a state from :meth:`state_dict`.

        Args:
            state: A dict as returned by :meth:`state_dict`.

        Returns:
            This stream.

        Raises:
            ValueError: The state belongs to another model, or a shape, dtype, counter or value is
                wrong or out of range (counters are bounded by the config and :data:`MAX_STREAM_LENGTH`).
        """
        try:
            memory, chunk_memory, meta = state["memory"], state["chunk_memory"], state["meta"]
        except (KeyError, TypeError):
            raise ValueError("stream state must have 'memory', 'chunk_memory' and 'meta'") from None
        cfg, hidden = self.model.config, self.model.hidden_size
        if not isinstance(meta, dict):
            raise ValueError("stream state 'meta' must be a dict")
        if meta.get("format_version") != STATE_FORMAT_VERSION:
            raise ValueError(f"unsupported stream state format_version {meta.get('format_version')!r}")
        if meta.get("model") != self.model.fingerprint():
            raise ValueError("stream state was written by a different model (fingerprint mismatch)")
        for name, tensor in (("memory", memory), ("chunk_memory", chunk_memory)):
            if not isinstance(tensor, torch.Tensor) or tensor.dim() != 2 or tensor.shape[1] != hidden:
                raise ValueError(f"stream state {name} must be a (m, {hidden}) tensor")
            if not tensor.is_floating_point():
                raise ValueError(f"stream state {name} must hold floats, not {tensor.dtype}")
            if tensor.shape[0] > cfg.capacity or tensor.shape[0] % cfg.num_queries:
                raise ValueError(f"stream state {name} has {tensor.shape[0]} latents; capacity is {cfg.capacity}")
            if not torch.isfinite(tensor).all():
                raise ValueError(f"stream state {name} contains NaN or inf")
        counters = {k: meta.get(k) for k in ("length", "chunk_segments", "chunk_tokens")}
        limits = {
            "length": MAX_STREAM_LENGTH,
            "chunk_segments": cfg.chunk_segments,
            "chunk_tokens": max(cfg.chunk_tokens, cfg.max_segment_tokens),
        }
        for key, value in counters.items():
            check_int(value, f"stream state {key}", minimum=0, maximum=limits[key])
        if counters["chunk_segments"] > counters["length"]:
            raise ValueError("stream state chunk_segments is inconsistent with its length")
        if memory.shape[0] > counters["length"] * cfg.num_queries or chunk_memory.shape[0] > memory.shape[0]:
            raise ValueError(f"stream state holds more latents than its {counters['length']} segments can make")
        chunk_ids = _open_chunk_ids(self.model, meta.get("chunk_ids", []), counters)
        to_model = dict(device=self.model.device, dtype=self.model.dtype)
        self._state = StreamState(
            memory=memory.to(**to_model), chunk_memory=chunk_memory.to(**to_model), chunk_ids=chunk_ids, **counters
        )
        return self

    def save(self, path: str | Path) -> None:
        """Write the state to one safetensors file (counters in its JSON metadata, with a checksum).

        Args:
            path: The file to write.
        """
        state = self.state_dict()
        tensors = {"memory": state["memory"].contiguous(), "chunk_memory": state["chunk_memory"].contiguous()}
        meta = json.dumps(state["meta"])
        save_file(tensors, str(path), metadata={"evoembedding_stream": meta, "sha256": _state_digest(tensors, meta)})

    def load(self, path: str | Path) -> "EvoStream":
        """Restore the state saved by :meth:`save` (safetensors only: nothing is unpickled).

        Args:
            path: The file to read: a regular file, not a symbolic link, FIFO or device.

        Returns:
            This stream.

        Raises:
            ValueError: The file is not a regular file, is larger than any state of this model,
                is unreadable, fails its checksum, or holds an invalid state.
        """
        data = _read_state_file(path, _max_state_bytes(self.model))
        try:
            header_size = int.from_bytes(data[:8], "little")
            if len(data) < 8 or header_size > len(data) - 8:
                raise ValueError("truncated safetensors header")
            header = json.loads(data[8 : 8 + header_size]).get("__metadata__") or {}
            raw_meta = header.get("evoembedding_stream", "null")
            meta = json.loads(raw_meta)
            tensors = load(data)
        except (SafetensorError, ValueError, AttributeError, TypeError, UnicodeDecodeError, RecursionError) as exc:
            raise ValueError(f"{path}: not a readable stream state ({exc})") from None
        if not isinstance(meta, dict):
            raise ValueError(f"{path}: missing evoembedding_stream metadata")
        if not all(isinstance(tensors.get(k), torch.Tensor) for k in ("memory", "chunk_memory")):
            raise ValueError(f"{path}: stream state must hold 'memory' and 'chunk_memory' tensors")
        if header.get("sha256") != _state_digest(tensors, raw_meta):
            raise ValueError(f"{path}: stream state fails its sha256 checksum (corrupted or modified)")
        return self.load_state_dict({**tensors, "meta": meta})


def add_many(streams: Sequence[EvoStream], texts_per_stream: Sequence[Sequence[str]]) -> list[np.ndarray]:
    """Append segments to several streams at once: rows of different streams share forward calls.

    Each stream ends as :meth:`EvoStream.add` would leave it, and gets the same vectors (up to
    float rounding); only the batching differs (:func:`~evoembedding_core.recurrence.advance_many`).

    Args:
        streams: Distinct streams of one model.
        texts_per_stream: Each stream's new segments, in order (may be empty).

    Returns:
        Each stream's vectors, (n_i, d) float32.

    Raises:
        ValueError: Counts differ, a stream is given twice, or the streams use different models.
        TypeError, ValueError: Invalid texts, raised before any stream changes.
    """
    if len(streams) != len(texts_per_stream):
        raise ValueError(f"one list of texts per stream is required (got {len(streams)} and {len(texts_per_stream)})")
    if len({id(s) for s in streams}) != len(streams):
        raise ValueError("a stream is given twice: pass each stream once, with all its texts in order")
    if not streams:
        return []
    model = streams[0].model
    if any(s.model is not model for s in streams):
        raise ValueError("the streams use different models")
    checked = [validate_texts(texts) if len(texts) else [] for texts in texts_per_stream]
    with torch.inference_mode():
        vectors, states = advance_many(
            model, [s.state for s in streams], [model.tokenize(t) if t else [] for t in checked]
        )
    for stream, state in zip(streams, states):
        stream._state = state
    return [v.cpu().numpy().astype(np.float32) for v in vectors]


def _max_state_bytes(model: EvoEmbeddingModel) -> int:
    """Upper bound on a saved state's size for ``model``: two full float64 queues plus metadata."""
    cfg = model.config
    return 2 * cfg.capacity * model.hidden_size * 8 + 64 * max(cfg.chunk_tokens, cfg.max_segment_tokens) + (1 << 20)


def _read_state_file(path: str | Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes.

    Symbolic links, FIFOs, sockets and devices are refused before they are opened (a FIFO would
    block forever), and again on the opened descriptor (the path may be swapped in between).
    """
    data = None
    try:
        info = os.lstat(path)
        if stat.S_ISREG(info.st_mode) and info.st_size <= limit:
            flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
            with os.fdopen(os.open(path, flags | getattr(os, "O_BINARY", 0)), "rb") as handle:
                info = os.fstat(handle.fileno())
                if stat.S_ISREG(info.st_mode) and info.st_size <= limit:
                    data = handle.read(limit + 1)
    except OSError as exc:
        raise ValueError(f"{path}: not a readable stream state ({exc})") from None
    if data is not None and len(data) <= limit:
        return data
    if not stat.S_ISREG(info.st_mode):
        kinds = [(stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO")]
        kind = next((name for test, name in kinds if test(info.st_mode)), "a device or socket")
        raise ValueError(f"{path}: not a readable stream state ({kind}, not a regular file)")
    raise ValueError(
        f"{path}: not a readable stream state ({info.st_size} bytes, more than any state of this model: {limit})"
    )


def _state_digest(tensors: dict[str, torch.Tensor], meta: str) -> str:
    """SHA-256 over a saved state's counters and tensor bytes (safetensors itself has no checksum)."""
    digest = hashlib.sha256(meta.encode())
    for name in ("memory", "chunk_memory"):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def _open_chunk_ids(model: EvoEmbeddingModel, value, counters: dict) -> tuple[tuple[int, ...], ...]:
    """The open chunk's token ids of a saved state (``evolution="packed"`` only), checked."""
    vocab = model.backbone.get_input_embeddings().num_embeddings
    if not isinstance(value, list) or not all(
        isinstance(ids, list) and all(type(t) is int and 0 <= t < vocab for t in ids) for ids in value
    ):
        raise ValueError(f"stream state chunk_ids must be lists of token ids below {vocab}")
    if model.config.evolution != "packed" or model.config.native:
        if value:
            raise ValueError("stream state has chunk_ids but this model does not use packed evolution")
    elif len(value) != counters["chunk_segments"] or sum(map(len, value)) != counters["chunk_tokens"]:
        raise ValueError("stream state chunk_ids do not match its chunk_segments and chunk_tokens")
    return tuple(tuple(ids) for ids in value)
