"""EvoTrain data: loading, validating, tokenising and capping training samples.

A sample (one JSON object; a file holds a JSON list of them, or one per line as JSONL)::

    {"messages": [{"role": "user", "content": ...}, {"role": "assistant", "content": ...}, ...,
                  {"role": "user", "content": <query>}, {"role": "assistant", "content": <answer>}],
     "meta": {"turns": [<segment>, ..., <query>], "evidence_turns": [<0-based index>, ...],
              "template": <optional str>, "answer": <optional str>,
              "queries": [{"query": <str>, "evidence_turns": [...], "answer": <str>,
                           "template": <optional str>}, ...]}}     # optional

``meta.turns`` are the segments of the stream in order, the last one the query;
``meta.evidence_turns`` index the positives among the segments before the query. The answer is
``meta.answer`` when given, else the last (assistant) message.

``meta.queries`` (optional) are further questions asked at the end of the same history (over the
same final memory, with their own positives among the history segments and their own answer):
the trainer reads the stream once and adds one contrastive (and memory) loss per question, which
amortises the expensive long-history pass.

Caps (the paper's, configurable): at most ``max_segments`` history segments and ``max_tokens``
tokens (history + query) per sample. A longer sample keeps its *last* segments before the query
(the recent context, the part a bounded memory keeps anyway) and drops the oldest; evidence
indices are shifted, and a sample whose evidence all falls in the dropped part is skipped and
counted (``CappedData.dropped``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .limits import MAX_SEGMENTS, MAX_TOKENS  # noqa: F401 - kept importable from here


@dataclass(frozen=True)
class ExtraQuery:
    """A further question of a sample (``meta.queries``), asked over the same history."""

    query: str
    evidence: list[int]
    answer: str
    template: str | None = None


@dataclass(frozen=True)
class TokenizedQuery:
    """An :class:`ExtraQuery` as the trainer reads it."""

    query: list[int]
    evidence: list[int]
    answer: str
    query_text: str
    template: str | None = None


@dataclass(frozen=True)
class TrainSample:
    """One validated training sample: the history segments, the query, the positives, the answer."""

    history: list[str]
    query: str
    evidence: list[int]
    answer: str
    template: str | None = None
    source: str = ""
    """Where it came from (``file:line``), for messages."""
    queries: tuple[ExtraQuery, ...] = ()
    """Further questions over the same history (``meta.queries``)."""


@dataclass(frozen=True)
class TokenizedSample:
    """A sample as the trainer reads it: token ids of each history segment and of the query."""

    history: list[list[int]]
    query: list[int]
    evidence: list[int]
    answer: str
    query_text: str
    """The query without the instruction prefix (what the frozen backbone reads for L_mem)."""
    template: str | None = None
    source: str = ""
    queries: tuple[TokenizedQuery, ...] = ()
    """Further questions over the same history (``meta.queries``)."""

    @property
    def tokens(self) -> int:
        return sum(map(len, self.history)) + len(self.query)

    def all_queries(self) -> list[TokenizedQuery]:
        """The sample's query followed by its further questions."""
        first = TokenizedQuery(self.query, self.evidence, self.answer, self.query_text, self.template)
        return [first, *self.queries]


@dataclass
class LoadedData:
    samples: list[TrainSample]
    skipped: list[str] = field(default_factory=list)
    """The error message of each invalid sample skipped (``skip_invalid=True``)."""


# ---------------------------------------------------------------------------------- validation
def _fail(where: str, fieldname: str, problem: str) -> ValueError:
    return ValueError(f"{where}: field {fieldname!r}: {problem}")


