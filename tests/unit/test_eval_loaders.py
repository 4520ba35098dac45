"""Benchmark loaders on small inline fixtures: LoCoMo/REALTALK, LongMemEval, EvoTrain."""

from __future__ import annotations

import json

import pytest

from evoembedding_core.eval.conversation import Conversation, Question, Segment
from evoembedding_core.eval.loaders import (
    detect_format,
    load_benchmark,
    load_evotrain,
    load_longmemeval,
    locomo_conversation,
    parse_evidence,
    short_date,
)


@pytest.mark.parametrize(
    "refs, expected",
    [
        (["D5:3."], ["D5:3"]),
        (["D5:12;D5:16"], ["D5:12", "D5:16"]),
        (["D1:11; D3:18"], ["D1:11", "D3:18"]),
        (["D12:3-D12:5"], ["D12:3", "D12:4", "D12:5"]),
        (["D12:11-D12:12;D13:2-D13:3"], ["D12:11", "D12:12", "D13:2", "D13:3"]),
        (["D13:45:D20:19"], ["D13:45", "D20:19"]),
        (["D 2:18", "D17;39"], ["D2:18", "D17:39"]),
        (["D13:4. D14:4", "", "D13:4"], ["D13:4", "D14:4"]),
        (["D:56", "D58"], []),
    ],
)
def test_parse_evidence(refs, expected):
    assert parse_evidence(refs) == expected


def test_short_date():
    assert short_date("29.12.2023, 00:51:12") == "29.12.2023"
    assert short_date("2023/04/11 (Tue) 07:47") == "2023/04/11"
    assert short_date("1:56 pm on 8 May, 2023") == "8 May, 2023"


def _turn(dia_id, speaker, text):
    return {"clean_text": text, "speaker": speaker, "dia_id": dia_id, "img_file": []}


REALTALK_LIKE = {
    "name": {"speaker_1": "Emi", "speaker_2": "Elise"},
    "session_10": [_turn("D9:1", "Emi", "Back from the lake!")],
    "session_2": [_turn("D1:7", "Elise", "My yoga class starts tomorrow."), _turn("D1:9", "Emi", "Good luck!")],
    "session_1": [
        _turn("D1:1", "Emi", "I adopted a cat."),
        _turn("D1:2", "Elise", "What is its name?"),
        _turn("D1:3", "Emi", "   "),
    ],
    "session_1_date_time": "29.12.2023, 22:42:04",
    "session_2_date_time": "30.12.2023, 10:00:00",
    "session_10_date_time": "08.01.2024, 09:30:00",
    "events_session_1": {"agent_a": []},
    "qa": [
        {"question": "When did Elise start yoga?", "evidence": ["D1:7-D1:9"], "category": 2},
        {"question": "What pet did Emi adopt?", "evidence": ["D1:1.", "D4:4"], "category": 1},
        {"question": "Lost question", "evidence": ["D7:7"], "category": 3},
        {"question": "Nothing cited", "evidence": [], "category": 3},
    ],
}


def test_locomo_realtalk_shape():
    conv = locomo_conversation(REALTALK_LIKE, "chat")
    kinds = [(s.kind, s.turn_id) for s in conv.segments]
    # sessions in natural order, each opened by a header; the blank turn is dropped
    assert kinds == [
        ("header", None),
        ("turn", "D1:1"),
        ("turn", "D1:2"),
        ("header", None),
        ("turn", "D1:7"),
        ("turn", "D1:9"),
        ("header", None),
        ("turn", "D9:1"),
    ]
    assert conv.segments[0].text == "Session date: 29.12.2023, 22:42:04"
    assert conv.segments[1].text == "Emi: I adopted a cat." and conv.segments[1].date == "29.12.2023"
    assert conv.segments[4].session == "session_2"
    # range expanded through a missing id (D1:8); ids looked up, not parsed as session numbers
    assert [(q.text, q.evidence, q.category) for q in conv.questions] == [
        ("When did Elise start yoga?", ("D1:7", "D1:9"), "cat 2"),
        ("What pet did Emi adopt?", ("D1:1",), "cat 1"),
    ]
    assert conv.skipped_questions == 2


