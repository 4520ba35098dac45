"""Benchmark loaders: LoCoMo-style chats (REALTALK), LongMemEval, and EvoTrain-schema files.

Every loader returns :class:`~evoembedding_core.eval.conversation.Conversation` objects: the
segments to stream in order (session headers and turns) and the questions asked after them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from ..validation import check_positive_int, is_int
from .conversation import Conversation, Question, Segment

HEADER_TEMPLATE = "Session date: {date}"
"""Text of the header segment that opens each session (read by the memory, never a candidate)."""

_ID = r"D\s*(\d+)\s*[:;]\s*(\d+)"
_EVIDENCE = re.compile(_ID + r"(?:\s*-\s*" + _ID + r")?")
_DATE = re.compile(r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}")


# ---------------------------------------------------------------------------------------------- helpers
def shared_data_dir() -> Path:
    """``$EVOEMBEDDING_SHARED_DATA``, else the first ``shared/data`` beside the working dir or the repo."""
    env = os.environ.get("EVOEMBEDDING_SHARED_DATA")
    if env:
        return Path(env)
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = base.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return Path.cwd().parent / "shared" / "data"


def natural_key(text: str) -> list:
    """Sort key that orders ``Chat_2`` before ``Chat_10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def short_date(text: str) -> str:
    """The calendar date inside a timestamp: ``"29.12.2023, 00:51"`` -> ``"29.12.2023"``.

    LoCoMo's ``"1:56 pm on 8 May, 2023"`` gives ``"8 May, 2023"``; anything else is kept whole.
    """
    match = _DATE.search(text)
    if match:
        return match.group(0)
    return text.split(" on ", 1)[1].strip() if " on " in text else text.strip()


def parse_evidence(refs: Iterable[str]) -> list[str]:
    """Normalise LoCoMo/REALTALK evidence references to plain ``"D<a>:<b>"`` ids, in order, unique.

    Handles lists (``"D5:12;D5:16"``, ``"D1:11; D3:18"``), stray punctuation (``"D5:3."``,
    ``"D 2:18"``, ``"D17;39"``) and ranges: ``"D12:3-D12:5"`` expands to D12:3, D12:4, D12:5 (ids
    missing from the chat are later dropped by lookup); a range across two prefixes keeps its ends.
    """
    ids: list[str] = []
    for ref in refs:
        if not isinstance(ref, str):
            raise TypeError(f"evidence references must be strings, got {type(ref).__name__}")
        for a, b, c, d in _EVIDENCE.findall(ref):
            if not c:
                ids.append(f"D{int(a)}:{int(b)}")
            elif a == c and int(b) <= int(d):
                ids.extend(f"D{int(a)}:{k}" for k in range(int(b), int(d) + 1))
            else:
                ids.extend([f"D{int(a)}:{int(b)}", f"D{int(c)}:{int(d)}"])
    return list(dict.fromkeys(ids))


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


# ---------------------------------------------------------------------------------------------- LoCoMo
def locomo_conversation(data: dict, name: str) -> Conversation:
    """One LoCoMo-style chat: ``session_N`` turn lists, ``session_N_date_time``, ``qa[].evidence``.

    Accepts REALTALK files (``clean_text``) and LoCoMo samples (``{"conversation": {...}, "qa"}``,
    ``text``). Evidence ids are looked up among the chat's ``dia_id`` values (their number is not the
    session number); questions none of whose evidence resolves are dropped and counted.
    """
    chat = data.get("conversation", data)
    sessions = sorted((k for k in chat if re.fullmatch(r"session_\d+", k)), key=natural_key)
    if not sessions:
        raise ValueError(f"{name}: no session_N keys: not a LoCoMo-style conversation")
    segments: list[Segment] = []
    for key in sessions:
        when = str(chat.get(f"{key}_date_time", "")).strip()
        if when:
            segments.append(
                Segment(HEADER_TEMPLATE.format(date=when), kind="header", session=key, date=short_date(when))
            )
        for i, turn in enumerate(chat[key]):
            text = (turn.get("clean_text") or turn.get("text") or "").strip()
            if "dia_id" not in turn or "speaker" not in turn:
                raise ValueError(f"{name}: {key}[{i}] needs 'speaker' and 'dia_id'")
            if text:
                segments.append(
                    Segment(f"{turn['speaker']}: {text}", turn_id=turn["dia_id"], session=key, date=short_date(when))
                )
    known = {s.turn_id for s in segments if s.kind == "turn"}
    questions, skipped = [], 0
    for i, qa in enumerate(data.get("qa", [])):
        evidence = tuple(e for e in parse_evidence(qa.get("evidence", [])) if e in known)
        if not evidence or not str(qa.get("question", "")).strip():
            skipped += 1
            continue
        category = qa.get("category", "all")
        category = f"cat {category}" if isinstance(category, int) else str(category)
        questions.append(Question(f"{name}#{i}", qa["question"].strip(), evidence, category))
    return Conversation(name, segments, questions, skipped_questions=skipped)


