"""Seeded generator of EvoTrain samples whose evidence can only be found *with context*.

Each template plans a few key turns (evidence, hard negatives, context) plus a query and answer;
:func:`_assemble` buries them in realistic chit-chat (two friends, REALTALK-style, or a user and an
assistant, LongMemEval-style), optionally split into dated sessions. ``document`` samples are
sliding-window chunks of a generated multi-section document instead. Same seed and arguments give
byte-identical output.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from . import synth_templates as T
from .synth_plans import (
    DEFAULT_WEIGHTS,
    LENGTH_DISTRIBUTIONS,
    MAX_TURNS,
    MIN_TURNS,
    PLANNERS,
    Plan,
    _article,
    _mentions,
    _Sampler,
)

TEMPLATES: tuple[str, ...] = (
    "state_update",
    "temporal_order",
    "coreference",
    "session_date",
    "speaker_attribution",
    "keyword_trap",
    "paraphrase",
    "document",
    "retrieval",
)
# Plain retrieval keeps general skill; the rest are context-dependent.


# ---------------------------------------------------------------------------------- dialogues
@dataclass
class _Turn:
    speaker: str | None  # None: a session header
    text: str
    role: str = "context"
    kind: str = "key"  # "key" | "opener" | "reply" | "reaction" | "single" | "header"


def _fillers(s: _Sampler, count: int, prev: _Turn | None, next_speaker: str) -> list[_Turn]:
    """``count`` chit-chat turns after ``prev`` such that the last one is not by ``next_speaker``."""
    if count == 0:
        return []
    other = {"A": "B", "B": "A"}
    start = "A" if prev is None or prev.speaker is None else other[prev.speaker]
    speakers = [start if i % 2 == 0 else other[start] for i in range(count)]
    if speakers[-1] == next_speaker:  # one double text: right after ``prev``, or after the opening turn
        head = 1 if prev is None else 0
        speakers = speakers[:head] + [other[sp] for sp in speakers[head:]]
    exchanges = T.ASSISTANT_EXCHANGES if s.mode == "assistant" else T.FRIEND_EXCHANGES
    out: list[_Turn] = []
    i = 0
    while i < count:
        sp, last = speakers[i], (out[-1] if out else prev)
        replying = last is not None and last.speaker not in (None, sp)
        if replying and last.kind == "key" and (s.rng.random() < 0.8 or i + 1 == count):
            pool = T.ASSISTANT_REACTIONS if s.mode == "assistant" and sp == "B" else T.FRIEND_REACTIONS
            out.append(_Turn(sp, s.styled(sp, s.rng.choice(pool), False), kind="reaction"))
            i += 1
        elif i + 1 < count and speakers[i + 1] != sp and (s.mode == "friends" or sp == "A"):
            opener, reply = s.fill_all(s.rng.choice(exchanges))
            out.append(_Turn(sp, s.styled(sp, opener, False), kind="opener"))
            out.append(_Turn(speakers[i + 1], s.styled(speakers[i + 1], reply, False), kind="reply"))
            i += 2
        else:
            out.append(_Turn(sp, s.styled(sp, _single(s, sp, last, replying), False), kind="single"))
            i += 1
    return out


def _single(s: _Sampler, speaker: str, last: _Turn | None, replying: bool) -> str:
    """A lone filler turn: a greeting, a thank-you, a reaction or a passing remark."""
    if s.mode == "assistant":
        if speaker == "B":
            return s.rng.choice(T.ASSISTANT_REACTIONS)
        return s.rng.choice(T.USER_REPLIES if last is not None and last.kind == "reply" else T.USER_OPENERS)
    if last is None or last.speaker is None:
        return s.rng.choice(T.FRIEND_OPENERS)
    if replying and last.kind not in ("reaction", "reply"):
        return s.rng.choice(T.FRIEND_REACTIONS)
    return s.fill(s.rng.choice(T.FRIEND_EXCHANGES)[0])


def _session_dates(s: _Sampler, n: int) -> list[date]:
    day = date(2018, 1, 1) + timedelta(days=s.rng.randrange(365 * 7))
    out = []
    for _ in range(n):
        out.append(day)
        day += timedelta(days=s.rng.randint(1, 6))
    return out


def _date_parts(d: date, n: int = 0) -> dict[str, str]:
    return {
        "n": str(n),
        "d": str(d.day),
        "dd": f"{d.day:02d}",
        "mm": f"{d.month:02d}",
        "y": str(d.year),
        "month": T.MONTHS[d.month - 1],
        "weekday": T.WEEKDAYS[d.weekday()],
    }


def _assemble(s: _Sampler, plan: Plan, length: int) -> tuple[list[_Turn], str]:
    """Bury the plan's keys in filler so the sample has ``length`` segments; returns turns and query."""
    keys = plan.keys
    gaps = len(keys) + 1
    need = [0] * gaps
    need[0] = int(keys[0].speaker == "B")  # the conversation opens with the user role
    need[-1] = int(keys[-1].speaker == "A")  # and ends with the assistant role, before the query
    free = length - 1 - plan.sessions - len(keys) - sum(need)
    if free < 0:
        raise RuntimeError(f"plan needs more than {length} turns")
    caps = [keys[g].max_gap if g < len(keys) and keys[g].max_gap is not None else None for g in range(gaps)]
    counts = list(need)
    open_gaps = [g for g in range(gaps) if caps[g] is None or counts[g] < caps[g]]
    for _ in range(free):
        g = s.rng.choice(open_gaps)
        counts[g] += 1
        if caps[g] is not None and counts[g] >= caps[g]:
            open_gaps.remove(g)
    items: list[_Turn] = []
    key_index: list[int] = []
    for g in range(gaps):
        nxt = keys[g].speaker if g < len(keys) else "A"
        items += _fillers(s, counts[g], items[-1] if items else None, nxt)
        if g < len(keys):
            key_index.append(len(items))
            items.append(_Turn(keys[g].speaker, s.styled(keys[g].speaker, keys[g].text, True), keys[g].role))
    query = plan.query
    if plan.sessions:
        starts = _session_starts(s, plan, items, key_index)
        dates = _session_dates(s, plan.sessions)
        header = s.rng.choice(T.SESSION_HEADERS)
        for n in reversed(range(plan.sessions)):
            items.insert(starts[n], _Turn(None, header.format(**_date_parts(dates[n], n + 1)), kind="header"))
        if plan.date_session is not None:
            query = query.format(date=s.rng.choice(T.QUERY_DATES).format(**_date_parts(dates[plan.date_session])))
    return items, query


