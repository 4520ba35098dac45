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
import random
import re
import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

from . import synth_templates as T

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
DEFAULT_WEIGHTS = {
    "state_update": 1.0,
    "temporal_order": 1.0,
    "coreference": 1.0,
    "session_date": 1.0,
    "speaker_attribution": 0.8,
    "keyword_trap": 1.0,
    "paraphrase": 0.8,
    "document": 1.0,
    "retrieval": 1.4,
}
MIN_TURNS, MAX_TURNS = 8, 256  # segments per sample, the query included (the paper caps at 256)
LENGTH_DISTRIBUTIONS = ("loguniform", "uniform")
NAME_LOCALES = (
    "en_US",
    "en_GB",
    "en_IN",
    "en_AU",
    "de_DE",
    "fr_FR",
    "es_ES",
    "it_IT",
    "pt_BR",
    "nl_NL",
    "pl_PL",
    "sv_SE",
)
ENGLISH_LOCALE = "en_US"
ASSISTANT_NAMES = ("User", "Assistant")


@lru_cache(maxsize=1)
def _faker():
    from faker import Faker

    fake = Faker(list(NAME_LOCALES))
    # Some locales build word lists from sets (it_IT: ``cities``), so their order, and thus the
    # seeded output, would depend on PYTHONHASHSEED; sorting them makes samples reproducible
    # across processes (a resumed training run regenerates exactly the same data).
    for factory in fake.factories:
        for provider in factory.providers:
            cities = getattr(provider, "cities", None)
            if isinstance(cities, list):
                provider.cities = sorted(cities)
    return fake


@dataclass
class Key:
    """A planned turn: ``speaker`` is "A" (user role) or "B" (assistant role)."""

    speaker: str
    text: str
    role: str = "context"  # "evidence" | "negative" | "context"
    session: int | None = None  # forced session index (session_date)
    max_gap: int | None = None  # at most this many filler turns right before this key (and no session break)


@dataclass
class Plan:
    keys: list[Key]
    query: str
    answer: str
    sessions: int = 0  # number of dated sessions (0: one undated conversation)
    date_session: int | None = None  # the query's "{date}" is this session's date


@dataclass
class _Person:
    name: str
    female: bool

    @property
    def pron(self) -> str:
        return "she" if self.female else "he"

    @property
    def pron_obj(self) -> str:
        return "her" if self.female else "him"

    @property
    def possessive(self) -> str:
        return "her" if self.female else "his"


