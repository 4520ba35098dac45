"""The systems an evaluation compares: our model (with or without memory) and the static baselines,
each optionally on dated turns (``-dated``) and fused with others by reciprocal rank (``a+b``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from ..lexical import reciprocal_rank_fusion, top_ranked
from ..model import EvoEmbeddingModel
from ..recurrence import StreamState, advance_many, represent_queries
from ..splitting import check_long_texts, mean_per_text, segments_of
from ..static import StaticEmbedder
from ..validation import validate_texts
from .baselines import BM25Baseline, DenseBaseline
from .conversation import Conversation
from .names import (  # noqa: F401 - BASE_SYSTEMS, SYSTEMS, check_system_names, relabel: kept importable here
    BASE_SYSTEMS,
    DATED,
    SYSTEMS,
    _base,
    _parts,
    check_system_names,
    relabel,
    uses_model,
)

STREAM_BLOCK = 64
"""Segments of each conversation read per call (results do not depend on it: chunking is split-invariant)."""
STREAMS_TOGETHER = 64
"""Conversations :func:`prefetch` streams together, their rows sharing batches (``advance_many``)."""


class RetrievalSystem(Protocol):
    name: str

    def score(self, conversation: Conversation, progress: bool = False) -> np.ndarray:
        """Scores (n_questions, n_candidates) of every question against every candidate turn."""


class EvoSystem:
    """Our model: the whole conversation (headers and turns) is streamed in order through one
    :class:`~evoembedding_core.stream.EvoStream`; the turns' vectors are the candidates, and each
    question is encoded against the memory left after the last segment.

    ``query_memory=False`` (``evo-query-no-memory``): the same turn vectors, but the questions are
    read over an empty memory (``encode_queries(memory=False)``): the final memory holds the last
    turns of the conversation, which a question about any earlier point does not concern.
    ``zero_memory=True`` is the context-removed ablation: every turn and question is encoded over an
    empty memory (headers are not read at all). Systems built together share ``streamed`` (turn
    vectors per conversation), so the conversation is streamed once for both ``evo`` rows.
    """

    def __init__(
        self,
        model: EvoEmbeddingModel,
        *,
        zero_memory: bool = False,
        query_memory: bool = True,
        streamed: dict | None = None,
        long_texts: str = "truncate",
    ) -> None:
        self.model, self.zero_memory, self.query_memory = model, zero_memory, query_memory
        self.long_texts = check_long_texts(long_texts)
        self.name = "evo-zero-memory" if zero_memory else "evo" if query_memory else "evo-query-no-memory"
        self.streamed = {} if streamed is None else streamed

    def score(self, conversation: Conversation, progress: bool = False) -> np.ndarray:
        questions = [q.text for q in conversation.questions]
        if self.zero_memory:
            turns = self._encode_empty([s.text for s in conversation.candidates], query=False, progress=progress)
            return self._encode_empty(questions, query=True) @ turns.T
        if conversation.name not in self.streamed:
            # keep only the conversation in progress, plain and dated (and what prefetch() read)
            while sum(not prefetched for *_, prefetched in self.streamed.values()) >= 2:
                del self.streamed[next(k for k, v in self.streamed.items() if not v[-1])]
            self.streamed.update(self._stream([conversation], progress))
        state, turns, _ = self.streamed[conversation.name]
        if not questions:
            return np.zeros((0, len(turns)), dtype=np.float32)
        state = state if self.query_memory else StreamState.empty(self.model)
        with torch.inference_mode():
            queries = represent_queries(
                self.model, state, self.model.tokenize(validate_texts(questions, "queries"), query=True)
            )
        return queries.cpu().numpy().astype(np.float32) @ turns.T

    def prefetch(self, conversations: list[Conversation], progress: bool = False) -> None:
        """Stream many conversations now, :data:`STREAMS_TOGETHER` at a time in shared batches, for
        the next :meth:`score` calls (which then stream nothing); forgets earlier conversations.

        Each conversation's vectors are the ones :meth:`score` alone would compute (up to float
        rounding): the streams are independent, only their rows share forward calls.
        """
        if self.zero_memory:
            return
        self.streamed.clear()
        for start in range(0, len(conversations), STREAMS_TOGETHER):
            group = conversations[start : start + STREAMS_TOGETHER]
            self.streamed.update(self._stream(group, progress, prefetched=True))

    def _stream(self, conversations: list[Conversation], progress: bool, *, prefetched: bool = False) -> dict:
        """``{name: (final state, turn vectors, prefetched)}`` of conversations streamed together."""
        texts = [validate_texts([s.text for s in c.segments]) for c in conversations]
        split = [segments_of(self.model, t, self.long_texts) for t in texts]
        ids = [self.model.tokenize(pieces) for pieces, _ in split]
        states = [StreamState.empty(self.model) for _ in conversations]
        vectors: list[list[torch.Tensor]] = [[] for _ in conversations]
        total = sum(len(t) for t in ids)
        with tqdm(total=total, desc=f"{self.name} stream", unit="seg", disable=not progress, leave=False) as bar:
            for start in range(0, max(len(t) for t in ids), STREAM_BLOCK):
                blocks = [segments[start : start + STREAM_BLOCK] for segments in ids]
                with torch.inference_mode():
                    out, states = advance_many(self.model, states, blocks)
                for mine, new in zip(vectors, out):
                    mine.append(new)
                bar.update(sum(len(b) for b in blocks))
        streamed = {}
        for conversation, state, parts, (_, owners) in zip(conversations, states, vectors, split):
            out = mean_per_text(torch.cat(parts).cpu().numpy(), owners, len(conversation.segments))
            keep = [i for i, s in enumerate(conversation.segments) if s.kind == "turn"]
            streamed[conversation.name] = (state, out[keep], prefetched)
        return streamed

    def _encode_empty(self, texts: list[str], *, query: bool, progress: bool = False) -> np.ndarray:
        """Vectors of texts each read over an empty memory (turns as segments, or a long turn's
        pieces each over an empty memory, averaged; questions as queries)."""
        pieces, owners = segments_of(self.model, texts, "truncate" if query else self.long_texts)
        tokens = self.model.tokenize(pieces, query=query)
        empty = StreamState.empty(self.model)
        order = sorted(range(len(tokens)), key=lambda i: len(tokens[i]))  # similar lengths share a block
        out = np.zeros((len(tokens), self.model.output_dim), dtype=np.float32)
        starts = range(0, len(order), STREAM_BLOCK)
        for start in tqdm(starts, desc=f"{self.name} encode", unit="batch", disable=not progress, leave=False):
            block = order[start : start + STREAM_BLOCK]
            with torch.inference_mode():
                out[block] = represent_queries(self.model, empty, [tokens[i] for i in block]).cpu().numpy()
        return mean_per_text(out, owners, len(texts))


def prefetch(systems: list[RetrievalSystem], conversations: list[Conversation], progress: bool = False) -> None:
    """Stream ``conversations`` (plain and dated, as the systems need) for every memory-reading
    ``evo`` system among ``systems``, many conversations per batch; the systems' next
    :meth:`~RetrievalSystem.score` calls on them stream nothing. Scores are unchanged.

    Call it on a group of conversations (e.g. :data:`STREAMS_TOGETHER` of them) before scoring
    that group: the turn vectors of the group stay in memory until the next call.
    """
    caches: dict[int, tuple[EvoSystem, set[bool]]] = {}  # systems sharing a cache: stream once

    def visit(system, dated: bool) -> None:
        if isinstance(system, _LastScores):
            visit(system.system, dated)
        elif isinstance(system, DatedSystem):
            visit(system.system, True)
        elif isinstance(system, FusedSystem):
            for part in system.systems:
                visit(part, dated)
        elif isinstance(system, EvoSystem) and not system.zero_memory:
            caches.setdefault(id(system.streamed), (system, set()))[1].add(dated)

    for system in systems:
        visit(system, False)
    for system, variants in caches.values():
        wanted = [dated_conversation(c) if dated else c for dated in sorted(variants) for c in conversations]
        system.prefetch(wanted, progress=progress)


def dated_conversation(conversation: Conversation) -> Conversation:
    """The conversation with every turn's text prefixed by its session date: ``"[29.12.2023] Emi: ..."``
    (headers and questions unchanged)."""
    segments = [
        dataclasses.replace(s, text=f"[{s.date}] {s.text}") if s.kind == "turn" and s.date else s
        for s in conversation.segments
    ]
    return dataclasses.replace(conversation, name=conversation.name + DATED, segments=segments)


class DatedSystem:
    """A system run on :func:`dated_conversation` (the "date every turn" trick)."""

    def __init__(self, system: RetrievalSystem) -> None:
        self.system, self.name = system, system.name + DATED
        self.lexical = getattr(system, "lexical", False)

    def score(self, conversation: Conversation, progress: bool = False) -> np.ndarray:
        return self.system.score(dated_conversation(conversation), progress=progress)


class FusedSystem:
    """Reciprocal rank fusion (:func:`~evoembedding_core.lexical.reciprocal_rank_fusion`) of the
    top :data:`~evoembedding_core.lexical.FUSION_DEPTH` of each system's ranking, as
    ``EvoStore(hybrid=True)`` fuses dense and BM25 results. Turns in no ranking score 0."""

    def __init__(self, systems: list[RetrievalSystem]) -> None:
        self.systems, self.name = systems, "+".join(s.name for s in systems)

    def score(self, conversation: Conversation, progress: bool = False) -> np.ndarray:
        rows = [s.score(conversation, progress=progress) for s in self.systems]
        out = np.zeros(rows[0].shape)
        for q in range(out.shape[0]):
            rankings = [top_ranked(r[q], positive=getattr(s, "lexical", False)) for s, r in zip(self.systems, rows)]
            for candidate, fused in reciprocal_rank_fusion(rankings).items():
                out[q, candidate] = fused
        return out


class _LastScores:
    """A system that remembers its scores of the last conversation, so that a system listed alone
    and inside a fusion is run once."""

    def __init__(self, system: RetrievalSystem) -> None:
        self.system, self.name, self.lexical = system, system.name, getattr(system, "lexical", False)
        self._last: tuple[str, np.ndarray] | None = None

    def score(self, conversation: Conversation, progress: bool = False) -> np.ndarray:
        if self._last is None or self._last[0] != conversation.name:
            self._last = (conversation.name, self.system.score(conversation, progress=progress))
        return self._last[1]


def build_systems(
    names: list[str] | tuple[str, ...],
    model: EvoEmbeddingModel | Callable[[], EvoEmbeddingModel] | None = None,
    embedder: StaticEmbedder | None = None,
    long_texts: str = "truncate",
) -> list[RetrievalSystem]:
    """Build the systems to compare, by name.

    Args:
        names: System names (see :data:`SYSTEMS`; ``-dated`` and ``+`` fusions allowed).
        model: A model, or a function that loads one (called only when an ``evo`` system is asked for).
        embedder: The static embedder of the ``minilm`` systems (default: a new :class:`StaticEmbedder`).
        long_texts: How the ``evo`` systems read a turn over the segment limit: ``"truncate"`` or
            ``"split"`` (consecutive segments, the turn's vector their normalised mean).

    Returns:
        One system per name, in order.

    Raises:
        ValueError: An unknown or repeated name, or an ``evo`` system without a model.
    """
    check_system_names(names)
    parts = [p for n in names for p in _parts(n)]
    if uses_model(names):
        if model is None:
            raise ValueError("the evo systems need a model")
        model = model() if callable(model) and not isinstance(model, EvoEmbeddingModel) else model
    if embedder is None and any(p.startswith("minilm") for p in parts):
        embedder = StaticEmbedder()
    streamed: dict = {}
    factories = {
        "evo": lambda: EvoSystem(model, streamed=streamed, long_texts=long_texts),
        "evo-query-no-memory": lambda: EvoSystem(model, query_memory=False, streamed=streamed, long_texts=long_texts),
        "evo-zero-memory": lambda: EvoSystem(model, zero_memory=True, long_texts=long_texts),
        "minilm": lambda: DenseBaseline(embedder),
        "bm25": lambda: BM25Baseline(),
    }
    built: dict[str, RetrievalSystem] = {}

    def system(part: str) -> RetrievalSystem:
        if part not in built:
            base = factories[_base(part)]()
            built[part] = _LastScores(DatedSystem(base) if part.endswith(DATED) else base)
        return built[part]

    return [system(n) if "+" not in n else FusedSystem([system(p) for p in _parts(n)]) for n in names]