def load_locomo(path: str | Path, limit: int | None = None) -> list[Conversation]:
    """A LoCoMo-style file (one chat or a list of chats) or a directory of them, in natural order."""
    path = Path(path)
    files = sorted(path.glob("*.json"), key=lambda p: natural_key(p.name)) if path.is_dir() else [path]
    conversations = []
    for file in files:
        data = _read_json(file)
        items = data if isinstance(data, list) else [data]
        for j, item in enumerate(items):
            name = str(item.get("sample_id", file.stem if len(items) == 1 else f"{file.stem}#{j}"))
            conversations.append(locomo_conversation(item, name))
    return conversations[:limit] if limit else conversations


# ---------------------------------------------------------------------------------------------- LongMemEval
def _lme_date(text: str) -> tuple:
    cleaned = re.sub(r"\s*\([A-Za-z]+\)", "", text).strip()
    try:
        return (0, datetime.strptime(cleaned, "%Y/%m/%d %H:%M").isoformat())
    except ValueError:
        return (1, text)


def load_longmemeval(path: str | Path, limit: int | None = None) -> list[Conversation]:
    """LongMemEval questions pooled into ONE haystack stream (so every question has distractors).

    The sessions of all (the first ``limit``) questions are de-duplicated by id and streamed in
    chronological order (ties by id), each opened by a date header; turns are "User: ..." /
    "Assistant: ...". A question's evidence is its ``has_answer`` turns; its relevant sessions are
    ``answer_session_ids``. All questions are asked after the whole haystack.
    """
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, list) or not all(isinstance(q, dict) and "haystack_sessions" in q for q in data):
        raise ValueError(f"{path}: expected a list of LongMemEval questions with 'haystack_sessions'")
    data = data[:limit] if limit else data
    sessions: dict[str, tuple[str, list]] = {}
    questions = []
    for q in data:
        ids, dates, turns = q["haystack_session_ids"], q["haystack_dates"], q["haystack_sessions"]
        if not (len(ids) == len(dates) == len(turns)):
            raise ValueError(f"{path}: question {q.get('question_id')}: haystack ids/dates/sessions differ in length")
        evidence = []
        for sid, date, session in zip(ids, dates, turns):
            sessions.setdefault(sid, (date, session))
            evidence += [f"{sid}:{i}" for i, t in enumerate(session) if t.get("has_answer") and t["content"].strip()]
        if evidence:
            questions.append(
                Question(
                    q["question_id"], q["question"], tuple(evidence), q["question_type"], tuple(q["answer_session_ids"])
                )
            )
    segments = []
    for sid, (date, session) in sorted(sessions.items(), key=lambda item: (_lme_date(item[1][0]), item[0])):
        segments.append(Segment(HEADER_TEMPLATE.format(date=date), kind="header", session=sid, date=short_date(date)))
        for i, turn in enumerate(session):
            if turn["content"].strip():
                text = f"{turn['role'].capitalize()}: {turn['content'].strip()}"
                segments.append(Segment(text, turn_id=f"{sid}:{i}", session=sid, date=short_date(date)))
    return [Conversation("longmemeval-pooled", segments, questions, skipped_questions=len(data) - len(questions))]


