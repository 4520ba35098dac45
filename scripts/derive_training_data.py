#!/usr/bin/env python
"""Derive EvoTrain samples with long multi-session histories from real dialogue corpora.

Reads Schema-Guided Dialogue (``sgd_train.jsonl.gz`` / ``sgd_dev.jsonl.gz``) and
Synthetic-Persona-Chat (``spc.jsonl.gz``) from ``--corpora`` (default ``../shared/corpora``) and
writes EvoTrain JSONL (schema: ``evoembedding_core/training/data.py``).

One sample is one person's history: several dialogues concatenated as dated sessions
(``[2023-05-01] User: ...`` on half the streams, plain ``User: ...`` on the rest), followed by
questions asked at the end about any earlier session. The first question is the stream's query
(``meta.turns[-1]``); the others go to ``meta.queries`` and are asked over the same history.

Questions and their evidence:

* SGD, stated: a slot value the user gave (often in reply to a system question such as "Which
  city?"); the question names the dialogue by another of its values ("What time did I want for the
  restaurant at 71 Saint Peter?"), so the evidence turn's own words rarely match the question.
* SGD, confirmed: a value the system offered and the user accepted ("Yes, that works"); positives
  are the offer and the confirmation.
* SGD, corrected: a slot whose value the user changed; "finally" questions have the correcting
  turn as evidence, "first" questions the original one.
* SPC: a friend's persona fact as stated in their answer ("Who told me that they teach?").

Same-domain dialogues in one stream give hard negatives. Held-out data come from ``sgd_dev`` and
from the SPC chats whose id hashes to the held-out tenth. Deterministic for a given ``--seed``.

    python scripts/derive_training_data.py --out runs/data/ctx_train.jsonl --split train -n 3000
    python scripts/derive_training_data.py --out runs/data/ctx_heldout.jsonl --split heldout -n 40 --seed 7
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import json
import random
import re
import sys
from pathlib import Path

DOMAINS = {
    "Alarm": "alarm",
    "Banks": "bank transfer",
    "Buses": "bus trip",
    "Calendar": "calendar entry",
    "Events": "event",
    "Flights": "flight",
    "Homes": "apartment visit",
    "Hotels": "hotel",
    "Media": "movie to stream",
    "Messaging": "message",
    "Movies": "movie",
    "Music": "song",
    "Payment": "payment",
    "RentalCars": "rental car",
    "Restaurants": "restaurant",
    "RideSharing": "ride",
    "Services": "appointment",
    "Trains": "train trip",
    "Travel": "sightseeing",
    "Weather": "weather check",
}
SLOT_NAMES = {
    "number_of_seats": "number of people",
    "number_of_riders": "number of riders",
    "number_of_tickets": "number of tickets",
    "number_of_adults": "number of adults",
    "party_size": "party size",
    "restaurant_name": "restaurant",
    "hotel_name": "hotel",
    "event_name": "event",
    "movie_name": "movie",
    "song_name": "song",
    "theater_name": "theater",
    "city_of_event": "city",
    "recipient_account_name": "recipient",
    "dentist_name": "dentist",
    "doctor_name": "doctor",
    "stylist_name": "stylist",
    "where_to": "destination",
    "to_location": "destination",
    "from_location": "starting point",
}
NAME_SLOTS = {"restaurant_name", "hotel_name", "event_name", "movie_name", "song_name", "theater_name", "title",
              "artist", "album", "dentist_name", "doctor_name", "stylist_name", "recipient_account_name", "property_name",
              "attraction_name", "place_name", "car_name"}  # fmt: skip
SKIP_VALUES = {"true", "false", "dontcare", "none", ""}
NAMES = ["Emi", "Liam", "Noah", "Mia", "Ava", "Lucas", "Sofia", "Omar", "Priya", "Kenji", "Lena", "Mateo", "Zoe",
         "Ivan", "Amara", "Jonas", "Chloe", "Ravi", "Nora", "Diego", "Hana", "Felix", "Maya", "Theo"]  # fmt: skip
STOP = set(
    "i me my myself we our you your he she it they them their a an the and or but if of at by for with about to from "
    "in on is am are was were be been being have has had do does did not no so very really just too also can will "
    "would should could this that these those there here what which who when where how all any some more most like "
    "love".split()
)


# ---------------------------------------------------------------------------------- phrasing
def slot_phrase(slot: str) -> str:
    """Human wording of an SGD slot name."""
    return SLOT_NAMES.get(slot, slot.replace("_", " "))


def wh_phrase(slot: str) -> str:
    """The question's opening for a slot ("What time", "Which city", "Which restaurant", ...)."""
    name = slot_phrase(slot)
    if "time" in slot:
        return "What time"
    if "date" in slot:
        return "Which day"
    if slot.startswith("number_of") or slot in {"party_size", "amount", "number_of_days"}:
        return f"What {name}"
    return f"Which {name}"