def parse_sample(obj, where: str) -> TrainSample:
    """Validate one raw sample; a ``ValueError`` names ``where`` (file:line), the field and the problem."""
    if not isinstance(obj, dict):
        raise _fail(where, "<sample>", f"must be a JSON object, got {type(obj).__name__}")
    messages, meta = obj.get("messages"), obj.get("meta")
    if not isinstance(meta, dict):
        raise _fail(where, "meta", "missing or not an object")
    turns = meta.get("turns")
    if not isinstance(turns, list):
        raise _fail(where, "meta.turns", f"must be a list of strings, got {type(turns).__name__}")
    if not turns:
        raise _fail(where, "meta.turns", "is empty (needs history segments and the query last)")
    for i, turn in enumerate(turns):
        if not isinstance(turn, str):
            raise _fail(where, f"meta.turns[{i}]", f"must be a string, got {type(turn).__name__}")
        if not turn.strip():
            raise _fail(where, f"meta.turns[{i}]", "is empty or whitespace-only")
    if len(turns) < 2:
        raise _fail(where, "meta.turns", "has no query after the history (needs >= 2 entries, the last the query)")
    evidence = meta.get("evidence_turns")
    if not isinstance(evidence, list) or not evidence:
        raise _fail(where, "meta.evidence_turns", "must be a non-empty list of segment indices")
    for i, idx in enumerate(evidence):
        if isinstance(idx, bool) or not isinstance(idx, int):
            raise _fail(where, f"meta.evidence_turns[{i}]", f"must be an integer, got {type(idx).__name__}")
        if not 0 <= idx < len(turns) - 1:
            raise _fail(
                where,
                f"meta.evidence_turns[{i}]",
                f"index {idx} out of range: the history has {len(turns) - 1} segments (0..{len(turns) - 2})",
            )
    if not isinstance(messages, list) or len(messages) < 2:
        raise _fail(where, "messages", "must be a list ending with the user query and the assistant answer")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise _fail(where, f"messages[{i}]", "must be an object with a string 'content'")
        expected = "assistant" if (len(messages) - 1 - i) % 2 == 0 else "user"
        if message.get("role") != expected:
            raise _fail(
                where,
                f"messages[{i}].role",
                f"expected {expected!r} (alternating, ending with the answer), got {message.get('role')!r}",
            )
    answer = meta.get("answer", messages[-1]["content"])
    if not isinstance(answer, str) or not answer.strip():
        raise _fail(
            where, "meta.answer" if "answer" in meta else "messages[-1].content", "answer must be a non-empty string"
        )
    template = meta.get("template")
    if template is not None and not isinstance(template, str):
        raise _fail(where, "meta.template", f"must be a string, got {type(template).__name__}")
    return TrainSample(
        history=list(turns[:-1]),
        query=turns[-1],
        evidence=sorted(set(evidence)),
        answer=answer,
        template=template,
        source=where,
        queries=_parse_queries(meta.get("queries", []), len(turns) - 1, where),
    )


def _parse_queries(raw, history: int, where: str) -> tuple[ExtraQuery, ...]:
    """Validate ``meta.queries``: objects with a query, evidence indices into the history and an answer."""
    if not isinstance(raw, list):
        raise _fail(where, "meta.queries", f"must be a list of objects, got {type(raw).__name__}")
    out = []
    for q, item in enumerate(raw):
        name = f"meta.queries[{q}]"
        if not isinstance(item, dict):
            raise _fail(where, name, f"must be an object, got {type(item).__name__}")
        for key in ("query", "answer"):
            if not isinstance(item.get(key), str) or not item[key].strip():
                raise _fail(where, f"{name}.{key}", "must be a non-empty string")
        evidence = item.get("evidence_turns")
        if not isinstance(evidence, list) or not evidence:
            raise _fail(where, f"{name}.evidence_turns", "must be a non-empty list of segment indices")
        for i, idx in enumerate(evidence):
            if isinstance(idx, bool) or not isinstance(idx, int):
                raise _fail(where, f"{name}.evidence_turns[{i}]", f"must be an integer, got {type(idx).__name__}")
            if not 0 <= idx < history:
                raise _fail(
                    where,
                    f"{name}.evidence_turns[{i}]",
                    f"index {idx} out of range: the history has {history} segments (0..{history - 1})",
                )
        template = item.get("template")
        if template is not None and not isinstance(template, str):
            raise _fail(where, f"{name}.template", f"must be a string, got {type(template).__name__}")
        out.append(ExtraQuery(item["query"], sorted(set(evidence)), item["answer"], template))
    return tuple(out)


# ---------------------------------------------------------------------------------- reading
def _json_records(path: Path) -> list[tuple[object, str]]:
    """``(object, "file:line")`` for each sample of a JSON list or a JSONL file."""
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        return _json_array_records(path, text)
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append((json.loads(line), f"{path}:{number}"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: invalid JSON: {exc.msg} (column {exc.colno})") from None
    return records


def _json_array_records(path: Path, text: str) -> list[tuple[object, str]]:
    """Decode a JSON list element by element, remembering the line where each element starts."""
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    records = []
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text):
            raise ValueError(f"{path}: invalid JSON: the list is not closed with ']'")
        if text[pos] == "]":
            break
        line = text.count("\n", 0, pos) + 1
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})") from None
        records.append((obj, f"{path}:{line} (sample {len(records)})"))
    if text[pos + 1 :].strip():
        raise ValueError(f"{path}:{text.count(chr(10), 0, pos) + 1}: invalid JSON: extra data after the list")
    return records


