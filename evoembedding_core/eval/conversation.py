"""The evaluation unit: a conversation streamed in order, and the questions asked after it.

Turns are the retrieval candidates (one message each); :func:`paired` makes a turn and the reply
after it one candidate instead, the unit the EvoEmbedding authors evaluate with.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


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


def paired(conversation: Conversation) -> Conversation:
    """The conversation with a turn and the turn after it (its reply) as one candidate.

    Turns are taken two at a time in order within each run of turns (a header or a new session
    starts a new run; a run's odd last turn stays alone). A pair's text is its two turns' texts on
    two lines, its id, session and date those of its first turn; a question's evidence becomes
    the pairs that hold its evidence turns.

    Args:
        conversation: A conversation of one-message turns.

    Returns:
        A new conversation (the given one is not changed).
    """
    segments: list[Segment] = []
    pair_of: dict[str, str] = {}
    open_pair: Segment | None = None
    for segment in conversation.segments:
        if segment.kind != "turn":
            open_pair = None
            segments.append(segment)
            continue
        if open_pair is not None and open_pair.session == segment.session:
            segments[-1] = replace(open_pair, text=f"{open_pair.text}\n{segment.text}")
            pair_of[segment.turn_id] = open_pair.turn_id
            open_pair = None
            continue
        segments.append(segment)
        pair_of[segment.turn_id] = segment.turn_id
        open_pair = segment
    questions = [
        replace(q, evidence=tuple(dict.fromkeys(pair_of[e] for e in q.evidence))) for q in conversation.questions
    ]
    return Conversation(conversation.name, segments, questions, conversation.skipped_questions)