def _session_starts(s: _Sampler, plan: Plan, items: list[_Turn], key_index: list[int]) -> list[int]:
    """Item indices where each session begins: keys stay in their forced sessions, glued keys stay put."""
    glued = {key_index[k] for k, key in enumerate(plan.keys) if key.max_gap is not None}
    glued |= {
        i
        for k, key in enumerate(plan.keys)
        if key.max_gap is not None
        for i in range(key_index[k - 1] + 1 if k else 0, key_index[k])
    }
    forced = [(key_index[k], key.session) for k, key in enumerate(plan.keys) if key.session is not None]
    if forced:  # session n starts after session n-1's key and no later than its own key
        starts = [0]
        for n in range(1, plan.sessions):
            lo = max(i for i, sess in forced if sess == n - 1) + 1
            hi = min(i for i, sess in forced if sess == n)
            starts.append(s.rng.randint(lo, hi))
        return starts
    allowed = [i for i in range(1, len(items)) if i not in glued]
    return [0] + sorted(s.rng.sample(allowed, plan.sessions - 1))


def _messages(s: _Sampler, turns: list[_Turn], rendered: list[str]) -> list[dict]:
    """Alternating messages: A is the user, B the assistant; headers join the next message."""
    messages: list[dict] = []
    pending: list[str] = []
    for turn, text in zip(turns, rendered):
        if turn.speaker is None:
            pending.append(text)
            continue
        role = "user" if turn.speaker == "A" else "assistant"
        content = "\n".join(pending + [text])
        pending = []
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] += "\n" + content
        else:
            messages.append({"role": role, "content": content})
    return messages


