"""Run systems over conversations: per-question evidence ranks, then metrics overall and per category."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..model import EvoEmbeddingModel
from .conversation import Conversation
from .loaders import load_evotrain, samples_to_conversations
from .metrics import mean_percent, question_metrics, ranking
from .systems import EvoSystem, RetrievalSystem
from .temporal import temporal_direction, temporal_summary


def question_records(
    conversation: Conversation, systems: list[RetrievalSystem], *, progress: bool = False
) -> tuple[list[dict], dict]:
    """One record per question: its evidence ranks (in stream order) and relevant-session ranks per
    system. Also returns the seconds each system spent on the conversation."""
    candidates = conversation.candidates
    index = {s.turn_id: i for i, s in enumerate(candidates)}
    sessions = [s.session for s in candidates]
    with_sessions = len(set(sessions)) > 1
    records = []
    for q in conversation.questions:
        evidence = sorted(q.evidence, key=index.__getitem__)
        records.append(
            {
                "qid": q.qid,
                "conversation": conversation.name,
                "category": q.category,
                "question": q.text,
                "direction": temporal_direction(q.text),
                "evidence": evidence,
                "evidence_sessions": list(q.evidence_sessions or dict.fromkeys(sessions[index[e]] for e in evidence)),
                "ranks": {},
                "session_ranks": {},
            }
        )
    seconds = {}
    for system in systems:
        start = time.perf_counter()
        scores = system.score(conversation, progress=progress) if records else np.zeros((0, len(candidates)))
        seconds[system.name] = time.perf_counter() - start
        if scores.shape != (len(records), len(candidates)):
            raise ValueError(
                f"{system.name} returned scores of shape {scores.shape}, expected {(len(records), len(candidates))}"
            )
        for record, row in zip(records, scores):
            ranks = ranking(row)
            record["ranks"][system.name] = [int(ranks[index[e]]) for e in record["evidence"]]
            if with_sessions:
                order = np.argsort(ranks)
                session_rank = {s: r for r, s in enumerate(dict.fromkeys(sessions[i] for i in order), 1)}
                record["session_ranks"][system.name] = [session_rank[s] for s in record["evidence_sessions"]]
    return records, seconds


def summarise(records: list[dict], system: str) -> dict:
    """Metrics of one system: overall and per category (percent), and the temporal summary."""
    rows = defaultdict(list)
    for r in records:
        metrics = question_metrics(r["ranks"][system], r["session_ranks"].get(system))
        rows["overall"].append(metrics)
        rows[r["category"]].append(metrics)
    by_category = {c: {"n": len(rows[c]), **mean_percent(rows[c])} for c in sorted(rows) if c != "overall"}
    return {
        "overall": {"n": len(rows["overall"]), **mean_percent(rows["overall"])},
        "by_category": by_category,
        "temporal": temporal_summary(records, system),
    }


def evaluate(
    conversations: list[Conversation],
    systems: list[RetrievalSystem],
    *,
    benchmark: str = "custom",
    progress: bool = True,
) -> dict:
    """Run every system on every conversation (same candidates for all).

    Args:
        conversations: The conversations, with their questions and evidence.
        systems: The systems to compare (see :func:`~evoembedding_core.eval.systems.build_systems`).
        benchmark: The benchmark's name, kept in the results.
        progress: Show progress bars.

    Returns:
        The results dict: ``systems`` with metrics, ``records`` with every evidence rank, corpus
        sizes and timings.
    """
    records, seconds = [], defaultdict(float)
    for conversation in tqdm(conversations, desc=f"eval {benchmark}", unit="conv", disable=not progress):
        conv_records, conv_seconds = question_records(conversation, systems, progress=progress)
        records += conv_records
        for name, s in conv_seconds.items():
            seconds[name] += s
    corpus = {
        "conversations": len(conversations),
        "candidates": sum(len(c.candidates) for c in conversations),
        "segments": sum(len(c.segments) for c in conversations),
        "skipped_questions": sum(c.skipped_questions for c in conversations),
    }
    return _result(benchmark, corpus, records, {s.name: seconds[s.name] for s in systems})


def _result(benchmark: str, corpus: dict, records: list[dict], seconds: dict[str, float]) -> dict:
    return {
        "benchmark": benchmark,
        **corpus,
        "questions": len(records),
        "systems": {name: {**summarise(records, name), "seconds": round(s, 1)} for name, s in seconds.items()},
        "records": records,
    }


CORPUS_KEYS = ("conversations", "candidates", "segments", "skipped_questions")


def merge_results(results: list[dict]) -> dict:
    """One result from several ``results.json`` of one benchmark: shards over different conversations
    (``--shard``) are concatenated, runs of different systems on the same conversations are joined
    question by question. Metrics are recomputed from the per-question ranks."""
    if not results:
        raise ValueError("nothing to merge")
    benchmarks = {r["benchmark"] for r in results}
    if len(benchmarks) != 1:
        raise ValueError(f"cannot merge results of different benchmarks: {sorted(benchmarks)}")
    records: dict[tuple, dict] = {}
    seconds: dict[str, float] = defaultdict(float)
    for result in results:
        for record in result["records"]:
            key = (record["conversation"], record["qid"])
            merged = records.setdefault(key, {**record, "ranks": {}, "session_ranks": {}})
            twice = sorted(set(merged["ranks"]) & set(record["ranks"]))
            if twice:
                raise ValueError(f"system(s) {twice} were run twice on question {key}: merge one run of each")
            merged["ranks"].update(record["ranks"])
            merged["session_ranks"].update(record["session_ranks"])
        for name, system in result["systems"].items():
            seconds[name] += system["seconds"]
    missing = sorted({name for name in seconds for r in records.values() if name not in r["ranks"]})
    if missing:
        raise ValueError(f"system(s) {missing} lack ranks for some questions: merge every shard of each run")
    # Each system's runs cover every conversation exactly once, so the first system's runs add up to the corpus.
    first = next(iter(seconds))
    corpus = {k: sum(r[k] for r in results if first in r["systems"]) for k in CORPUS_KEYS}
    merged = _result(benchmarks.pop(), corpus, list(records.values()), dict(seconds))
    models = set()
    for r in results:  # one model, several (a merged result lists them), or None (static systems only)
        models.update(r["model"] if isinstance(r.get("model"), list) else [r.get("model")])
    models.discard(None)
    merged["model"] = models.pop() if len(models) == 1 else sorted(models) or None
    return merged


def rename_system(result: dict, old: str, new: str) -> dict:
    """``result`` with system ``old`` called ``new`` (in the metrics and every question's ranks)."""
    if new in result["systems"]:
        raise ValueError(f"system {new!r} already exists in the result")
    result["systems"] = {new if name == old else name: value for name, value in result["systems"].items()}
    for record in result["records"]:
        for ranks in (record["ranks"], record["session_ranks"]):
            if old in ranks:
                ranks[new] = ranks.pop(old)
    return result


def evaluate_samples(
    model: EvoEmbeddingModel, samples: Iterable[dict] | str | Path, *, zero_memory: bool = False, progress: bool = False
) -> dict:
    """Evidence-rank metrics of ``model`` on EvoTrain samples.

    Each sample's history is streamed, its last turn is the query, ``evidence_turns`` are the
    relevant turns.

    Args:
        model: The model.
        samples: Sample dicts, or a JSON/JSONL path.
        zero_memory: Score the context-removed ablation instead.
        progress: Show progress bars.

    Returns:
        ``{"overall": {"n", "R@1", ..., "NDCG@10"}, "by_category": {template: {...}}, "temporal": ...}``
        (percent).

    Raises:
        ValueError: No samples.
    """
    if isinstance(samples, (str, Path)):
        conversations = load_evotrain(samples)
    else:
        conversations = samples_to_conversations(samples)
    if not conversations:
        raise ValueError("evaluate_samples needs at least one sample")
    system = EvoSystem(model, zero_memory=zero_memory)
    result = evaluate(conversations, [system], benchmark="samples", progress=progress)
    return result["systems"][system.name]
