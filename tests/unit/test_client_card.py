"""The EvoEmbedding model card's client code, run unchanged on a local checkpoint in the released layout.

A tiny random checkpoint is written the way the released ones are (``model_type: EvoRAG``: the
peft-wrapped causal LM with adapters ``memory_generator`` and ``retriever``, the query tokens, the
three heads, the bundled ``emb_model``), so nothing is downloaded. The card's hub id is the only
thing replaced: by that checkpoint's directory.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from torch import nn
from transformers import AutoModelForCausalLM, Qwen3Config

from evoembedding_core import EvoEmbeddingClient, EvoEmbeddingModel, EvoRAGClient
from evoembedding_integrations.store import EvoStore

K, CAPACITY, EMB = 2, 8, 32
TARGETS = ["q_proj", "v_proj", "k_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

HISTORY = [
    ("I grew up in Porto.", "Nice city."),
    ("Then I moved to Oslo last spring.", "How is Oslo?"),
    ("My cat is called Miso.", "Cute."),
    ("I started a new job in March.", "Congratulations!"),
    ("My sister lives in Lisbon.", "Lovely."),
]
CHAT = [m for u, a in HISTORY for m in ({"role": "user", "content": u}, {"role": "assistant", "content": a})]
CHAT.append({"role": "user", "content": "Where did I grow up?"})
TURNS = [f"User: {u}\nAssistant: {a}" for u, a in HISTORY]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny matrices: threading only adds overhead."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _released_state(base_dir) -> dict[str, torch.Tensor]:
    """The state dict of a random model with the released module tree."""
    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS)
    root = nn.Module()
    root.model = get_peft_model(base, lora, adapter_name="memory_generator")
    root.model.add_adapter("retriever", lora)
    hidden = base.config.hidden_size
    root.memory_queries = nn.Parameter(torch.randn(1, K, hidden))
    root.latent_to_mem = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU())
    root.mem_to_latent = nn.Sequential(nn.Linear(hidden, hidden))
    root.mem_to_emb = nn.Sequential(nn.Linear(hidden, EMB), nn.ReLU(), nn.Linear(EMB, EMB))
    emb_config = Qwen3Config(
        vocab_size=base.config.vocab_size,
        hidden_size=EMB,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        tie_word_embeddings=True,
    )
    root.emb_model = AutoModelForCausalLM.from_config(emb_config)
    with torch.no_grad():  # adapters must matter: peft starts them as no-ops
        for name, param in root.model.named_parameters():
            if "lora_" in name:
                param.normal_(0.0, 0.1)
    state = {n: t.detach().clone().contiguous() for n, t in root.state_dict().items()}
    return {n: t for n, t in state.items() if not n.endswith("lm_head.weight")}  # tied, as save_pretrained drops


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_causal_dir):
    """Directory of a tiny checkpoint in the released layout (base model: the tiny causal LM)."""
    directory = tmp_path_factory.mktemp("card") / "EvoEmbedding-tiny"
    directory.mkdir()
    save_file(_released_state(tiny_causal_dir), str(directory / "model.safetensors"))
    config = {
        "model_type": "EvoRAG",
        "architectures": ["EvoRAGModel"],
        "base_model_name_or_path": str(tiny_causal_dir),
        "num_latents": K,
        "buffer_capacity": CAPACITY,
        "lora_r": 4,
        "lora_alpha": 8,
    }
    (directory / "config.json").write_text(json.dumps(config))
    return str(directory)


@pytest.fixture(scope="module")
def client(checkpoint):
    return EvoEmbeddingClient(model_path=checkpoint, device="cpu")


def test_model_card_snippets_run_unchanged(checkpoint):
    # --- the card, with its hub id replaced by the local checkpoint ---------------------------
    client = EvoEmbeddingClient(model_path=checkpoint, device="cpu")

    messages = [
        {"role": "user", "content": "I visited Paris in April."},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "I bought a new laptop yesterday."},
        {"role": "assistant", "content": "Got it."},
        {"role": "user", "content": "Where did I travel in spring?"},
    ]

    embeddings = client.encode_messages(messages)

    candidates = [
        "I visited Paris in April.",
        "I bought a new laptop yesterday.",
        "The meeting was moved to Friday.",
    ]
    query = "Where did I travel in spring?"

    ranked_candidates, ranked_indices = client.rerank(
        query,
        candidates,
        top_k=1,
        return_indices=True,
    )
    # --- end of the card ------------------------------------------------------------------------

    assert client.model.config.extra["converted_from"] == "EvoRAG"
    assert embeddings.shape == (3, EMB)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    (best, score) = client.rerank_with_scores(query, candidates)[0]
    assert ranked_indices == [best] and ranked_candidates == [candidates[best]]
    assert client.rerank(query, candidates)[0] == (candidates[best], score)


def test_card_constructor_keywords(checkpoint, tiny_causal_dir, tmp_path, client):
    base_copy = shutil.copytree(tiny_causal_dir, tmp_path / "base-copy")
    card = EvoRAGClient(model_name="EvoEmbedding", model_path=checkpoint, tokenizer_name=str(base_copy), device="cpu")
    assert EvoRAGClient is EvoEmbeddingClient and card.model_name == "EvoEmbedding"
    assert card.model.config.backbone == str(base_copy)  # the base model came from tokenizer_name
    np.testing.assert_allclose(card.encode_messages(CHAT), client.encode_messages(CHAT), atol=1e-5)
    assert EvoEmbeddingClient(client.model, model_name="mine").model_name == "mine"


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(model="x", model_path="y"), ValueError, "either model or model_path"),
        (dict(tokenizer_name="Qwen/Qwen3-4B-Instruct-2507"), ValueError, "tokenizer_name"),
        (dict(model_name=3), TypeError, "model_name"),
        (dict(model=3), TypeError, "model must be"),
    ],
)
def test_constructor_rejects_bad_keywords(kwargs, error, match):
    with pytest.raises(error, match=match):
        EvoEmbeddingClient(**kwargs)


def _store_ranking(model: EvoEmbeddingModel, k: int, query_memory: bool = True) -> list[int]:
    """The store's ranking of the chat's turns for its last message, read as the card does (vectors only)."""
    store = EvoStore(model, query_memory=query_memory, hybrid=False)
    store.add(TURNS, stream_id="chat")
    return [hit.position for hit in store.search(CHAT[-1]["content"], k=k, stream_ids="chat")]


@pytest.mark.parametrize("rag_sentence_num", [1, 3, 10])
def test_send_message_retrieve_matches_the_store(client, rag_sentence_num):
    expected = _store_ranking(client.model, rag_sentence_num)
    assert len(expected) == min(rag_sentence_num, len(TURNS))
    assert client.send_message_retrieve(CHAT, rag_sentence_num, _sorted=False) == expected
    assert client.send_message_retrieve(CHAT, rag_sentence_num) == sorted(expected)
    assert client.send_message_retrieve(CHAT, rag_sentence_num, native=False, _sorted=True) == sorted(expected)


def test_send_message_retrieve_native(checkpoint, client):
    native = EvoEmbeddingClient(EvoEmbeddingModel.from_pretrained(checkpoint, native=True, device="cpu"))
    # Native vectors are static: the memory plays no part, so the store's memory-free query is the same
    # query. (Its default, memory-reading query path does not switch to native vectors.)
    expected = _store_ranking(native.model, 3, query_memory=False)
    assert native.send_message_retrieve(CHAT, 3, native=True, _sorted=False) == expected
    with pytest.raises(ValueError, match="native=False"):
        native.send_message_retrieve(CHAT, 3)
    with pytest.raises(ValueError, match="native=True"):
        client.send_message_retrieve(CHAT, 3, native=True)


def test_send_message_retrieve_edge_cases(client):
    assert client.send_message_retrieve(CHAT[-1:], 4) == []
    odd = [{"role": "system", "content": "Be brief."}, *CHAT]  # a system message is a turn of its own
    assert len(client.send_message_retrieve(odd, 10)) == len(TURNS) + 1
    for bad, error in [(0, ValueError), (True, ValueError), ("2", ValueError)]:
        with pytest.raises(error, match="rag_sentence_num"):
            client.send_message_retrieve(CHAT, bad)
    with pytest.raises(TypeError, match="_sorted"):
        client.send_message_retrieve(CHAT, 2, _sorted=None)
    with pytest.raises(ValueError, match="non-empty list"):
        client.send_message_retrieve([], 2)
