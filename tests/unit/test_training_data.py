"""EvoTrain loading: valid files, malformed samples (file, line, field in the message), caps, order."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from evoembedding_core.training.data import (
    TokenizedSample,
    cap_sample,
    epoch_order,
    load_samples,
    sample_at,
    tokenize_samples,
)


def sample(turns=None, evidence=None, answer="In Oslo.", **meta):
    turns = turns or ["Maya: I grew up in Porto.", "Maya: Last spring I moved to Oslo.", "Where does Maya live now?"]
    messages = [
        {"role": "user", "content": t} if i % 2 == 0 else {"role": "assistant", "content": t}
        for i, t in enumerate(turns[:-1])
    ]
    if len(messages) % 2:  # keep user/assistant alternation ending with the query then the answer
        messages = messages[1:]
    messages += [{"role": "user", "content": turns[-1]}, {"role": "assistant", "content": answer}]
    return {"messages": messages, "meta": {"turns": turns, "evidence_turns": evidence or [1], **meta}}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_jsonl_and_json_list_load_the_same_samples(tmp_path):
    rows = [sample(), sample(template="state_update", answer="Oslo"), sample(evidence=[0, 1])]
    a = load_samples(write_jsonl(tmp_path / "a.jsonl", rows))
    (tmp_path / "b.json").write_text(json.dumps(rows, indent=2))
    b = load_samples(tmp_path / "b.json")
    assert [s.history for s in a.samples] == [s.history for s in b.samples]
    first = a.samples[0]
    assert first.query == "Where does Maya live now?" and first.evidence == [1] and first.answer == "In Oslo."
    assert a.samples[1].template == "state_update" and a.samples[2].evidence == [0, 1]
    assert first.source.endswith("a.jsonl:1") and "b.json:" in b.samples[1].source


def test_meta_answer_overrides_the_last_message(tmp_path):
    row = sample(answer="It is Oslo.")
    row["meta"]["answer"] = "Oslo"
    assert load_samples(write_jsonl(tmp_path / "a.jsonl", [row])).samples[0].answer == "Oslo"


@pytest.mark.parametrize(
    ("mutate", "fieldname", "problem"),
    [
        (lambda r: r["meta"].update(evidence_turns=[2]), "meta.evidence_turns[0]", "out of range"),
        (lambda r: r["meta"].update(evidence_turns=[-1]), "meta.evidence_turns[0]", "out of range"),
        (lambda r: r["meta"].update(turns=["Where does Maya live?"]), "meta.turns", "no query"),
        (lambda r: r["meta"].update(turns=[]), "meta.turns", "empty"),
        (lambda r: r["meta"].update(turns=["a", "  ", "q?"]), "meta.turns[1]", "whitespace"),
        (lambda r: r["meta"].update(turns="a, b, q?"), "meta.turns", "list of strings"),
        (lambda r: r["meta"].update(turns=["a", 3, "q?"]), "meta.turns[1]", "string"),
        (lambda r: r["meta"].update(evidence_turns=["1"]), "meta.evidence_turns[0]", "integer"),
        (lambda r: r["meta"].update(evidence_turns=[]), "meta.evidence_turns", "non-empty"),
        (lambda r: r.pop("meta"), "meta", "missing"),
        (lambda r: r["messages"].pop(), "messages[0].role", "expected 'assistant'"),
        (lambda r: r.update(messages="hi"), "messages", "must be a list"),
    ],
)
def test_malformed_samples_name_file_line_and_field(tmp_path, mutate, fieldname, problem):
    bad = sample()
    mutate(bad)
    path = write_jsonl(tmp_path / "train.jsonl", [sample(), sample(), bad])
    with pytest.raises(ValueError) as info:
        load_samples(path)
    message = str(info.value)
    assert "train.jsonl:3" in message and repr(fieldname) in message and problem in message


def test_json_list_errors_give_the_line_where_the_sample_starts(tmp_path):
    rows = [sample(), sample(evidence=[5])]
    path = tmp_path / "train.json"
    path.write_text(json.dumps(rows, indent=2))
    second_line = path.read_text().splitlines().index("  {", 2) + 1
    with pytest.raises(ValueError, match=rf"train.json:{second_line} \(sample 1\): field 'meta.evidence_turns\[0\]'"):
        load_samples(path)


def test_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(sample()) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"t.jsonl:2: invalid JSON"):
        load_samples(path)


def test_skip_invalid_counts_and_keeps_the_valid_ones(tmp_path):
    path = write_jsonl(
        tmp_path / "t.jsonl", [sample(), sample(evidence=[9]), sample(turns=["only a query?"]), sample()]
    )
    loaded = load_samples(path, skip_invalid=True)
    assert len(loaded.samples) == 2 and len(loaded.skipped) == 2
    assert "t.jsonl:2" in loaded.skipped[0] and "t.jsonl:3" in loaded.skipped[1]
    with pytest.raises(ValueError, match="no valid samples"):
        load_samples(write_jsonl(tmp_path / "bad.jsonl", [sample(evidence=[9])]), skip_invalid=True)


@pytest.mark.skipif(importlib.util.find_spec("datasets") is not None, reason="needs `datasets` absent (no network)")
def test_dataset_name_without_the_extra_says_what_to_install():
    with pytest.raises(FileNotFoundError, match=r"evoembedding\[datasets\]"):
        load_samples("someone/evotrain")


def tokenized(lengths, evidence, query=3):
    return TokenizedSample(
        history=[[7] * n for n in lengths], query=[1] * query, evidence=evidence, answer="a", query_text="q"
    )


def test_caps_keep_the_last_segments_and_shift_the_evidence():
    capped = cap_sample(tokenized([5, 5, 5, 5], [0, 2]), max_tokens=100, max_segments=2)
    assert len(capped.history) == 2 and capped.evidence == [0]  # old 2 -> new 0; old 0 dropped
    capped = cap_sample(tokenized([5, 5, 5, 5], [3]), max_tokens=3 + 10, max_segments=256)
    assert len(capped.history) == 2 and capped.evidence == [1]
    assert cap_sample(tokenized([5, 5, 5, 5], [0]), max_tokens=100, max_segments=3) is None
    assert cap_sample(tokenized([5, 5], [0, 1]), max_tokens=100, max_segments=256).evidence == [0, 1]


def test_tokenize_samples_applies_caps_and_counts(minilm_model, tmp_path):
    long = sample(turns=[f"turn number {i}" for i in range(10)] + ["which turn?"], evidence=[8])
    lost = sample(turns=[f"turn number {i}" for i in range(10)] + ["which turn?"], evidence=[0])
    loaded = load_samples(write_jsonl(tmp_path / "t.jsonl", [sample(), long, lost]))
    capped = tokenize_samples(minilm_model, loaded.samples, max_segments=4)
    assert capped.truncated == 1 and capped.dropped == 1 and len(capped.samples) == 2
    assert len(capped.samples[1].history) == 4 and capped.samples[1].evidence == [2]
    assert capped.samples[0].query == minilm_model.tokenize(["Where does Maya live now?"], query=True)[0]


def test_epoch_order_is_a_seeded_permutation():
    first = epoch_order(10, seed=3, epoch=0)
    assert sorted(first) == list(range(10)) and np.array_equal(first, epoch_order(10, seed=3, epoch=0))
    assert not np.array_equal(first, epoch_order(10, seed=3, epoch=1))
    items = list("abcdefghij")
    assert [sample_at(items, 3, p) for p in range(10, 20)] == [items[i] for i in epoch_order(10, 3, 1)]


# ---------------------------------------------------------------------------------- meta.queries
def with_queries(queries, **kwargs):
    row = sample(**kwargs)
    row["meta"]["queries"] = queries
    return row


def test_further_queries_load_with_their_own_evidence_and_answer(tmp_path):
    extra = [{"query": "Where did Maya grow up?", "evidence_turns": [0], "answer": "Porto", "template": "origin"}]
    loaded = load_samples(write_jsonl(tmp_path / "q.jsonl", [with_queries(extra), sample()]))
    first, plain = loaded.samples
    assert first.query == "Where does Maya live now?" and first.evidence == [1]
    assert [(q.query, q.evidence, q.answer, q.template) for q in first.queries] == [
        ("Where did Maya grow up?", [0], "Porto", "origin")
    ]
    assert plain.queries == ()


@pytest.mark.parametrize(
    ("queries", "fieldname", "problem"),
    [
        ("q?", "meta.queries", "list of objects"),
        (["q?"], "meta.queries[0]", "must be an object"),
        ([{"evidence_turns": [0], "answer": "a"}], "meta.queries[0].query", "non-empty string"),
        ([{"query": "q?", "evidence_turns": [0], "answer": " "}], "meta.queries[0].answer", "non-empty string"),
        ([{"query": "q?", "evidence_turns": [], "answer": "a"}], "meta.queries[0].evidence_turns", "non-empty"),
        ([{"query": "q?", "evidence_turns": [2], "answer": "a"}], "meta.queries[0].evidence_turns[0]", "out of range"),
        ([{"query": "q?", "evidence_turns": [True], "answer": "a"}], "meta.queries[0].evidence_turns[0]", "integer"),
        ([{"query": "q?", "evidence_turns": [0], "answer": "a", "template": 3}], "meta.queries[0].template", "string"),
    ],
)
def test_malformed_further_queries_name_the_field(tmp_path, queries, fieldname, problem):
    path = write_jsonl(tmp_path / "train.jsonl", [sample(), with_queries(queries)])
    with pytest.raises(ValueError) as info:
        load_samples(path)
    message = str(info.value)
    assert "train.jsonl:2" in message and repr(fieldname) in message and problem in message


def test_caps_shift_further_queries_and_leave_out_those_without_evidence():
    from evoembedding_core.training.data import TokenizedQuery

    kept = TokenizedQuery(query=[2], evidence=[1, 3], answer="b", query_text="q2")
    lost = TokenizedQuery(query=[2], evidence=[0], answer="c", query_text="q3")
    base = tokenized([5, 5, 5, 5], [2])
    full = TokenizedSample(**{**base.__dict__, "queries": (kept, lost)})
    capped = cap_sample(full, max_tokens=100, max_segments=2)
    assert capped.evidence == [0] and [q.evidence for q in capped.queries] == [[1]]
    assert [q.query_text for q in capped.all_queries()] == ["q", "q2"]


def test_tokenize_samples_tokenizes_further_queries_as_queries(minilm_model, tmp_path):
    extra = [{"query": "Where did Maya grow up?", "evidence_turns": [0], "answer": "Porto"}]
    loaded = load_samples(write_jsonl(tmp_path / "q.jsonl", [with_queries(extra)]))
    (tok,) = tokenize_samples(minilm_model, loaded.samples).samples
    (q,) = tok.queries
    assert q.query == minilm_model.tokenize(["Where did Maya grow up?"], query=True)[0]
    assert q.query_text == "Where did Maya grow up?" and q.evidence == [0] and q.answer == "Porto"


# ---------------------------------------------------------------------------------- derived data
def _sgd_dialogue(i: int, city: str, first_time: str, final_time: str) -> dict:
    def user(text, spans, state):
        return {"speaker": "user", "text": text, "spans": spans, "state": state, "intent": {}}

    def span(text, slot, value):
        start = text.index(value)
        return {"service": "Restaurants_1", "slot": slot, "start": start, "end": start + len(value), "value": value}

    said_city, said_time, fixed = f"Somewhere in {city}.", f"At {first_time} please.", f"No, make it {final_time}."
    offer = f"Booking a table in {city} at {final_time}?"
    turns = [
        user("I want to eat out.", [], {}),
        {"speaker": "system", "text": "Which city?", "spans": []},
        user(said_city, [span(said_city, "city", city)], {"Restaurants_1": {"city": [city]}}),
        {"speaker": "system", "text": "What time?", "spans": []},
        user(
            said_time, [span(said_time, "time", first_time)], {"Restaurants_1": {"city": [city], "time": [first_time]}}
        ),
        {"speaker": "system", "text": "Anything else?", "spans": []},
        user(fixed, [span(fixed, "time", final_time)], {"Restaurants_1": {"city": [city], "time": [final_time]}}),
        {"speaker": "system", "text": offer, "spans": [span(offer, "city", city), span(offer, "time", final_time)]},
        user("Yes, that works.", [], {"Restaurants_1": {"city": [city], "time": [final_time]}}),
    ]
    return {"id": f"1_{i:05d}", "services": ["Restaurants_1"], "turns": turns}


def _write_gz(path, rows):
    import gzip

    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


def test_derived_samples_are_valid_deterministic_and_point_at_the_right_turns(tmp_path):
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "derive", Path(__file__).resolve().parents[2] / "scripts" / "derive_training_data.py"
    )
    derive = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(derive)
    cities = ["Paris", "Oslo", "Lima", "Rome", "Kyiv", "Cairo"]
    dialogues = [_sgd_dialogue(i, c, f"{i + 5} pm", f"{i + 1}:30 pm") for i, c in enumerate(cities)]
    _write_gz(tmp_path / "sgd_train.jsonl.gz", dialogues)
    _write_gz(tmp_path / "sgd_dev.jsonl.gz", dialogues)
    chat = {
        "personas": {"user1": ["I like tea."], "user2": ["I teach chemistry at a high school."]},
        "turns": [{"speaker": "user1", "text": "What do you do?"},
                  {"speaker": "user2", "text": "I teach chemistry at the local high school."}] * 10,
    }  # fmt: skip
    _write_gz(tmp_path / "spc.jsonl.gz", [{**chat, "id": f"valid-{i}", "split": "valid"} for i in range(40)])
    args = ["--corpora", str(tmp_path), "-n", "6", "--seed", "3", "--min-segments", "20", "--max-segments", "60"]
    for name in ("a", "b"):
        assert derive.main([*args, "--out", str(tmp_path / f"{name}.jsonl")]) == 0
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()
    samples = load_samples(tmp_path / "a.jsonl").samples
    assert len(samples) == 6
    for s in samples:
        questions = [(s.query, s.evidence, s.answer, s.template)]
        questions += [(q.query, q.evidence, q.answer, q.template) for q in s.queries]
        for query, evidence, answer, template in questions:
            texts = [s.history[e] for e in evidence]
            if template == "sgd-latest":  # the correcting turn, not the first request
                assert texts == [f"User: No, make it {answer}."] or texts[0].endswith(f"] User: No, make it {answer}.")
            elif template == "sgd-first":
                assert texts == [t for t in texts if t.endswith(f"At {answer} please.")]
            elif template == "sgd-stated":
                assert all(answer in t for t in texts)
            elif template == "spc-persona":
                assert query.endswith("that they teach chemistry at a high school?")
                assert all(t.split("] ")[-1].startswith(f"{answer}: I teach chemistry") for t in texts)