def anchor_phrase(slot: str, value: str) -> str:
    """How a question names the dialogue by one of its other values ("at 71 Saint Peter", "in Paris")."""
    if slot in NAME_SLOTS:
        return f"for {value}"
    if "city" in slot or slot in {"location", "area", "destination", "origin", "event_location"}:
        return f"in {value}"
    if "date" in slot:
        return f"on {value}"
    if "time" in slot:
        return f"at {value}"
    return f"with {slot_phrase(slot)} {value}"


def domain_of(service: str) -> str:
    return DOMAINS.get(service.split("_")[0], service.split("_")[0].lower())


STATED = ["{wh} did I want for the {d}{a}?", "{wh} did I ask for when planning the {d}{a}?",
          "For the {d}{a}, {whl} did I pick?", "{wh} did I give you for the {d}{a}?"]  # fmt: skip
CONFIRMED = ["{wh} did I agree to for the {d}{a}?", "{wh} did I accept for the {d}{a}?",
             "For the {d}{a}, {whl} did I say yes to?"]  # fmt: skip
LATEST = ["{wh} did I finally settle on for the {d}{a}?", "After changing my mind, {whl} did I go with for the {d}{a}?",
          "{wh} did I end up with for the {d}{a}?"]  # fmt: skip
FIRST = ["{wh} did I ask for first for the {d}{a}, before I changed it?",
         "Before I changed my mind, {whl} did I want for the {d}{a}?"]  # fmt: skip
PERSONA = ["Who told me that {fact}?", "Which friend said that {fact}?", "Who mentioned that {fact}?"]


def question(rng: random.Random, templates: list[str], slot: str, domain: str, anchor: str) -> str:
    wh = wh_phrase(slot)
    text = rng.choice(templates).format(wh=wh, whl=wh[0].lower() + wh[1:], d=domain, a=anchor)
    return text[0].upper() + text[1:]


# ---------------------------------------------------------------------------------- SGD
def mentions(turn: dict, slot: str, values: list[str]) -> bool:
    """Whether ``turn`` has a span of ``slot`` matching one of ``values`` ("11:30" matches "11:30 am")."""
    wanted = [v.lower() for v in values]
    for span in turn["spans"]:
        got = span["value"].lower()
        if span["slot"] == slot and any(got in v or v in got for v in wanted):
            return True
    return False


def sgd_facts(dialogue: dict) -> list[dict]:
    """Question candidates of one SGD dialogue, turn indices local to the dialogue.

    Each: ``{"kind", "service", "slot", "value", "evidence": [turn...], "first": <turn>}``.
    """
    turns, facts = dialogue["turns"], []
    previous: dict = {}
    history: dict = {}  # (service, slot) -> list of (turn, value, kind, evidence)
    for t, turn in enumerate(turns):
        if turn["speaker"] != "user":
            continue
        state = turn.get("state") or {}
        for service, slots in state.items():
            for slot, values in slots.items():
                if not values or values == previous.get(service, {}).get(slot):
                    continue
                value = values[0]
                if value.strip().lower() in SKIP_VALUES:
                    continue
                if mentions(turn, slot, values):
                    kind, evidence = "stated", [t]
                else:
                    if not (t and mentions(turns[t - 1], slot, values)):
                        continue
                    kind, evidence = "confirmed", [t - 1, t]
                    if t >= 2 and mentions(turns[t - 2], slot, values):  # "No, I'd like 11:30." -> offer -> "Yes"
                        evidence.insert(0, t - 2)
                history.setdefault((service, slot), []).append((t, value, kind, evidence))
        previous = state
    for (service, slot), changes in history.items():
        final = changes[-1]
        values = [c[1] for c in changes]
        if len(set(v.lower() for v in values)) > 1:
            facts.append({"kind": "latest", "service": service, "slot": slot, "value": final[1],
                          "evidence": final[3]})  # fmt: skip
            first = changes[0]
            facts.append({"kind": "first", "service": service, "slot": slot, "value": first[1],
                          "evidence": first[3]})  # fmt: skip
        else:
            facts.append({"kind": changes[0][2], "service": service, "slot": slot, "value": final[1],
                          "evidence": changes[0][3]})  # fmt: skip
    return facts


