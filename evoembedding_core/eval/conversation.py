"""The evaluation unit: a conversation streamed in order, and the questions asked after it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Segment:
    """One segment of the stream. Only turns are retrieval candidates; headers only feed the memory."""

    text: str
    """What the model reads, e.g. ``"Emi: I moved to Lyon."`` or ``"Session date: 29.12.2023, 22:42:04"``."""
    kind: str = "turn"
    """``"turn"`` (a candidate) or ``"header"`` (session header, not a candidate)."""
    turn_id: str | None = None
    """Identifier the questions' evidence refers to (turns only)."""
    session: str = ""
    """Session the segment belongs to (for session-level recall)."""
    date: str = ""
    """Short session date, prefixed by the "dated" baselines: ``"[29.12.2023] Emi: ..."``."""


@dataclass(frozen=True)
class Question:
    """A question with its evidence turns, asked after the whole conversation."""

    qid: str
    text: str
    evidence: tuple[str, ...]
    """Turn ids of the relevant turns (all resolve to candidates of the conversation)."""
    category: str = "all"
    evidence_sessions: tuple[str, ...] = ()
    """Relevant sessions; defaults to the sessions of the evidence turns."""


@dataclass
class Conversation:
    """A stream of segments and its questions."""

    name: str
    segments: list[Segment]
    questions: list[Question] = field(default_factory=list)
    skipped_questions: int = 0
    """Questions of the source left out because none of their evidence resolves to a turn."""

    def __post_init__(self) -> None:
        ids = [s.turn_id for s in self.candidates]
        if len(set(ids)) != len(ids) or None in ids:
            raise ValueError(f"{self.name}: every turn needs a unique turn_id")
        known = set(ids)
        for q in self.questions:
            if not q.evidence:
                raise ValueError(f"{self.name}: question {q.qid!r} has no evidence")
            missing = [e for e in q.evidence if e not in known]
            if missing:
                raise ValueError(f"{self.name}: question {q.qid!r} cites unknown turns {missing[:3]}")

    @property
    def candidates(self) -> list[Segment]:
        return [s for s in self.segments if s.kind == "turn"]