def test_locomo_original_wrapper(tmp_path):
    sample = {
        "sample_id": "conv-1",
        "conversation": {
            "speaker_a": "A",
            "speaker_b": "B",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [{"speaker": "A", "dia_id": "D1:1", "text": "Hi there"}],
        },
        "qa": [{"question": "Who said hi?", "evidence": ["D1:1"], "category": 4}],
    }
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps([sample]))
    assert detect_format(path) == "locomo"
    name, convs = load_benchmark(path)
    assert name == "locomo" and convs[0].name == "conv-1" and convs[0].segments[1].date == "8 May, 2023"


def test_bad_locomo_turn():
    with pytest.raises(ValueError, match=r"session_1\[0\].*dia_id"):
        locomo_conversation({"session_1": [{"speaker": "A", "clean_text": "hi"}], "qa": []}, "bad")


def _lme_question(qid, sessions, answer_ids):
    return {
        "question_id": qid,
        "question_type": "knowledge-update",
        "question": f"question {qid}?",
        "answer": "x",
        "question_date": "2023/10/02 (Mon) 04:40",
        "haystack_session_ids": [s[0] for s in sessions],
        "haystack_dates": [s[1] for s in sessions],
        "haystack_sessions": [s[2] for s in sessions],
        "answer_session_ids": answer_ids,
    }


def test_longmemeval_pools_sessions_chronologically(tmp_path):
    late = (
        "s_late",
        "2023/09/30 (Sat) 08:34",
        [
            {"role": "user", "content": "I earned $420.", "has_answer": True},
            {"role": "assistant", "content": "Great!", "has_answer": False},
        ],
    )
    early = ("s_early", "2023/04/11 (Tue) 07:47", [{"role": "user", "content": "I earned $300.", "has_answer": True}])
    other = ("s_other", "2023/05/01 (Mon) 10:00", [{"role": "user", "content": "I like tea.", "has_answer": True}])
    path = tmp_path / "lme.json"
    path.write_text(
        json.dumps(
            [_lme_question("a", [late, early], ["s_late", "s_early"]), _lme_question("b", [other, late], ["s_other"])]
        )
    )
    assert detect_format(path) == "longmemeval"
    (conv,) = load_longmemeval(path)
    assert [s.text for s in conv.segments] == [
        "Session date: 2023/04/11 (Tue) 07:47",
        "User: I earned $300.",
        "Session date: 2023/05/01 (Mon) 10:00",
        "User: I like tea.",
        "Session date: 2023/09/30 (Sat) 08:34",
        "User: I earned $420.",
        "Assistant: Great!",
    ]
    q_a, q_b = conv.questions
    assert q_a.evidence == ("s_late:0", "s_early:0") and q_a.evidence_sessions == ("s_late", "s_early")
    assert q_b.evidence == ("s_other:0", "s_late:0") and q_b.evidence_sessions == ("s_other",)
    (limited,) = load_longmemeval(path, limit=1)
    assert len(limited.candidates) == 3 and len(limited.questions) == 1


def test_evotrain_jsonl_and_errors(tmp_path):
    good = {
        "messages": [],
        "meta": {
            "turns": ["A: I live in Oslo.", "B: Nice.", "Where does A live?"],
            "evidence_turns": [0],
            "template": "coreference",
        },
    }
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(good) + "\n\n" + json.dumps(good) + "\n")
    assert detect_format(path) == "evotrain"
    convs = load_evotrain(path)
    assert len(convs) == 2 and [s.text for s in convs[0].candidates] == ["A: I live in Oslo.", "B: Nice."]
    assert convs[0].questions[0].evidence == ("0",) and convs[0].questions[0].category == "coreference"
    bad = {"meta": {"turns": ["A", "q?"], "evidence_turns": [1]}}
    path.write_text(json.dumps(bad) + "\n")
    with pytest.raises(ValueError, match=r"s.jsonl:0.*evidence_turns"):
        load_evotrain(path)
    path.write_text("{not json\n")
    with pytest.raises(ValueError, match=r"s.jsonl:1: not valid JSON"):
        load_evotrain(path)


def test_conversation_validation_and_unknown_inputs(tmp_path):
    with pytest.raises(ValueError, match="unknown turns"):
        Conversation("c", [Segment("A: hi", turn_id="1")], [Question("q", "hi?", ("2",))])
    with pytest.raises(ValueError, match="unique turn_id"):
        Conversation("c", [Segment("A: hi", turn_id="1"), Segment("A: yo", turn_id="1")])
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"foo": 1}))
    with pytest.raises(ValueError, match="unrecognised"):
        load_benchmark(path)
    with pytest.raises(FileNotFoundError):
        load_benchmark(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="limit"):
        load_benchmark(path, limit=0)
