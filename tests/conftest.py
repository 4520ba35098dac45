"""Shared fixtures: the real MiniLM model and a tiny random causal LM built locally."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from evoembedding_core import EvoEmbeddingConfig, EvoEmbeddingModel

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def minilm_model() -> EvoEmbeddingModel:
    """Untrained EvoEmbedding model on the real packaged MiniLM weights (do not mutate).

    Its new layers are initialised from a fixed seed, so every run and test order sees the same model.
    """
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return EvoEmbeddingModel(EvoEmbeddingConfig())


def build_tiny_causal(directory: Path, *, family: str = "qwen3", seed: int = 0) -> Path:
    """Save a tiny random Qwen3/Llama causal LM with a small byte-level BPE tokenizer to ``directory``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast, Qwen3Config

    corpus = [
        "I grew up in Porto and moved to Oslo last spring.",
        "User: where do you live now?\nAssistant: In Oslo, with my cat.",
        "Instruct: Given a question, retrieve the earlier turns of the conversation that answer it\nQuery: ",
    ] * 20
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(corpus, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    common = dict(
        vocab_size=tokenizer.vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    config = Qwen3Config(head_dim=16, **common) if family == "qwen3" else LlamaConfig(**common)
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_causal_dir(tmp_path_factory) -> Path:
    """Directory of a tiny random Qwen3 causal LM + tokenizer (a real transformers checkpoint)."""
    return build_tiny_causal(tmp_path_factory.mktemp("tiny-qwen3"))


@pytest.fixture(scope="session")
def tiny_causal_model(tiny_causal_dir) -> EvoEmbeddingModel:
    """Untrained EvoEmbedding model on the tiny causal LM, small memory and chunks (do not mutate)."""
    config = EvoEmbeddingConfig(
        backbone=str(tiny_causal_dir),
        num_queries=2,
        memory_slots=4,
        lora_r=4,
        lora_alpha=8,
        chunk_segments=3,
        chunk_tokens=64,
        max_segment_tokens=48,
    )
    return EvoEmbeddingModel(config, device="cpu")


def randomize_adapters(model: EvoEmbeddingModel, *, seed: int = 0, std: float = 0.05) -> EvoEmbeddingModel:
    """Give both LoRA adapters non-zero B weights (an untrained model's adapters are no-ops)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * std)
    return model


@pytest.fixture(scope="session")
def adapted_minilm_model() -> EvoEmbeddingModel:
    """A separate MiniLM model whose LoRA adapters are random and non-zero (do not mutate)."""
    return randomize_adapters(EvoEmbeddingModel(EvoEmbeddingConfig()), seed=1)


@pytest.fixture(scope="session")
def adapted_tiny_causal_model(tiny_causal_model) -> EvoEmbeddingModel:
    """A separate tiny causal model (same config as ``tiny_causal_model``) with random adapters."""
    return randomize_adapters(EvoEmbeddingModel(tiny_causal_model.config, device="cpu"), seed=2, std=0.2)
