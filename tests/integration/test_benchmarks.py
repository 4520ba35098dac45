"""Benchmarks stay runnable (tiny smoke runs of each script), and the engine's speed-ups stay exact."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from evoembedding_core import EvoEmbeddingConfig, EvoEmbeddingModel
from evoembedding_core.recurrence import StreamState, advance, length_batches

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def run_benchmark(minilm_model, tmp_path, monkeypatch):
    """Run ``benchmarks/<name>.py`` in-process with ``args`` (on the session's untrained MiniLM model
    instead of loading the default again); returns its JSON result."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setattr(EvoEmbeddingModel, "default", classmethod(lambda cls, **kwargs: minilm_model))

    def run(name: str, args: list[str]) -> dict:
        out = tmp_path / f"{name}.json"
        monkeypatch.setattr(sys, "argv", [name, *args, "--out", str(out)])
        with torch.no_grad():
            importlib.import_module(name).main()
        return json.loads(out.read_text())

    return run


def test_chat_turns_are_seeded_and_within_the_token_range(minilm_model, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from common import chat_turns

    turns = chat_turns(30, minilm_model.tokenizer, seed=3, min_tokens=10, max_tokens=40)
    assert turns == chat_turns(30, minilm_model.tokenizer, seed=3, min_tokens=10, max_tokens=40)
    lengths = [len(minilm_model.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in turns]
    assert len(turns) == 30 and min(lengths) >= 8 and max(lengths) <= 42  # decode/re-encode may shift a token
    assert len(set(lengths)) > 5, "lengths vary"


def test_ingest_benchmark_smoke(run_benchmark):
    result = run_benchmark("ingest", ["--turns", "8", "--call-size", "5", "--dtype", "float32"])
    assert result["machine"]["device"] in ("cpu", "cuda") and len(result["machine"]["load_average"]) == 3
    assert result["static"]["segments_per_s"] > 0 and result["evo"]["segments_per_s"] > 0
    # from the times (the rounded rates lose precision on a slow, loaded machine)
    assert result["ratio"] == pytest.approx(result["evo"]["seconds"][0] / result["static"]["seconds"][0], rel=0.01)
    # untrained model on an empty memory == static MiniLM: both systems really encoded the same turns
    assert result["first_turn_cosine_evo_vs_static"] == pytest.approx(1.0, abs=1e-5)


def test_streaming_benchmark_smoke(run_benchmark):
    args = ["--sizes", "6", "1000", "--repeats", "2", "--real-turns", "6", "--rebuild-sizes", "2", "6"]
    result = run_benchmark("streaming", args)
    sizes = {r["size"]: r for r in result["sizes"]}
    assert set(sizes) == {6, 1000} and sizes[6]["rebuild"] == "measured"
    assert sizes[1000]["rebuild"] == "extrapolated (linear)"
    assert all(r["append_ms_p50"] > 0 for r in sizes.values())


def test_query_latency_benchmark_smoke(run_benchmark):
    args = ["--sizes", "300", "--queries", "3", "--history", "4", "--hnsw-threshold", "100", "--texts", "50"]
    result = run_benchmark("query_latency", args)
    stores = {(r["index"], r["mode"]): r for r in result["stores"]}
    assert set(stores) == {(i, m) for i in ("flat", "hnsw") for m in ("memory", "no-memory", "hybrid")}
    assert all(r["search_ms_p50"] > 0 for r in stores.values())
    assert stores["hnsw", "memory"]["recall_at_10_vs_exact"] >= 0.9  # HNSW on 300 vectors is near exact
    assert stores["hnsw", "no-memory"]["recall_at_10_vs_exact"] >= 0.9
    assert set(result["encode_query_ms_p50"]) == {"memory", "no-memory"}


def test_memory_benchmark_smoke(run_benchmark, minilm_model):
    result = run_benchmark("memory", ["--turns", "16", "--call-size", "8"])
    cfg = minilm_model.config
    assert [s["turns"] for s in result["samples"]] == [8, 16]
    assert 0 < result["state_tensor_bytes"] <= 2 * cfg.capacity * minilm_model.hidden_size * 4
    assert result["state_file_bytes"] > result["state_tensor_bytes"]
    assert result["kept_mb"] > 0


def test_multistream_benchmark_smoke(run_benchmark):
    args = ["--streams", "1", "3", "--turns-per-stream", "3", "--patterns", "live", "bulk"]
    result = run_benchmark("multistream", args)
    assert [(r["pattern"], r["streams"]) for r in result["results"]] == [
        ("live", 1),
        ("live", 3),
        ("bulk", 1),
        ("bulk", 3),
    ]
    assert all(r["max_abs_vector_difference"] < 1e-5 and r["speedup"] > 0 for r in result["results"])


def test_automatic_dtype_and_its_override(monkeypatch):
    from evoembedding_core import devices

    monkeypatch.delenv(devices.DTYPE_ENV, raising=False)
    assert devices.default_dtype("cuda") == torch.bfloat16
    fast = devices.cpu_has_fast_bf16()
    assert devices.default_dtype("cpu") == (torch.bfloat16 if fast else torch.float32)
    monkeypatch.setattr(devices, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    assert devices.default_dtype("cpu") == torch.bfloat16
    for value, dtype in (("float32", torch.float32), ("BF16", torch.bfloat16), ("auto", torch.bfloat16)):
        monkeypatch.setenv(devices.DTYPE_ENV, value)
        assert devices.default_dtype("cpu") == dtype
    monkeypatch.setenv(devices.DTYPE_ENV, "int4")
    with pytest.raises(ValueError, match="unknown dtype"):
        devices.default_dtype("cpu")
    assert devices.parse_dtype(torch.float16) is torch.float16


# ---------------------------------------------------------------------------------- engine speed-ups
@pytest.fixture(scope="module")
def adapted_minilm() -> EvoEmbeddingModel:
    """MiniLM with non-zero LoRA weights in both adapters (so merging them actually changes weights)."""
    model = EvoEmbeddingModel(EvoEmbeddingConfig(chunk_segments=4))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.trainable_named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.05)
    return model


def test_merged_adapters_match_unmerged_lora_and_follow_weight_changes(adapted_minilm):
    model = adapted_minilm
    ids = model.tokenize(["Ana: I moved to Oslo last spring.", "Bob: nice!"])
    memories = [torch.randn(8, model.hidden_size, generator=torch.Generator().manual_seed(1))] * 2
    for adapter in ("memory", "retriever"):
        with torch.no_grad():  # inference: merged weights
            merged, _ = model._encode_rows(adapter, memories, ids, with_queries=True)
        unmerged, _ = model._encode_rows(adapter, memories, ids, with_queries=True)  # autograd on: peft's LoRA
        torch.testing.assert_close(merged, unmerged.detach(), atol=1e-4, rtol=1e-5)
    with torch.no_grad():
        before, _ = model._encode_rows("memory", memories, ids, with_queries=False)
        lora_b = next(p for n, p in model.trainable_named_parameters() if "lora_B.memory" in n)
        lora_b.add_(0.5)  # a training step or load_trained_weights changes the weights in place
        try:
            after, _ = model._encode_rows("memory", memories, ids, with_queries=False)
        finally:
            lora_b.sub_(0.5)
    reference, _ = model._encode_rows("memory", memories, ids, with_queries=False)
    assert (after - before).abs().max() > 1e-2, "the merged-weight cache saw the change"
    torch.testing.assert_close(before, reference.detach(), atol=1e-4, rtol=1e-5)


def test_bfloat16_backbone_runs_merged_and_stays_close_to_float32():
    """A bf16 backbone (fast on CPUs with AMX / AVX512-BF16) merges its float32 adapters too, and its
    vectors stay within bf16 rounding of the float32 model's (the shipped weights, real text)."""
    f32 = EvoEmbeddingModel.default()
    b16 = EvoEmbeddingModel.default(dtype=torch.bfloat16)
    assert b16.backbone_dtype == torch.bfloat16 and b16.dtype == torch.float32
    with torch.no_grad():
        assert b16._merged_weights("retriever") is not None
        ids = b16.tokenize(["Ana: I moved to Oslo last spring.", "Bob: nice!"])
        memories = [torch.randn(8, b16.hidden_size, generator=torch.Generator().manual_seed(1))] * 2
        merged, _ = b16._encode_rows("retriever", memories, ids, with_queries=False)
    unmerged, _ = b16._encode_rows("retriever", memories, ids, with_queries=False)  # autograd on: peft's LoRA
    assert F.cosine_similarity(merged.float(), unmerged.detach().float(), dim=-1).min() > 0.999
    turns = ["Ana: I grew up in Porto.", "Bob: Do you still live there?", "Ana: No, last spring I moved to Oslo."]
    a, b = f32.stream(), b16.stream()
    cosines = (a.add(turns) * b.add(turns)).sum(1).tolist() + [
        float(a.encode_query("Where?") @ b.encode_query("Where?"))
    ]
    assert min(cosines) > 0.999


def test_length_batches_cover_every_row_once_and_cut_padding():
    lengths = [12, 118, 15, 104, 60, 11, 97, 33, 14, 120]
    batches = length_batches(lengths, max_rows=16, overhead=64)
    assert sorted(i for rows in batches for i in rows) == list(range(len(lengths)))
    padded = sum(len(rows) * max(lengths[i] for i in rows) for rows in batches)
    assert padded < len(lengths) * max(lengths)
    assert all(len(rows) <= 3 for rows in length_batches(lengths, max_rows=3))
    assert length_batches([], max_rows=4) == []


def test_length_batched_stream_equals_one_segment_at_a_time(adapted_minilm):
    """Batching rows by length (evolve within a chunk, represent across the call) changes nothing."""
    model = adapted_minilm
    texts = [
        "Hi!",
        "Ana: I grew up in Porto, by the river, and spent every summer there.",
        "Bob: And now?",
        "Ana: Now I live in Oslo with my partner and our two cats, since last spring.",
        "Bob: Cold?",
        "Ana: Very.",
    ]
    tokens = model.tokenize(texts)
    with torch.inference_mode():
        together, state_a = advance(model, StreamState.empty(model), tokens)
        state_b, singles = StreamState.empty(model), []
        for seq in tokens:
            vector, state_b = advance(model, state_b, [seq])
            singles.append(vector)
    np.testing.assert_allclose(together.numpy(), torch.cat(singles).numpy(), atol=1e-5)
    torch.testing.assert_close(state_a.memory, state_b.memory, atol=1e-5, rtol=1e-5)


def test_memory_size_benchmark_smoke(run_benchmark):
    result = run_benchmark("memory_size", ["--turns", "6", "--call-size", "3", "--repeats", "1", "--queries", "1"])
    archs = result["architectures"]
    assert {(a["K"], a["L"], a["C"], a["lora_r"]) for a in archs.values()} == {
        (4, 8, 32, 8),
        (2, 16, 32, 8),
        (8, 4, 32, 8),
        (4, 4, 16, 8),
        (4, 16, 64, 8),
        (4, 32, 128, 8),
        (4, 8, 32, 4),
        (4, 8, 32, 16),
    }
    for a in archs.values():
        assert a["turns_per_s"] > 0 and a["cost_vs_static"] > 0
        assert a["query_ms_over_memory"] > 0 and a["query_ms_empty_memory"] > 0