def final_values(dialogue: dict) -> dict:
    """``{(service, slot): value}`` of the dialogue's last user state."""
    out = {}
    for turn in dialogue["turns"]:
        if turn["speaker"] == "user":
            for service, slots in (turn.get("state") or {}).items():
                for slot, values in slots.items():
                    if values and values[0].strip().lower() not in SKIP_VALUES:
                        out[(service, slot)] = values[0]
    return out


def sgd_stream(rng: random.Random, dialogues: list[dict], by_domain: dict, n_sessions: int) -> list[dict]:
    """Pick ``n_sessions`` dialogues, half of them from a domain already in the stream (hard negatives)."""
    picked = [rng.choice(dialogues)]
    while len(picked) < n_sessions:
        if rng.random() < 0.5:
            domain = rng.choice(picked)["services"][0].split("_")[0]
            picked.append(rng.choice(by_domain[domain]))
        else:
            picked.append(rng.choice(dialogues))
    rng.shuffle(picked)
    return picked


def sgd_sessions(dialogues: list[dict]) -> list[list[tuple[str, str]]]:
    return [[("User" if t["speaker"] == "user" else "Assistant", t["text"]) for t in d["turns"]] for d in dialogues]


def sgd_questions(rng: random.Random, dialogues: list[dict], offsets: list[int]) -> list[dict]:
    """Questions over a stream of SGD dialogues whose answer is unambiguous within the stream."""
    texts = [" ".join(t["text"] for t in d["turns"]).lower() for d in dialogues]
    domains = [domain_of(d["services"][0]) for d in dialogues]
    out = []
    for i, dialogue in enumerate(dialogues):
        values = final_values(dialogue)
        for fact in sgd_facts(dialogue):
            domain = domain_of(fact["service"])
            anchors = [
                (slot, value)
                for (service, slot), value in values.items()
                if service == fact["service"]
                and slot != fact["slot"]
                and value.lower() != fact["value"].lower()
                and not any(value.lower() in texts[j] for j in range(len(dialogues)) if j != i)
                and not any(value.lower() in dialogue["turns"][e]["text"].lower() for e in fact["evidence"])
            ]
            if anchors:
                slot, value = rng.choice(anchors)
                anchor = " " + anchor_phrase(slot, value)
            elif domains.count(domain) == 1:
                anchor = ""
            else:
                continue
            templates = {"stated": STATED, "confirmed": CONFIRMED, "latest": LATEST, "first": FIRST}[fact["kind"]]
            out.append({
                "query": question(rng, templates, fact["slot"], domain, anchor),
                "evidence_turns": [offsets[i] + e for e in fact["evidence"]],
                "answer": fact["value"],
                "template": f"sgd-{fact['kind']}",
            })  # fmt: skip
    return out


# ---------------------------------------------------------------------------------- SPC
PRONOUNS = {"i": "they", "i'm": "they're", "im": "they're", "am": "are", "my": "their", "me": "them",
            "myself": "themselves", "was": "were", "i've": "they've", "i'd": "they'd", "i'll": "they'll"}  # fmt: skip


def third_person(fact: str) -> str:
    """'I love to bake cookies.' -> 'they love to bake cookies'."""
    words = fact.strip().rstrip(".!").split()
    return " ".join(PRONOUNS.get(w.lower(), w if k else w.lower()) for k, w in enumerate(words))


def content(text: str) -> set[str]:
    return {w[:5] for w in re.findall(r"[a-z']+", text.lower()) if w not in STOP and len(w) > 2}


