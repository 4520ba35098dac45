"""The synthetic generator's building blocks: the seeded sampler (people, places, dates, values)
and one planner per template, each choosing the key turns (evidence, hard negatives, context), the
query and the answer of a sample. :mod:`.synth` buries the plans in dialogues and writes samples.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from . import synth_templates as T

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


def _mentions(text: str, value: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(value.lower()) + r"(?!\w)", text.lower()) is not None
