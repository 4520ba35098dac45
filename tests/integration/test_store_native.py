"""A released checkpoint loaded with ``native=True`` in the store: documents and queries both use the
bundled embedding model (``emb_model``), never the retriever adapter.

A tiny random checkpoint is written in the released ("EvoRAG") layout, as in
``tests/unit/test_compat_released.py``: a peft LM with the two adapters, memory queries, three heads
and the bundled ``emb_model``, in two safetensors shards with an index and an EvoRAG config.json.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3Config

from evoembedding_core import EvoEmbeddingModel
from evoembedding_integrations.store import EvoStore

K, CAPACITY, EMB = 2, 8, 48
TARGETS = ["q_proj", "v_proj", "k_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
DOCS = ["User: I grew up in Porto.\nAssistant: Nice city.", "User: Then I moved to Oslo.\nAssistant: How is it?"]
QUERY = "Where did I grow up?"


class ReleasedLayout(nn.Module):
    """The released model's module tree: peft LM, queries (1, K, D), three heads, emb_model."""

    def __init__(self, base_dir) -> None:
        super().__init__()
        torch.manual_seed(1)
        base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
        lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=TARGETS)
        self.model = get_peft_model(base, lora, adapter_name="memory_generator")
        self.model.add_adapter("retriever", lora)
        hidden = base.config.hidden_size
        self.memory_queries = nn.Parameter(torch.randn(1, K, hidden))
        self.latent_to_mem = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU())
        self.mem_to_latent = nn.Sequential(nn.Linear(hidden, hidden))
        self.mem_to_emb = nn.Sequential(nn.Linear(hidden, EMB), nn.ReLU(), nn.Linear(EMB, EMB))
        emb_config = Qwen3Config(
            vocab_size=base.config.vocab_size,
            hidden_size=EMB,
            intermediate_size=96,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=12,
            max_position_embeddings=32768,
            tie_word_embeddings=True,
        )
        self.emb_model = AutoModelForCausalLM.from_config(emb_config)
        with torch.no_grad():  # adapters must matter: peft starts them as no-ops
            for name, param in self.model.named_parameters():
                if "lora_" in name:
                    param.normal_(0.0, 0.1)


@pytest.fixture(scope="module")
def native_model(tmp_path_factory, tiny_causal_dir) -> EvoEmbeddingModel:
    root = tmp_path_factory.mktemp("released-native")
    base_dir = root / "base"
    tokenizer = AutoTokenizer.from_pretrained(tiny_causal_dir)
    tokenizer.add_special_tokens({"eos_token": "<|im_end|>"})
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(base_dir)
    tokenizer.save_pretrained(base_dir)
    state = {n: t.detach().clone().contiguous() for n, t in ReleasedLayout(base_dir).state_dict().items()}
    state = {n: t for n, t in state.items() if not n.endswith("lm_head.weight")}
    checkpoint = root / "EvoEmbedding-tiny"
    checkpoint.mkdir()
    names = sorted(state)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for file, keys in shards.items():
        save_file({k: state[k] for k in keys}, str(checkpoint / file))
    weight_map = {k: file for file, keys in shards.items() for k in keys}
    (checkpoint / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (checkpoint / "config.json").write_text(
        json.dumps(
            {
                "model_type": "EvoRAG",
                "architectures": ["EvoRAGModel"],
                "base_model_name_or_path": str(base_dir),
                "num_latents": K,
                "buffer_capacity": CAPACITY,
                "lora_r": 4,
                "lora_alpha": 8,
            }
        )
    )
    return EvoEmbeddingModel.from_pretrained(checkpoint, device="cpu", dtype=torch.float32, native=True)


def bundled(model: EvoEmbeddingModel, texts: list[str], *, query: bool = False) -> np.ndarray:
    """Vectors of the bundled embedding model alone (unit rows)."""
    with torch.inference_mode():
        return model.represent_native(model.tokenize(texts, query=query)).float().numpy()


def adapter_query(model: EvoEmbeddingModel, query: str) -> np.ndarray:
    """What the retriever adapter would make of the query over an empty memory."""
    with torch.inference_mode():
        return model.represent([model.empty_memory()], model.tokenize([query], query=True))[0].float().numpy()


@pytest.mark.parametrize("query_memory", [True, False])
def test_documents_and_queries_both_use_the_bundled_encoder(native_model, query_memory, tmp_path):
    store = EvoStore(native_model, query_memory=query_memory, hybrid=False)  # scores: cosine similarities
    store.add(DOCS[:1], stream_id="ana", ids=["a0"])
    store.add(DOCS[1:], stream_id="ana", ids=["a1"])
    store.add(DOCS, stream_id="bob", ids=["b0", "b1"])
    docs, query = bundled(native_model, DOCS), bundled(native_model, [QUERY], query=True)[0]
    assert not np.allclose(adapter_query(native_model, QUERY), query, atol=1e-3)  # the two paths differ
    np.testing.assert_allclose(store.vectors(["a0", "a1", "b0", "b1"]), np.concatenate([docs, docs]), atol=1e-5)
    np.testing.assert_allclose(store.encode_query(QUERY, "ana"), query, atol=1e-5)
    hits = store.search(QUERY, k=4)
    assert len(hits) == 4
    for hit in hits:
        assert hit.score == pytest.approx(float(docs[hit.position] @ query), abs=1e-5)
    loaded = EvoStore.load(store.save(tmp_path / "native"), native_model, query_memory=query_memory, hybrid=False)
    assert [(h.id, round(h.score, 5)) for h in loaded.search(QUERY, k=4)] == [(h.id, round(h.score, 5)) for h in hits]