def spc_questions(rng: random.Random, chat: dict, friend: str, offset: int, friend_speaker: str) -> list[dict]:
    out = []
    for fact in chat["personas"].get(friend_speaker, []):
        words = content(fact)
        if len(words) < 2 or re.search(r"\bname\b", fact.lower()):
            continue
        evidence = [
            t
            for t, turn in enumerate(chat["turns"])
            if turn["speaker"] == friend_speaker and len(words & content(turn["text"])) >= max(2, (len(words) + 1) // 2)
        ]
        if not evidence:
            continue
        out.append({
            "query": rng.choice(PERSONA).format(fact=third_person(fact)),
            "evidence_turns": [offset + t for t in evidence],
            "answer": friend,
            "template": "spc-persona",
        })  # fmt: skip
    return out


def spc_stream(rng: random.Random, chats: list[dict], n_sessions: int):
    me = rng.choice(NAMES)
    friends = rng.sample([n for n in NAMES if n != me], 3)
    sessions, questions, offset = [], [], 0
    for chat in rng.sample(chats, n_sessions):
        friend = rng.choice(friends)
        session = [(me if t["speaker"] == "user1" else friend, t["text"]) for t in chat["turns"]]
        candidates = spc_questions(rng, chat, friend, offset, "user2")
        questions.extend(q for q in candidates if not any(q["query"] == p["query"] for p in questions))
        sessions.append(session)
        offset += len(session)
    # a fact two friends share would make the answer ambiguous: keep questions asked once
    counts = {}
    for q in questions:
        counts[q["query"]] = counts.get(q["query"], 0) + 1
    return sessions, [q for q in questions if counts[q["query"]] == 1]


# ---------------------------------------------------------------------------------- samples
def render(rng: random.Random, sessions: list[list[tuple[str, str]]], dated: bool) -> list[str]:
    day = dt.date(2022, 1, 1) + dt.timedelta(days=rng.randrange(900))
    turns = []
    for session in sessions:
        for speaker, text in session:
            turns.append(f"[{day.isoformat()}] {speaker}: {text}" if dated else f"{speaker}: {text}")
        day += dt.timedelta(days=rng.randint(1, 30))
    return turns


def make_sample(turns: list[str], questions: list[dict], seed: int) -> dict:
    first, rest = questions[0], questions[1:]
    meta = {
        "turns": turns + [first["query"]],
        "evidence_turns": first["evidence_turns"],
        "answer": first["answer"],
        "template": first["template"],
        "seed": seed,
    }
    if rest:
        meta["queries"] = rest
    return {
        "messages": [{"role": "user", "content": first["query"]}, {"role": "assistant", "content": first["answer"]}],
        "meta": meta,
    }


def held_out_id(chat_id: str) -> bool:
    return int(hashlib.sha1(chat_id.encode()).hexdigest(), 16) % 10 == 0


def read_jsonl_gz(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def derive(args) -> list[dict]:
    corpora = Path(args.corpora)
    sgd = read_jsonl_gz(corpora / ("sgd_train.jsonl.gz" if args.split == "train" else "sgd_dev.jsonl.gz"))
    spc = [c for c in read_jsonl_gz(corpora / "spc.jsonl.gz") if held_out_id(c["id"]) == (args.split == "heldout")]
    by_domain: dict[str, list[dict]] = {}
    for d in sgd:
        by_domain.setdefault(d["services"][0].split("_")[0], []).append(d)
    rng = random.Random(args.seed)
    samples, attempts = [], 0
    while len(samples) < args.n and attempts < args.n * 20:
        attempts += 1
        seed = rng.getrandbits(63)
        srng = random.Random(seed)
        dated = srng.random() < 0.5
        if srng.random() < args.spc_fraction:
            sessions, questions = spc_stream(srng, spc, srng.randint(2, 5))
        else:
            picked = sgd_stream(srng, sgd, by_domain, srng.randint(3, 8))
            sessions = sgd_sessions(picked)
            offsets = [sum(map(len, sessions[:i])) for i in range(len(sessions))]
            questions = sgd_questions(srng, picked, offsets)
        length = sum(map(len, sessions))
        if not questions or not args.min_segments <= length <= args.max_segments:
            continue
        srng.shuffle(questions)
        chosen = questions[: args.queries]
        samples.append(make_sample(render(srng, sessions, dated), chosen, seed))
    if len(samples) < args.n:
        print(f"warning: only {len(samples)} samples after {attempts} attempts", file=sys.stderr)
    return samples


def main(argv: list[str] | None = None) -> int:
    """Command line entry point.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpora", default=str(Path(__file__).resolve().parents[1] / ".." / "shared" / "corpora"))
    p.add_argument("--out", required=True, help="EvoTrain JSONL file to write")
    p.add_argument("--split", choices=["train", "heldout"], default="train")
    p.add_argument("-n", type=int, default=3000, help="number of samples (streams)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--queries", type=int, default=4, help="questions per stream (the first is the stream's query)")
    p.add_argument("--min-segments", type=int, default=40)
    p.add_argument("--max-segments", type=int, default=160)
    p.add_argument("--spc-fraction", type=float, default=0.25, help="share of persona-chat streams")
    args = p.parse_args(argv)
    samples = derive(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for sample in samples:
            f.write(json.dumps(sample, ensure_ascii=False) + "\n")
    kinds: dict[str, int] = {}
    for s in samples:
        for q in [s["meta"]] + s["meta"].get("queries", []):
            kinds[q["template"]] = kinds.get(q["template"], 0) + 1
    segments = [len(s["meta"]["turns"]) - 1 for s in samples]
    print(
        f"{out}: {len(samples)} samples, {sum(kinds.values())} questions {kinds}, "
        f"segments {min(segments)}-{max(segments)} (mean {sum(segments) / len(segments):.0f})",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