# ---------------------------------------------------------------------------------- documents
def _document(s: _Sampler, length: int) -> dict:
    """Sliding-window chunks of a multi-section document about parallel entities."""
    kind = s.rng.choice(T.DOCUMENT_KINDS)
    window = s.rng.choice((3, 4))
    stride = s.rng.choice((window - 1, window // 2 + 1))
    n_sentences = window + (length - 2) * stride  # gives exactly length - 1 chunks
    sentences = [s.fill(s.rng.choice(kind["title"])) + ".", s.rng.choice(T.DOCUMENT_OPENINGS)]
    facts_at: list[tuple[int, int, str, str]] = []  # (sentence index, fact index, value, entity name)
    used: dict[int, list[str]] = {}
    entities: list[str] = []
    while len(sentences) < n_sentences:
        person = s.person() if kind["entity"] == "person" else None
        name = f"{person.name} {s.fake[s.locale].last_name()}" if person else s.value("company")
        if name in entities:
            continue
        entities.append(name)
        pron = {"Pron": person.pron.capitalize(), "pron": person.pron, "pron_obj": person.pron_obj} if person else {}
        job = s.value("job")
        sentences.append(s.fill(s.rng.choice(kind["intro"]), name=name, av=_article(job)))
        generic = s.rng.sample(kind["generic"], len(kind["generic"]))
        body = [s.fill(g, **pron) for g in generic[: window - 1]]  # no fact shares a window with the name
        rest: list[tuple[str, tuple | None]] = [(s.fill(g, **pron), None) for g in generic[window - 1 : window + 1]]
        for f in s.rng.sample(range(len(kind["facts"])), s.rng.randint(2, len(kind["facts"]))):
            fact = kind["facts"][f]
            v = s.value(fact["value"])
            if any(_mentions(v, o) or _mentions(o, v) for o in used.get(f, [])):
                continue
            used.setdefault(f, []).append(v)
            rest.append((s.fill(fact["frame"], v=v, **pron), (f, v, name)))
        s.rng.shuffle(rest)
        sentences += body
        for text, fact_info in rest:
            if fact_info is not None:
                facts_at.append((len(sentences), *fact_info))
            sentences.append(text)
    sentences = sentences[:n_sentences]
    chunks = [" ".join(sentences[i : i + window]) for i in range(0, n_sentences - window + 1, stride)]
    spans = [range(i, i + window) for i in range(0, n_sentences - window + 1, stride)]
    candidates = [f for f in facts_at if f[0] < n_sentences]
    pos, f, answer, entity = s.rng.choice(candidates)
    same_fact = {p for p, g, _, _ in candidates if g == f and p != pos}
    evidence = [c for c, span in enumerate(spans) if pos in span]
    negatives = [c for c, span in enumerate(spans) if c not in evidence and same_fact & set(span)]
    query = kind["facts"][f]["query"].format(name=entity)
    return _sample(
        chunks + [query],
        evidence,
        negatives,
        [{"role": "user", "content": query}, {"role": "assistant", "content": answer}],
        "document",
        answer,
    )


# ---------------------------------------------------------------------------------- samples
def _sample(turns, evidence, negatives, messages, template, answer) -> dict:
    return {
        "messages": messages,
        "meta": {
            "turns": turns,
            "evidence_turns": evidence,
            "hard_negative_turns": negatives,
            "template": template,
            "answer": answer,
            "seed": 0,
        },
    }


def _dialogue(s: _Sampler, template: str, length: int) -> dict:
    # speaker attribution needs two people who both talk about themselves
    s.cast(friends=template == "speaker_attribution" or s.rng.random() < 0.7)
    plan = PLANNERS[template](s, length - 1)
    items, query = _assemble(s, plan, length)
    rendered = [t.text if t.speaker is None else f"{s.names[t.speaker]}: {t.text}" for t in items]
    evidence = [i for i, t in enumerate(items) if t.role == "evidence"]
    negatives = [i for i, t in enumerate(items) if t.role == "negative"]
    messages = _messages(s, items, rendered) + [
        {"role": "user", "content": query},
        {"role": "assistant", "content": plan.answer},
    ]
    return _sample(rendered + [query], evidence, negatives, messages, template, plan.answer)


def _well_labelled(sample: dict) -> bool:
    """The answer is in every evidence segment and in no other history segment."""
    meta = sample["meta"]
    evidence = set(meta["evidence_turns"])
    return all(_mentions(t, meta["answer"]) == (i in evidence) for i, t in enumerate(meta["turns"][:-1]))


def sample_seed(seed: int, index: int) -> int:
    """The seed of sample ``index`` of a run seeded with ``seed`` (stored as ``meta.seed``)."""
    return int.from_bytes(hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest(), "big") >> 1


def generate_sample(
    seed: int,
    *,
    templates: Sequence[str] | None = None,
    min_turns: int = MIN_TURNS,
    max_turns: int = MAX_TURNS,
    length_distribution: str = "loguniform",
) -> dict:
    """One sample from a per-sample seed (see :func:`sample_seed`)."""
    names, weights = _check_args(templates, min_turns, max_turns, length_distribution)
    s = _Sampler(seed)
    for _ in range(50):
        template = s.rng.choices(names, weights)[0]
        if length_distribution == "uniform":
            length = s.rng.randint(min_turns, max_turns)
        else:
            length = min(max_turns, int(math.exp(s.rng.uniform(math.log(min_turns), math.log(max_turns + 1)))))
        sample = _document(s, length) if template == "document" else _dialogue(s, template, length)
        if _well_labelled(sample):
            sample["meta"]["seed"] = seed
            return sample
    raise RuntimeError(f"no well-labelled sample for seed {seed} after 50 tries")


def _check_args(templates, min_turns, max_turns, length_distribution) -> tuple[list[str], list[float]]:
    names = list(TEMPLATES if templates is None else templates)
    unknown = [t for t in names if t not in TEMPLATES]
    if not names or unknown:
        raise ValueError(f"templates: unknown or empty {unknown or names!r}; choose from {', '.join(TEMPLATES)}")
    for what, v in (("min_turns", min_turns), ("max_turns", max_turns)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{what} must be an int, got {type(v).__name__}")
    if not MIN_TURNS <= min_turns <= max_turns <= MAX_TURNS:
        raise ValueError(f"need {MIN_TURNS} <= min_turns ({min_turns}) <= max_turns ({max_turns}) <= {MAX_TURNS}")
    if length_distribution not in LENGTH_DISTRIBUTIONS:
        raise ValueError(f"length_distribution must be one of {LENGTH_DISTRIBUTIONS}, got {length_distribution!r}")
    return names, [DEFAULT_WEIGHTS[t] for t in names]


def generate(
    n: int,
    seed: int = 0,
    *,
    templates: Sequence[str] | None = None,
    min_turns: int = MIN_TURNS,
    max_turns: int = MAX_TURNS,
    length_distribution: str = "loguniform",
) -> Iterator[dict]:
    """``n`` EvoTrain samples (dicts), deterministic in ``seed`` and the other arguments."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    _check_args(templates, min_turns, max_turns, length_distribution)
    for i in range(n):
        yield generate_sample(
            sample_seed(seed, i),
            templates=templates,
            min_turns=min_turns,
            max_turns=max_turns,
            length_distribution=length_distribution,
        )


def write_jsonl(path: str | Path, n: int, seed: int = 0, *, progress: bool = False, **kwargs) -> Path:
    """Write ``n`` samples to ``path`` as JSONL (written to a temporary file, then renamed)."""
    from tqdm import tqdm

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        for sample in tqdm(generate(n, seed, **kwargs), total=n, desc="synth", unit="sample", disable=not progress):
            out.write(json.dumps(sample, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


# ---------------------------------------------------------------------------------- CLI
def _run(args: argparse.Namespace) -> int:
    templates = [t.strip() for t in args.templates.split(",")] if args.templates else None
    path = write_jsonl(
        args.out,
        args.n,
        args.seed,
        templates=templates,
        min_turns=args.min_turns,
        max_turns=args.max_turns,
        length_distribution=args.length_distribution,
        progress=True,
    )
    print(f"wrote {args.n} samples to {path}")
    return 0


def register(subparsers) -> None:
    """Add ``evoembedding synth``."""
    p = subparsers.add_parser(
        "synth",
        help="generate context-dependent synthetic EvoTrain samples (JSONL)",
        description="Generate seeded, deterministic EvoTrain samples whose evidence needs context: "
        f"templates {', '.join(TEMPLATES)}.",
    )
    p.add_argument("--out", required=True, help="output JSONL path")
    p.add_argument("-n", type=int, default=1000, help="number of samples (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--templates", default=None, help="comma-separated subset of templates (default: all)")
    p.add_argument("--min-turns", type=int, default=MIN_TURNS, help=f"fewest segments incl. the query (>= {MIN_TURNS})")
    p.add_argument("--max-turns", type=int, default=MAX_TURNS, help=f"most segments incl. the query (<= {MAX_TURNS})")
    p.add_argument(
        "--length-distribution",
        choices=LENGTH_DISTRIBUTIONS,
        default="loguniform",
        help="how sample lengths are drawn between min and max (default loguniform: many short, some long)",
    )
    p.set_defaults(func=_run)
