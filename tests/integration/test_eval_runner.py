"""Retrieval systems, the runner, evaluate_samples, reports/plots and the eval CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import SHARED_DATA

from evoembedding_core.cli import main
from evoembedding_core.eval import build_systems, evaluate, evaluate_samples
from evoembedding_core.eval.baselines import BM25Baseline, DenseBaseline
from evoembedding_core.eval.conversation import Conversation, Question, Segment, paired
from evoembedding_core.eval.report import markdown_report, write_report
from evoembedding_core.eval.systems import EvoSystem, dated_conversation, relabel
from evoembedding_core.lexical import reciprocal_rank_fusion, top_ranked
from evoembedding_core.static import StaticEmbedder


def _chat() -> Conversation:
    segments = [
        Segment("Session date: 01.03.2024", kind="header", session="s1", date="01.03.2024"),
        Segment("Maya: I grew up in Porto, right by the river.", turn_id="t1", session="s1", date="01.03.2024"),
        Segment("Leo: Did you study there too?", turn_id="t2", session="s1", date="01.03.2024"),
        Segment("Session date: 09.05.2024", kind="header", session="s2", date="09.05.2024"),
        Segment("Maya: No, I studied chemistry in Lisbon.", turn_id="t3", session="s2", date="09.05.2024"),
        Segment("Leo: My first job was at a bakery in Madrid.", turn_id="t4", session="s2", date="09.05.2024"),
        Segment("Leo: My last job was at a bank in Oslo.", turn_id="t5", session="s2", date="09.05.2024"),
    ]
    questions = [
        Question("q1", "Which city did Maya grow up in?", ("t1",), "place"),
        Question("q2", "What did Maya study in Lisbon?", ("t3",), "study"),
        Question("q3", "Where was Leo's first job?", ("t4", "t5"), "place"),
    ]
    return Conversation("chat", segments, questions)


def _samples() -> list[dict]:
    turns = [
        "Ana: I adopted a grey cat named Miso.",
        "Ben: Cute! I have a dog.",
        "Ana: Miso sleeps all day.",
        "What is the name of Ana's cat?",
    ]
    return [{"messages": [], "meta": {"turns": turns, "evidence_turns": [0], "template": t}} for t in ("pets", "more")]


def test_bm25_and_dated_systems():
    conv = _chat()
    dated = dated_conversation(conv)
    assert dated.candidates[0].text == "[01.03.2024] Maya: I grew up in Porto, right by the river."
    assert (
        dated.segments[0] == conv.segments[0] and dated.questions == conv.questions
    )  # headers, questions as they were
    scores = BM25Baseline().score(conv)
    assert scores.shape == (3, 5)
    assert int(np.argmax(scores[2])) == 3  # "first job" words: the bakery turn wins
    plain, on_dated = build_systems(["bm25", "bm25-dated"])
    assert on_dated.name == "bm25-dated"
    np.testing.assert_array_equal(on_dated.score(conv), BM25Baseline().score(dated))
    assert not np.allclose(plain.score(conv), on_dated.score(conv))


def test_fused_system_is_rank_fusion_of_its_parts(embedder):
    conv = _chat()
    minilm, bm25, fused = build_systems(["minilm", "bm25", "minilm+bm25"], embedder=embedder)
    assert fused.name == "minilm+bm25"
    dense, lexical = minilm.score(conv), bm25.score(conv)
    assert minilm.score(conv) is dense  # a system listed alone and inside a fusion runs once per conversation
    got = fused.score(conv)
    for q in range(len(conv.questions)):
        expected = reciprocal_rank_fusion([top_ranked(dense[q]), top_ranked(lexical[q], positive=True)])
        assert {i: got[q, i] for i in np.flatnonzero(got[q])} == pytest.approx(expected)
    assert relabel("evo-query-no-memory-dated+bm25", "mine") == "mine-query-no-memory-dated+bm25"
    with pytest.raises(ValueError, match="unknown system"):
        build_systems(["minilm+tfidf"])
    with pytest.raises(ValueError, match="listed twice"):
        build_systems(["bm25", "bm25"])


@pytest.fixture(scope="module")
def embedder() -> StaticEmbedder:
    return StaticEmbedder()


def test_dense_baseline_and_runner(embedder):
    conv = _chat()
    result = evaluate([conv], [DenseBaseline(embedder), BM25Baseline()], benchmark="tiny", progress=False)
    assert result["questions"] == 3 and result["candidates"] == 5 and result["segments"] == 7
    records = {r["qid"]: r for r in result["records"]}
    assert records["q1"]["ranks"]["minilm"] == [1]
    assert records["q3"]["evidence"] == ["t4", "t5"] and records["q3"]["direction"] == "first"
    assert records["q1"]["session_ranks"]["minilm"] == [1]
    dense = result["systems"]["minilm"]
    assert dense["by_category"]["place"]["n"] == 2 and dense["overall"]["n"] == 3
    assert dense["overall"]["R@1"] <= dense["overall"]["R@5"] <= dense["overall"]["R@20"] == 100.0
    assert "first" in dense["temporal"]


def test_evo_systems_stream_and_zero_memory(minilm_model, embedder):
    conv = _chat()
    evo, zero = build_systems(["evo", "evo-zero-memory"], model=lambda: minilm_model)
    streamed = evo.score(conv)
    assert streamed.shape == (3, 5) and np.isfinite(streamed).all()
    np.testing.assert_array_equal(streamed, evo.score(conv))  # deterministic
    # the memory changes the vectors: streamed scores differ from the context-free ones
    assert not np.allclose(streamed, zero.score(conv), atol=1e-4)
    # questions over an empty memory, the same (shared) turn vectors as evo
    evo, fresh = build_systems(["evo", "evo-query-no-memory"], model=lambda: minilm_model)
    with_memory, without = evo.score(conv), fresh.score(conv)
    stream = minilm_model.stream()
    turns = np.stack(
        [v for v, s in zip(stream.add([s.text for s in conv.segments]), conv.segments) if s.kind == "turn"]
    )
    questions = [q.text for q in conv.questions]
    np.testing.assert_allclose(with_memory, stream.encode_queries(questions) @ turns.T, atol=1e-5)
    np.testing.assert_allclose(without, stream.encode_queries(questions, memory=False) @ turns.T, atol=1e-5)
    np.testing.assert_allclose(
        stream.encode_queries(questions, memory=False),
        EvoSystem(minilm_model, zero_memory=True)._encode_empty(questions, query=True),
        atol=1e-5,
    )
    assert not np.allclose(with_memory, without, atol=1e-4)
    with pytest.raises(ValueError, match="need a model"):
        build_systems(["evo"])
    with pytest.raises(ValueError, match="unknown system"):
        build_systems(["minilm", "tfidf"])


def test_evaluate_samples(minilm_model):
    out = evaluate_samples(minilm_model, _samples())
    assert out["overall"]["n"] == 2 and set(out["by_category"]) == {"more", "pets"}
    assert {"R@1", "R@5", "R@10", "R@20", "NDCG@10"} <= set(out["overall"])
    assert out["overall"]["R@5"] == 100.0  # only three candidates
    zero = evaluate_samples(minilm_model, _samples(), zero_memory=True)
    assert zero["overall"]["n"] == 2


def test_report_and_plots(tmp_path):
    result = evaluate([_chat()], build_systems(["bm25", "bm25-dated"]), benchmark="tiny", progress=False)
    paths = write_report(result, tmp_path)
    names = sorted(p.name for p in paths)
    assert names == ["categories.png", "results.json", "results.md", "temporal.png"]
    for png in ("categories.png", "temporal.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["systems"]["bm25"]["overall"] == result["systems"]["bm25"]["overall"]
    table = markdown_report(result)
    assert "| bm25 |" in table and "| bm25-dated |" in table and "Temporal sensitivity" in table


def test_cli_on_evotrain_file(tmp_path, capsys):
    data = tmp_path / "samples.jsonl"
    data.write_text("\n".join(json.dumps(s) for s in _samples()))
    assert (
        main(
            [
                "eval",
                "--data",
                str(data),
                "--systems",
                "bm25,minilm",
                "--out",
                str(tmp_path / "out"),
                "--quiet",
                "--no-plots",
            ]
        )
        == 0
    )
    assert "| minilm |" in capsys.readouterr().out
    assert (tmp_path / "out" / "results.md").is_file()
    with pytest.raises(SystemExit):
        main(["eval", "--data", str(data), "--systems", "bm25,nope", "--out", str(tmp_path)])


@pytest.mark.skipif(not (SHARED_DATA / "realtalk").is_dir(), reason="../shared/data/realtalk not present")
def test_cli_on_shared_realtalk_and_longmemeval(tmp_path, monkeypatch):
    monkeypatch.setenv("EVOEMBEDDING_SHARED_DATA", str(SHARED_DATA))
    assert (
        main(
            [
                "eval",
                "--data",
                "realtalk",
                "--limit",
                "1",
                "--systems",
                "bm25,bm25-dated",
                "--out",
                str(tmp_path / "rt"),
                "--quiet",
            ]
        )
        == 0
    )
    rt = json.loads((tmp_path / "rt" / "results.json").read_text())
    assert rt["conversations"] == 1 and rt["candidates"] > 300 and rt["questions"] > 50
    bm25 = rt["systems"]["bm25"]
    assert sum(c["n"] for c in bm25["by_category"].values()) == rt["questions"]
    assert 0 < bm25["overall"]["R@1"] <= bm25["overall"]["R@10"] <= bm25["overall"]["R@20"] < 100
    assert (tmp_path / "rt" / "categories.png").is_file()
    assert (
        main(
            [
                "eval",
                "--data",
                "longmemeval",
                "--limit",
                "5",
                "--systems",
                "bm25",
                "--out",
                str(tmp_path / "lme"),
                "--quiet",
                "--no-plots",
            ]
        )
        == 0
    )
    lme = json.loads((tmp_path / "lme" / "results.json").read_text())
    assert lme["conversations"] == 1 and lme["questions"] == 5 and "S-R@5" in lme["systems"]["bm25"]["overall"]


@pytest.mark.skipif(not (SHARED_DATA / "realtalk").is_dir(), reason="../shared/data/realtalk not present")
def test_shards_and_runs_merge_into_the_single_run_result(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EVOEMBEDDING_SHARED_DATA", str(SHARED_DATA))
    base = ["eval", "--data", "realtalk", "--limit", "3", "--quiet", "--no-plots"]
    assert main(base + ["--systems", "bm25,bm25-dated", "--out", str(tmp_path / "whole")]) == 0
    for k in (1, 2):  # bm25 in two shards, bm25-dated in one separate run
        assert main(base + ["--systems", "bm25", "--shard", f"{k}/2", "--out", str(tmp_path / f"s{k}")]) == 0
    assert main(base + ["--systems", "bm25-dated", "--out", str(tmp_path / "dated")]) == 0
    shard1 = json.loads((tmp_path / "s1" / "results.json").read_text())
    assert shard1["conversations"] == 2  # conversations 1 and 3 of 3
    capsys.readouterr()
    parts = [str(tmp_path / p) for p in ("s1", "s2", "dated")]
    assert main(["eval", "--merge", *parts, "--out", str(tmp_path / "merged"), "--no-plots"]) == 0
    assert "| bm25-dated |" in capsys.readouterr().out
    whole = json.loads((tmp_path / "whole" / "results.json").read_text())
    merged = json.loads((tmp_path / "merged" / "results.json").read_text())
    for key in ("conversations", "candidates", "segments", "questions", "skipped_questions"):
        assert merged[key] == whole[key]
    for name in ("bm25", "bm25-dated"):
        for part in ("overall", "by_category", "temporal"):
            assert merged["systems"][name][part] == whole["systems"][name][part]
    from evoembedding_core.eval.runner import merge_results, rename_system

    merged["model"] = ["a", "b"]  # a merged result lists its models; merging it again keeps them
    assert merge_results([merged])["model"] == ["a", "b"]
    other = rename_system({**whole, "model": "c"}, "bm25", "bm25-c")
    assert merge_results([merged, rename_system(other, "bm25-dated", "bm25-dated-c")])["model"] == ["a", "b", "c"]
    with pytest.raises(SystemExit, match="lack ranks"):  # one shard of bm25 only, joined with a whole run
        main(["eval", "--merge", parts[0], parts[2], "--out", str(tmp_path / "bad")])
    with pytest.raises(SystemExit, match="run twice"):
        main(["eval", "--merge", parts[2], parts[2], "--out", str(tmp_path / "bad")])
    with pytest.raises(SystemExit, match="only 3 conversation"):
        main(base + ["--systems", "bm25", "--shard", "1/4", "--out", str(tmp_path / "bad")])
    with pytest.raises(SystemExit):
        main(base + ["--systems", "bm25", "--shard", "3/2", "--out", str(tmp_path / "bad")])


def test_label_names_the_model_rows(tmp_path, capsys):
    data = tmp_path / "samples.jsonl"
    data.write_text("\n".join(json.dumps(s) for s in _samples()))
    assert (
        main(
            [
                "eval",
                "--data",
                str(data),
                "--systems",
                "evo-zero-memory,bm25",
                "--label",
                "mine",
                "--out",
                str(tmp_path / "out"),
                "--quiet",
                "--no-plots",
            ]
        )
        == 0
    )
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    assert list(result["systems"]) == ["mine-zero-memory", "bm25"]
    assert all(set(r["ranks"]) == {"mine-zero-memory", "bm25"} for r in result["records"])


def test_dense_baseline_query_prefix(embedder):
    conv = _chat()
    prefixed = DenseBaseline(embedder, query_prefix="Question: ", name="prefixed").score(conv)
    docs = embedder.encode([s.text for s in conv.candidates])
    expected = embedder.encode(["Question: " + q.text for q in conv.questions]) @ docs.T
    np.testing.assert_allclose(prefixed, expected, atol=1e-6)
    assert not np.allclose(prefixed, DenseBaseline(embedder).score(conv), atol=1e-4)


def test_pairs_make_a_turn_and_its_reply_one_candidate():
    chat = _chat()
    pairs = paired(chat)
    assert [s.text for s in pairs.candidates] == [
        "Maya: I grew up in Porto, right by the river.\nLeo: Did you study there too?",
        "Maya: No, I studied chemistry in Lisbon.\nLeo: My first job was at a bakery in Madrid.",
        "Leo: My last job was at a bank in Oslo.",  # a run's odd last turn stays alone
    ]
    assert [s.kind for s in pairs.segments] == ["header", "turn", "header", "turn", "turn"]  # headers kept
    assert [(s.turn_id, s.session) for s in pairs.candidates] == [("t1", "s1"), ("t3", "s2"), ("t5", "s2")]
    assert [q.evidence for q in pairs.questions] == [("t1",), ("t3",), ("t3", "t5")]
    assert len(chat.candidates) == 5  # the original is unchanged


def test_cli_evaluates_pairs_under_their_own_benchmark_name(tmp_path, capsys):
    data = tmp_path / "samples.jsonl"
    data.write_text("\n".join(json.dumps(s) for s in _samples()))
    common = ["eval", "--data", str(data), "--systems", "bm25", "--quiet", "--no-plots"]
    assert main([*common, "--unit", "pair", "--out", str(tmp_path / "pairs")]) == 0
    assert main([*common, "--out", str(tmp_path / "messages")]) == 0
    pairs = json.loads((tmp_path / "pairs" / "results.json").read_text())
    messages = json.loads((tmp_path / "messages" / "results.json").read_text())
    assert pairs["benchmark"] == "samples-pairs" and messages["benchmark"] == "samples"
    assert pairs["candidates"] < messages["candidates"]
    with pytest.raises(SystemExit, match="different benchmarks"):
        main(["eval", "--merge", str(tmp_path / "pairs"), str(tmp_path / "messages"), "--out", str(tmp_path / "m")])


def test_evo_systems_split_long_turns_as_the_store_does(minilm_model):
    from evoembedding_core.splitting import split_long_texts
    from evoembedding_integrations.store import EvoStore

    long = " ".join(f"On day {n} Maya painted the fence and fed the cat." for n in range(50)) + " Her code is 4417."
    texts = ["Maya: I grew up in Porto.", f"Maya: {long}", "Leo: Nice."]
    chat = Conversation(
        "long",
        [Segment(t, turn_id=f"t{n}", session="s1") for n, t in enumerate(texts)],
        [Question("q1", "What is Maya's code?", ("t1",))],
    )
    streamed = EvoStore(minilm_model, long_texts="split", query_memory=True)  # as `evo` reads questions
    ids = streamed.add(texts)
    alone = []  # the zero-memory ablation: every piece of every turn over an empty memory, averaged
    for text in texts:
        pieces = [minilm_model.stream().add([piece])[0] for piece in split_long_texts(minilm_model, [text])[0]]
        mean = np.mean(pieces, axis=0)
        alone.append(mean / np.linalg.norm(mean))
    for zero_memory, turns in ((False, streamed.vectors(ids)), (True, np.stack(alone))):
        system = EvoSystem(minilm_model, zero_memory=zero_memory, long_texts="split")
        query = system._encode_empty(["What is Maya's code?"], query=True)[0]
        expected = turns @ query if zero_memory else turns @ streamed.encode_query("What is Maya's code?")
        np.testing.assert_allclose(system.score(chat)[0], expected, atol=1e-5)