def _article(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def _lower_first(text: str) -> str:
    return text if re.match(r"I\b|I'", text) else text[:1].lower() + text[1:]


class _Sampler:
    """Per-sample random state: the rng, Faker, the dialogue mode and the two speakers."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.fake = _faker()
        self.fake.seed_instance(seed)
        self.locale = self.rng.choice(NAME_LOCALES)

    def cast(self, friends: bool) -> None:
        """Pick the two speakers: two friends, or a user and an assistant."""
        self.mode = "friends" if friends else "assistant"
        if self.mode == "friends":
            self.a, self.b = self.person(), self.person()
            while self.b.name == self.a.name:
                self.b = self.person()
            self.names = {"A": self.a.name, "B": self.b.name}
        else:
            self.a, self.b = _Person("User", self.rng.random() < 0.5), _Person("Assistant", True)
            self.names = dict(zip("AB", ASSISTANT_NAMES))
        self.styles = {s: self.rng.choice(("plain", "casual", "excited", "lowkey")) for s in "AB"}

    # --- values -------------------------------------------------------------------------------
    def person(self, female: bool | None = None) -> _Person:
        female = self.rng.random() < 0.5 if female is None else female
        local = self.fake[self.rng.choice(NAME_LOCALES)]
        return _Person(local.first_name_female() if female else local.first_name_male(), female)

    def value(self, kind: str) -> str:
        rng, local, en = self.rng, self.fake[self.locale], self.fake[ENGLISH_LOCALE]
        title = lambda: f"The {rng.choice(T.TITLE_ADJ)} {rng.choice(T.TITLE_NOUN)}"  # noqa: E731
        makers = {
            "city": local.city,
            "country": en.country,
            "company": local.company,
            "street": local.street_name,
            "job": lambda: " ".join(reversed(en.job().split(", "))).lower(),
            "person": lambda: f"{self.person().name} {local.last_name()}",
            "friend": lambda: self.person().name,
            "car": lambda: rng.choice(T.CARS),
            "dish": lambda: rng.choice(T.DISHES),
            "hobby": lambda: rng.choice(T.HOBBIES),
            "instrument": lambda: rng.choice(T.INSTRUMENTS),
            "pet": lambda: rng.choice(T.PETS),
            "gift": lambda: rng.choice(T.GIFTS),
            "sport": lambda: rng.choice(T.SPORTS),
            "commute": lambda: rng.choice(T.COMMUTES),
            "allergen": lambda: rng.choice(T.ALLERGENS),
            "field": lambda: rng.choice(T.FIELDS),
            "language": lambda: rng.choice(T.LANGUAGES),
            "injury": lambda: rng.choice(T.INJURIES),
            "activity": lambda: rng.choice(T.ACTIVITIES),
            "weekday": lambda: rng.choice(T.WEEKDAYS),
            "month": lambda: rng.choice(T.MONTHS),
            "book": title,
            "show": lambda: title().replace("The ", rng.choice(["The ", "", "Tales of the "]), 1),
            "band": lambda: f"{rng.choice(['The ', ''])}{rng.choice(T.BAND_WORDS)} {rng.choice(T.BAND_NOUNS)}",
            "restaurant": lambda: rng.choice(
                [
                    f"{local.last_name()}'s",
                    f"Café {rng.choice(T.TITLE_NOUN)}",
                    f"The {rng.choice(T.TITLE_ADJ)} {rng.choice(T.TITLE_NOUN)}",
                ]
            ),
            "daypair": lambda: " and ".join(d + "s" for d in sorted(rng.sample(T.WEEKDAYS, 2), key=T.WEEKDAYS.index)),
            "money": lambda: f"{rng.choice('$€£')}{rng.randrange(600, 3200, 25):,}",
            "racetime": lambda: f"{rng.randint(19, 34)}:{rng.randint(0, 59):02d}",
            "minutes": lambda: f"{rng.randrange(10, 95, 5)} minutes",
            "year": lambda: str(rng.randint(1950, 2022)),
            "count": lambda: f"{rng.randrange(40, 9000, 10):,}",
            "award": lambda: f"{local.last_name()} {rng.choice(['Prize', 'Medal', 'Fellowship', 'Award'])}",
            "product": lambda: f"its {en.catch_phrase().lower()}",
        }
        if kind not in makers:
            raise KeyError(f"unknown value kind {kind!r}")
        return makers[kind]()

    def values(self, kind: str, n: int) -> list[str]:
        """``n`` distinct values of one kind (case-insensitively distinct, none a word of another)."""
        out: list[str] = []
        for _ in range(200 * n):
            v = self.value(kind)
            if not any(_mentions(v, o) or _mentions(o, v) for o in out):
                out.append(v)
            if len(out) == n:
                return out
        raise RuntimeError(f"could not draw {n} distinct {kind!r} values")

    def fill(self, frame: str, **fixed: str) -> str:
        """Format ``frame``, drawing every slot not given in ``fixed``."""
        return self.fill_all([frame], **fixed)[0]

    def fill_all(self, frames: Sequence[str], **fixed: str) -> list[str]:
        """Format several frames sharing their slots (``{x_cap}`` is ``{x}`` capitalised)."""
        slots = dict(fixed)
        for frame in frames:
            for _, name, _, _ in string.Formatter().parse(frame):
                if name and name not in slots:
                    base = name.removesuffix("_cap")
                    slots.setdefault(base, self.value(base))
                    if name != base:
                        slots[name] = slots[base][:1].upper() + slots[base][1:]
        return [frame.format(**slots) for frame in frames]

    def ref(self, speaker: str) -> dict[str, str]:
        """How a query names the speaker: third person for friends, first person for the user."""
        if self.mode == "assistant":
            return {"subj": "I", "poss": "my", "does": "do", "is": "am", "their": "my"}
        p = self.a if speaker == "A" else self.b
        return {"subj": p.name, "poss": f"{p.name}'s", "does": "does", "is": "is", "their": p.possessive}

    def subject(self) -> str:
        return "A" if self.mode == "assistant" else self.rng.choice("AB")

    def counts(self, room: int, low: int, high: int, per: int) -> int:
        """How many key items fit ``room`` context turns: ``low`` always, one more per ``per`` turns."""
        return self.rng.randint(low, max(low, min(high, low + (room - MIN_TURNS) // per)))

    def sessions_for(self, room: int) -> int:
        return self.rng.randint(2, min(6, room // 8)) if room >= 16 and self.rng.random() < 0.4 else 0

    # --- surface style -----------------------------------------------------------------------------
    def styled(self, speaker: str, text: str, key: bool) -> str:
        """Speaker style; key turns only get additions so their facts stay intact."""
        if self.mode == "assistant":
            if key and speaker == "A":
                text = (text if text[-1] in ".!?" else text + ".") + self.rng.choice(T.USER_FOLLOWUPS)
            return text
        style, rng = self.styles[speaker], self.rng
        if style == "casual":
            text = text if key else _lower_first(text).rstrip(".")
            text += rng.choice(["", "", " lol", " haha"])
        elif style == "excited":
            text = text.rstrip(".!") + rng.choice(["!", "!!", "! " + rng.choice(T.EMOJIS)])
        elif style == "lowkey" and not key:
            text = text.lower().replace(" i ", " I ").rstrip(".!")
        elif rng.random() < 0.1:
            text += " " + rng.choice(T.EMOJIS)
        return text


# ------------------------------------------------------------------------------------- templates
def _state_update(s: _Sampler, room: int) -> Plan:
    attr = s.rng.choice(T.STATE_ATTRIBUTES)
    who = s.subject()
    extra = {}
    if "rel" in attr.get("extra", {}):
        extra["rel"] = s.rng.choice(T.RELATIVES_F + T.RELATIVES_M)
    vals = s.values(attr["value"], s.counts(room, 2, 4, 10))
    keys = []
    for i, v in enumerate(vals):
        frame = s.rng.choice(attr["first"] if i == 0 else attr["update"])
        text = s.fill(frame, v=v, av=_article(v), **extra)
        keys.append(Key(who, text, "evidence" if i == len(vals) - 1 else "negative"))
    query = s.fill(s.rng.choice(attr["query"]), **s.ref(who), **extra)
    return Plan(keys, query, vals[-1], s.sessions_for(room))


def _temporal_order(s: _Sampler, room: int) -> Plan:
    series = s.rng.choice(T.TEMPORAL_SERIES)
    who = s.subject()
    vals = s.values(series["value"], s.counts(room, 3, 5, 8))
    keys = [Key(who, s.fill(s.rng.choice(series["frames"]), v=v), "negative") for v in vals]
    kind = s.rng.choice(("first", "last", "before", "after"))
    target = {
        "first": 0,
        "last": len(vals) - 1,
        "before": s.rng.randrange(len(vals) - 1),
        "after": s.rng.randrange(1, len(vals)),
    }[kind]
    anchor = {"before": target + 1, "after": target - 1}.get(kind)
    keys[target].role = "evidence"
    query = s.fill(series[kind], **s.ref(who), x=vals[anchor] if anchor is not None else "")
    return Plan(keys, query, vals[target], s.sessions_for(room))


def _coreference(s: _Sampler, room: int) -> Plan:
    who, other = s.subject(), None
    keys: list[Key] = []
    if s.rng.random() < 0.6:  # a person, later referred to as "she"/"he"
        fact = s.rng.choice(T.COREF_FACTS)
        person = s.person()
        v, v_other = s.values(fact["value"], 2)
        if room >= 10:
            other = s.person()
            while other.name == person.name:
                other = s.person()
            keys.append(
                Key(
                    s.rng.choice("AB") if s.mode == "friends" else who,
                    s.fill(fact["distractor"], Other=other.name, v=v_other, av=_article(v_other)),
                    "negative",
                )
            )
        intro = s.fill(s.rng.choice(T.COREF_INTROS), name=person.name, role=s.rng.choice(T.COWORKER_ROLES))
        keys.append(Key(who, intro, "negative"))
        if s.mode == "friends" and s.rng.random() < 0.5:
            bridges = T.FRIEND_BRIDGES_F if person.female else T.FRIEND_BRIDGES_M
            keys.append(Key("B" if who == "A" else "A", s.rng.choice(bridges), max_gap=0))
        evidence = s.fill(s.rng.choice(fact["frames"]), Pron=person.pron.capitalize(), v=v, av=_article(v))
        keys.append(Key(who, evidence, "evidence", max_gap=s.rng.randint(0, 2)))
        query = fact["query"].format(name=person.name)
    else:  # a place, later referred to as "that place"
        place, other_place = s.values("restaurant", 2)
        v, v_other = s.values("dish", 2)
        if room >= 10:
            keys.append(Key(who, s.fill(T.PLACE_DISTRACTOR, other_place=other_place, v=v_other), "negative"))
        keys.append(Key(who, s.fill(s.rng.choice(T.PLACE_INTROS), place=place), "negative"))
        keys.append(Key(who, s.fill(s.rng.choice(T.PLACE_FACTS), v=v), "evidence", max_gap=s.rng.randint(0, 2)))
        query = s.fill(s.rng.choice(T.PLACE_QUERY), place=place, **s.ref(who))
    return Plan(keys, query, v, s.sessions_for(room))


def _session_date(s: _Sampler, room: int) -> Plan:
    activity = s.rng.choice(T.SESSION_ACTIVITIES)
    who = s.subject()
    n = s.counts(room, 2, 5, 10)
    vals = s.values(activity["value"], n)
    keys = [Key(who, s.fill(s.rng.choice(activity["frames"]), v=v), "negative", session=i) for i, v in enumerate(vals)]
    target = s.rng.randrange(n)
    keys[target].role = "evidence"
    query = activity["query"].format(**s.ref(who), date="{date}")
    return Plan(keys, query, vals[target], sessions=n, date_session=target)


def _speaker_attribution(s: _Sampler, room: int) -> Plan:
    topics = s.rng.sample(T.ATTRIBUTION_TOPICS, s.counts(room, 1, 2, 12))
    keys: list[Key] = []
    for n, topic in enumerate(topics):
        who = s.subject()
        target_name = (s.a if who == "A" else s.b).name
        v, v_other = s.values(topic["value"], 2)
        mine = Key(who, s.fill(s.rng.choice(topic["frames"]), v=v), "evidence" if n == 0 else "context")
        text = s.fill(s.rng.choice(topic["frames"]), v=v_other)
        other_first = s.rng.random() < 0.4
        echo = (
            f"{target_name}, {_lower_first(text)}"
            if other_first
            else s.rng.choice(T.ATTRIBUTION_ECHOES).format(name=target_name, text=text, text_lc=_lower_first(text))
        )
        theirs = Key("B" if who == "A" else "A", echo, "negative" if n == 0 else "context")
        keys.extend([theirs, mine] if other_first else [mine, theirs])
        if n == 0:
            query, answer = topic["query"].format(name=target_name), v
    return Plan(keys, query, answer, s.sessions_for(room))


def _paraphrase_plan(s: _Sampler, room: int, traps: int) -> Plan:
    fact = s.rng.choice(T.PARAPHRASE_FACTS)
    who = s.subject()
    v = s.value(fact["value"])
    keys = [Key(who, s.fill(s.rng.choice(fact["evidence"]), v=v), "evidence")]
    for trap in s.rng.sample(fact["traps"], traps):
        speaker = s.rng.choice("AB") if s.mode == "friends" else "A"
        keys.insert(s.rng.randint(0, len(keys)), Key(speaker, s.fill(trap), "negative"))
    query = s.fill(fact["query"], **s.ref(who))
    return Plan(keys, query, v, s.sessions_for(room))


def _keyword_trap(s: _Sampler, room: int) -> Plan:
    return _paraphrase_plan(s, room, s.counts(room, 1, 3, 10))


def _paraphrase(s: _Sampler, room: int) -> Plan:
    return _paraphrase_plan(s, room, 0)


def _retrieval(s: _Sampler, room: int) -> Plan:
    """Plain retrieval: several unrelated personal facts; the query paraphrases one of them."""
    who = s.subject()
    facts = s.rng.sample(T.PARAPHRASE_FACTS, s.counts(room, 2, 6, 6))
    keys, answer, query = [], "", ""
    for n, fact in enumerate(facts):
        v = s.value(fact["value"])
        keys.append(Key(who, s.fill(s.rng.choice(fact["evidence"]), v=v), "evidence" if n == 0 else "context"))
        if n == 0:
            query, answer = s.fill(fact["query"], **s.ref(who)), v
    s.rng.shuffle(keys)
    return Plan(keys, query, answer, s.sessions_for(room))


PLANNERS = {
    "state_update": _state_update,
    "temporal_order": _temporal_order,
    "coreference": _coreference,
    "session_date": _session_date,
    "speaker_attribution": _speaker_attribution,
    "keyword_trap": _keyword_trap,
    "paraphrase": _paraphrase,
    "retrieval": _retrieval,
}


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
def _mentions(text: str, value: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(value.lower()) + r"(?!\w)", text.lower()) is not None


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
