"""The synthetic EvoTrain generator: determinism, schema, lengths, and per-template context dependence."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from difflib import SequenceMatcher

import pytest

from evoembedding_core.training import synth
from evoembedding_core.training import synth_templates as T
from evoembedding_core.training.data import parse_sample

STOPWORDS = set(
    """a an the is am are was were be do does did i my me you your to of in on at for and or with
what where which who whom why how when this that these now her his their it its has have had so just too""".split()
)


SLOT_PATTERNS = {
    "d": r"\d+",
    "dd": r"\d+",
    "mm": r"\d+",
    "y": r"\d+",
    "n": r"\d+",
    "month": "[A-Z][a-z]+",
    "weekday": "[A-Z][a-z]+",
}


def _words(text: str) -> set[str]:
    return {w.removesuffix("'s") for w in re.findall(r"[a-z0-9']+", text.lower())} - STOPWORDS


def _body(turn: str) -> str:
    """A dialogue turn without its ``Speaker: `` prefix."""
    return turn.split(": ", 1)[1] if re.match(r"^[^:\[=]{1,40}: ", turn) else turn


def _overlap(query: str, turn: str) -> int:
    return len(_words(query) & _words(_body(turn)))


def _match(frames, text: str) -> dict[str, str] | None:
    """Slot values of the first frame that ``text`` instantiates (None if none does)."""
    for frame in frames:
        pattern = re.sub(
            r"\\\{(\w+)\\\}", lambda m: f"(?P<{m.group(1)}>{SLOT_PATTERNS.get(m.group(1), '.+?')})", re.escape(frame)
        )
        found = re.fullmatch(pattern, text)
        if found:
            return found.groupdict()
    return None


def _samples(template: str, n: int = 12, **kw) -> list[dict]:
    return list(synth.generate(n, 7, templates=[template], max_turns=kw.pop("max_turns", 40), **kw))


@pytest.fixture(scope="module")
def mixed() -> list[dict]:
    return list(synth.generate(150, 0, max_turns=48))


def test_same_seed_gives_identical_bytes_and_other_seeds_differ(tmp_path):
    a = synth.write_jsonl(tmp_path / "a.jsonl", 25, 3, max_turns=60)
    b = synth.write_jsonl(tmp_path / "b.jsonl", 25, 3, max_turns=60)
    c = synth.write_jsonl(tmp_path / "c.jsonl", 25, 4, max_turns=60)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    first = json.loads(a.read_text().splitlines()[5])
    assert synth.generate_sample(first["meta"]["seed"], max_turns=60) == first  # meta.seed regenerates it


def test_schema_is_valid_and_accepted_by_the_loader(mixed):
    for i, sample in enumerate(mixed):
        meta, messages = sample["meta"], sample["messages"]
        turns, evidence = meta["turns"], meta["evidence_turns"]
        assert evidence and all(0 <= e < len(turns) - 1 for e in evidence)
        assert all(0 <= h < len(turns) - 1 and h not in evidence for h in meta["hard_negative_turns"])
        assert all(isinstance(t, str) and t.strip() for t in turns)
        assert messages[-2] == {"role": "user", "content": turns[-1]}
        assert messages[-1] == {"role": "assistant", "content": meta["answer"]}
        assert [m["role"] for m in messages] == ["user", "assistant"] * (len(messages) // 2)
        for e in evidence:
            assert meta["answer"].lower() in turns[e].lower()
        parsed = parse_sample(sample, f"synth:{i}")
        assert parsed.query == turns[-1] and parsed.evidence == sorted(evidence)


def test_every_template_is_produced_and_recorded(mixed):
    counts = Counter(s["meta"]["template"] for s in mixed)
    assert set(counts) == set(synth.TEMPLATES)
    for name in synth.TEMPLATES:
        assert {s["meta"]["template"] for s in _samples(name, 3)} == {name}


@pytest.mark.parametrize("low,high", [(8, 8), (9, 10), (120, 128)])
def test_lengths_stay_in_range(low, high):
    for dist in synth.LENGTH_DISTRIBUTIONS:
        for sample in synth.generate(18, 1, min_turns=low, max_turns=high, length_distribution=dist):
            assert low <= len(sample["meta"]["turns"]) <= high, sample["meta"]["template"]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="templates"):
        list(synth.generate(1, templates=["nope"]))
    with pytest.raises(ValueError, match="min_turns"):
        list(synth.generate(1, min_turns=20, max_turns=10))
    with pytest.raises(ValueError, match="min_turns"):
        list(synth.generate(1, min_turns=3))
    with pytest.raises(ValueError, match="length_distribution"):
        list(synth.generate(1, length_distribution="normal"))


def test_state_update_evidence_is_the_latest_of_turns_sharing_the_key_words():
    for s in _samples("state_update"):
        m = s["meta"]
        (ev,), negs = m["evidence_turns"], m["hard_negative_turns"]
        assert negs and max(negs) < ev
        for i in negs + [ev]:
            assert _overlap(m["turns"][-1], m["turns"][i]) >= 1, m["turns"][i]


def test_temporal_order_evidence_position_matches_the_query():
    seen = set()
    for s in _samples("temporal_order", 24):
        m = s["meta"]
        q, (ev,), negs = m["turns"][-1], m["evidence_turns"], m["hard_negative_turns"]
        assert len(negs) >= 2
        events = sorted(negs + [ev])
        kind, slots = next(
            (k, f)
            for k in ("first", "last", "before", "after")
            if (f := _match([series[k] for series in T.TEMPORAL_SERIES], q)) is not None
        )
        if kind in ("first", "last"):
            want = events[0 if kind == "first" else -1]
        else:
            (anchor,) = [i for i in negs if slots["x"] in m["turns"][i]]
            want = events[events.index(anchor) + (-1 if kind == "before" else 1)]
        seen.add(kind)
        assert ev == want, (kind, q, m["turns"])
    assert seen == {"first", "last", "before", "after"}


def test_coreference_evidence_does_not_name_the_referent():
    frames = [f["query"] for f in T.COREF_FACTS] + T.PLACE_QUERY
    for s in _samples("coreference", 16):
        m = s["meta"]
        slots = _match(frames, m["turns"][-1])
        referent = slots.get("name") or slots["place"]
        (ev,) = m["evidence_turns"]
        assert referent not in m["turns"][ev]
        assert any(referent in m["turns"][i] for i in m["hard_negative_turns"] if i < ev)


def _date(frames, text: str) -> tuple[int, int, int]:
    parts = _match(frames, text)
    assert parts is not None, text
    month = int(parts["mm"]) if "mm" in parts else T.MONTHS.index(parts["month"]) + 1
    return int(parts.get("d") or parts["dd"]), month, int(parts["y"])


def test_session_date_appears_only_in_the_session_header():
    for s in _samples("session_date"):
        m = s["meta"]
        turns, (ev,) = m["turns"], m["evidence_turns"]
        asked = _date([f"{{subj}} {{verb}} on {d}?" for d in T.QUERY_DATES], turns[-1].split(" did ", 1)[1])
        assert str(asked[2]) not in turns[ev] and not any(month in turns[ev] for month in T.MONTHS)
        headers = [i for i in range(len(turns) - 1) if _match(T.SESSION_HEADERS, turns[i]) is not None]
        own = max(h for h in headers if h < ev)  # the evidence's session header carries the queried date
        assert _date(T.SESSION_HEADERS, turns[own]) == asked
        assert all(_date(T.SESSION_HEADERS, turns[h]) != asked for h in headers if h != own)
        # the same-kind activities of the other sessions are the hard negatives
        negs = m["hard_negative_turns"]
        assert negs and all(any(lo < h <= hi for h in headers) for n in negs for lo, hi in [sorted((n, ev))])


def test_speaker_attribution_other_speaker_shares_as_many_query_words():
    for s in _samples("speaker_attribution"):
        m = s["meta"]
        q, (ev,) = m["turns"][-1], m["evidence_turns"]
        name = _match([t["query"] for t in T.ATTRIBUTION_TOPICS], q)["name"]
        assert m["turns"][ev].startswith(f"{name}: ")
        rivals = [i for i in m["hard_negative_turns"] if not m["turns"][i].startswith(f"{name}: ")]
        assert rivals and all(name in _body(m["turns"][i]) for i in rivals)
        assert max(_overlap(q, m["turns"][i]) for i in rivals) >= _overlap(q, m["turns"][ev])


def test_keyword_trap_distractor_shares_more_query_words_than_the_evidence():
    for s in _samples("keyword_trap"):
        m = s["meta"]
        q, (ev,) = m["turns"][-1], m["evidence_turns"]
        assert max(_overlap(q, m["turns"][i]) for i in m["hard_negative_turns"]) > _overlap(q, m["turns"][ev])


@pytest.mark.parametrize("template", ["paraphrase", "retrieval"])
def test_paraphrased_evidence_shares_no_content_word_with_the_query(template):
    for s in _samples(template):
        m = s["meta"]
        speakers = {t.split(": ", 1)[0].lower() for t in m["turns"][:-1] if ": " in t}
        (ev,) = m["evidence_turns"]
        assert not (_words(m["turns"][-1]) - speakers) & _words(_body(m["turns"][ev])), (m["turns"][-1], m["turns"][ev])


def test_document_chunks_overlap_and_evidence_chunks_do_not_name_the_entity():
    frames = [f["query"] for kind in T.DOCUMENT_KINDS for f in kind["facts"]]
    for s in _samples("document", max_turns=80):
        m = s["meta"]
        chunks, evidence = m["turns"][:-1], m["evidence_turns"]
        entity = _match(frames, m["turns"][-1])["name"]
        assert all(entity not in chunks[e] for e in evidence)
        assert any(entity in c for c in chunks[: min(evidence)])
        shared = SequenceMatcher(None, chunks[0], chunks[1]).find_longest_match(0, len(chunks[0]), 0, len(chunks[1]))
        assert shared.size >= 20  # sliding windows: consecutive chunks share sentences
        assert s["messages"] == [
            {"role": "user", "content": m["turns"][-1]},
            {"role": "assistant", "content": m["answer"]},
        ]


def test_cli_writes_the_same_file_as_the_api(tmp_path, capsys):
    from evoembedding_core.cli import main

    out = tmp_path / "cli.jsonl"
    assert (
        main(
            [
                "synth",
                "--out",
                str(out),
                "-n",
                "6",
                "--seed",
                "2",
                "--max-turns",
                "30",
                "--templates",
                "state_update,document",
            ]
        )
        == 0
    )
    api = synth.write_jsonl(tmp_path / "api.jsonl", 6, 2, max_turns=30, templates=["state_update", "document"])
    assert out.read_bytes() == api.read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        main(["synth", "--help"])
    assert exit_info.value.code == 0 and "--max-turns" in capsys.readouterr().out


def test_output_does_not_depend_on_the_hash_seed():
    """Samples are identical across processes with different PYTHONHASHSEED (set-ordered word lists)."""
    code = (
        "import hashlib, json; from evoembedding_core.training.synth import generate; "
        "print(hashlib.sha256(json.dumps(list(generate(30, 1, max_turns=24))).encode()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(digests) == 1