def _hf_records(name: str, split: str) -> list[tuple[object, str]]:
    try:
        import datasets
    except ImportError:
        raise FileNotFoundError(
            f"{name!r} is not a file, and loading a Hugging Face dataset needs `pip install evoembedding[datasets]`"
        ) from None
    rows = datasets.load_dataset(name, split=split)
    return [(dict(row), f"{name}[{split}] row {i}") for i, row in enumerate(rows)]


def load_samples(source: str | Path, *, skip_invalid: bool = False, split: str = "train") -> LoadedData:
    """Read EvoTrain samples from a JSON/JSONL file, or a Hugging Face dataset name (``datasets`` extra).

    Invalid samples raise a ``ValueError`` naming file, line and field; with ``skip_invalid`` they are
    skipped and their messages collected in ``LoadedData.skipped``.
    """
    path = Path(source)
    records = _json_records(path) if path.is_file() else _hf_records(str(source), split)
    loaded = LoadedData(samples=[])
    for obj, where in records:
        try:
            loaded.samples.append(parse_sample(obj, where))
        except ValueError as exc:
            if not skip_invalid:
                raise
            loaded.skipped.append(str(exc))
    if not loaded.samples:
        raise ValueError(f"{source}: no valid samples ({len(loaded.skipped)} skipped)")
    return loaded


# ---------------------------------------------------------------------------------- tokenising and caps
def cap_sample(sample: TokenizedSample, max_tokens: int, max_segments: int) -> TokenizedSample | None:
    """Keep the last history segments within the caps; ``None`` when no evidence survives."""
    budget = max_tokens - len(sample.query)
    keep, used = 0, 0
    for segment in reversed(sample.history):
        if keep >= max_segments or used + len(segment) > budget:
            break
        keep, used = keep + 1, used + len(segment)
    start = len(sample.history) - keep
    evidence = [i - start for i in sample.evidence if i >= start]
    if not evidence:
        return None
    queries = []
    for extra in sample.queries:  # a further question whose evidence fell outside the caps is left out
        kept = [i - start for i in extra.evidence if i >= start]
        if kept:
            queries.append(dataclasses.replace(extra, evidence=kept))
    return TokenizedSample(
        history=sample.history[start:],
        query=sample.query,
        evidence=evidence,
        answer=sample.answer,
        query_text=sample.query_text,
        template=sample.template,
        source=sample.source,
        queries=tuple(queries),
    )


@dataclass
class CappedData:
    samples: list[TokenizedSample]
    truncated: int = 0
    """Samples that lost their oldest segments to the caps."""
    dropped: int = 0
    """Samples skipped because all their evidence fell outside the caps."""


def tokenize_samples(
    model, samples: list[TrainSample], *, max_tokens: int = MAX_TOKENS, max_segments: int = MAX_SEGMENTS
) -> CappedData:
    """Tokenise with the model's tokenizer (queries get the query prefix) and apply the caps."""
    if max_tokens < 1 or max_segments < 1:
        raise ValueError("max_tokens and max_segments must be >= 1")
    out = CappedData(samples=[])
    for sample in samples:
        full = TokenizedSample(
            history=model.tokenize(sample.history),
            query=model.tokenize([sample.query], query=True)[0],
            evidence=sample.evidence,
            answer=sample.answer,
            query_text=sample.query,
            template=sample.template,
            source=sample.source,
            queries=tuple(
                TokenizedQuery(
                    query=model.tokenize([q.query], query=True)[0],
                    evidence=q.evidence,
                    answer=q.answer,
                    query_text=q.query,
                    template=q.template,
                )
                for q in sample.queries
            ),
        )
        capped = cap_sample(full, max_tokens, max_segments)
        if capped is None:
            out.dropped += 1
            continue
        out.truncated += len(capped.history) < len(full.history)
        out.samples.append(capped)
    return out


def epoch_order(num_samples: int, seed: int, epoch: int) -> np.ndarray:
    """The sample order of one epoch: a permutation that depends only on (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(num_samples)


def sample_at(samples: list, seed: int, position: int):
    """The sample read at global data position ``position`` (epochs reshuffle deterministically)."""
    epoch, offset = divmod(position, len(samples))
    return samples[int(epoch_order(len(samples), seed, epoch)[offset])]