# ---------------------------------------------------------------------------------------------- EvoTrain
def evotrain_conversation(sample: dict, name: str) -> Conversation:
    """One EvoTrain sample: ``meta.turns`` (the last is the query), ``meta.evidence_turns`` (0-based)."""
    meta = sample.get("meta") if isinstance(sample, dict) else None
    if not isinstance(meta, dict):
        raise ValueError(f"{name}: an EvoTrain sample needs a 'meta' object")
    turns, evidence = meta.get("turns"), meta.get("evidence_turns")
    if not isinstance(turns, list) or len(turns) < 2 or not all(isinstance(t, str) and t.strip() for t in turns):
        raise ValueError(f"{name}: meta.turns must list at least two non-empty strings (history and query)")
    if not isinstance(evidence, list) or not evidence:
        raise ValueError(f"{name}: meta.evidence_turns must be a non-empty list")
    if not all(is_int(e) and 0 <= e < len(turns) - 1 for e in evidence):
        raise ValueError(f"{name}: meta.evidence_turns must be indices of history turns (0..{len(turns) - 2})")
    segments = [Segment(text, turn_id=str(i)) for i, text in enumerate(turns[:-1])]
    question = Question(
        f"{name}#q", turns[-1], tuple(str(e) for e in dict.fromkeys(evidence)), str(meta.get("template", "all"))
    )
    return Conversation(name, segments, [question])


def samples_to_conversations(samples: Iterable[dict], source: str = "sample") -> list[Conversation]:
    return [evotrain_conversation(sample, f"{source}:{i}") for i, sample in enumerate(samples)]


def load_evotrain(path: str | Path, limit: int | None = None) -> list[Conversation]:
    """EvoTrain samples from a JSON file (a list or one sample) or a JSONL file (one per line)."""
    path = Path(path)
    if path.suffix == ".jsonl":
        samples = []
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    samples.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{line_no}: not valid JSON ({exc})") from None
    else:
        data = _read_json(path)
        samples = data if isinstance(data, list) else [data]
    samples = samples[:limit] if limit else samples
    return samples_to_conversations(samples, path.name)


# ---------------------------------------------------------------------------------------------- dispatch
def detect_format(path: Path) -> str:
    """``"locomo"``, ``"longmemeval"`` or ``"evotrain"`` from a file's (or a directory's first file's) content."""
    if path.is_dir():
        files = sorted(list(path.glob("*.json")) + list(path.glob("*.jsonl")), key=lambda p: natural_key(p.name))
        if not files:
            raise ValueError(f"{path}: no .json or .jsonl files")
        return detect_format(files[0])
    if path.suffix == ".jsonl":
        return "evotrain"
    data = _read_json(path)
    first = data[0] if isinstance(data, list) and data else data
    if isinstance(first, dict) and "haystack_sessions" in first:
        return "longmemeval"
    if isinstance(first, dict) and "qa" in first:
        return "locomo"
    if isinstance(first, dict) and "meta" in first:
        return "evotrain"
    raise ValueError(f"{path}: unrecognised benchmark format (expected LoCoMo, LongMemEval or EvoTrain JSON)")


LOADERS = {"locomo": load_locomo, "longmemeval": load_longmemeval, "evotrain": load_evotrain}


def load_benchmark(spec: str | Path, limit: int | None = None) -> tuple[str, list[Conversation]]:
    """Load a benchmark as conversations.

    Args:
        spec: ``"realtalk"``, ``"longmemeval"`` (from the shared data) or a path (LoCoMo-style JSON,
            LongMemEval JSON, EvoTrain samples).
        limit: Keep the first N conversations (LoCoMo, EvoTrain samples) or questions (LongMemEval).

    Returns:
        ``(name, conversations)``.

    Raises:
        ValueError: ``limit`` is not a positive integer, or the file's format is unrecognised.
        FileNotFoundError: The path does not exist.
    """
    check_positive_int(limit, "limit", optional=True)
    if str(spec) == "realtalk":
        name, path = "realtalk", shared_data_dir() / "realtalk"
    elif str(spec) == "longmemeval":
        name, path = "longmemeval", shared_data_dir() / "longmemeval" / "longmemeval_oracle_sample_seed_42.json"
    else:
        path = Path(spec)
        name = path.stem
    if not path.exists():
        raise FileNotFoundError(f"benchmark data not found: {path}")
    if path.is_dir() and detect_format(path) != "locomo":
        raise ValueError(f"{path}: only LoCoMo-style chats can be read from a directory; pass a file")
    return name, LOADERS[detect_format(path)](path, limit)
