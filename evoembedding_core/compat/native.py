"""The static embedding model bundled in released checkpoints (``emb_model.*``), rebuilt offline.

The released layout stores a Qwen3-Embedding-0.6B (as a causal LM) but not its config. Its shapes
(layers, widths, heads, vocabulary) are read from the tensors; the few hyper-parameters that
tensors cannot show are Qwen3-Embedding-0.6B's published values below.
"""

from __future__ import annotations

import re

import torch
from transformers import Qwen3Config, Qwen3Model

from .checkpoint import CheckpointReader

NATIVE_PREFIX = "emb_model."
QWEN3_EMBEDDING_CONSTANTS = dict(rope_theta=1_000_000.0, rms_norm_eps=1e-6, max_position_embeddings=32768)


def has_native_weights(reader: CheckpointReader) -> bool:
    """Whether the checkpoint bundles an embedding model (``emb_model.*`` tensors)."""
    return any(name.startswith(NATIVE_PREFIX) for name in reader.keys())


def load_native_encoder(reader: CheckpointReader, *, device: torch.device, dtype: torch.dtype) -> Qwen3Model:
    """Rebuild the bundled embedding model's transformer body (no LM head).

    Args:
        reader: The checkpoint's tensors.
        device: Where to put it.
        dtype: Its dtype.

    Returns:
        The Qwen3 body, frozen, in eval mode.

    Raises:
        ValueError: The checkpoint has no ``emb_model`` weights, or they do not fit a Qwen3 body.
    """
    body = f"{NATIVE_PREFIX}model."
    tensors = {name[len(body) :]: reader.get(name) for name in reader.keys() if name.startswith(body)}
    if "embed_tokens.weight" not in tensors:
        raise ValueError("checkpoint has no emb_model.model.embed_tokens.weight: no bundled embedding model")
    vocab, hidden = tensors["embed_tokens.weight"].shape
    layers = 1 + max(int(m.group(1)) for name in tensors if (m := re.match(r"layers\.(\d+)\.", name)))
    head_dim = tensors["layers.0.self_attn.q_norm.weight"].shape[0]
    config = Qwen3Config(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=tensors["layers.0.mlp.gate_proj.weight"].shape[0],
        num_hidden_layers=layers,
        num_attention_heads=tensors["layers.0.self_attn.q_proj.weight"].shape[0] // head_dim,
        num_key_value_heads=tensors["layers.0.self_attn.k_proj.weight"].shape[0] // head_dim,
        head_dim=head_dim,
        tie_word_embeddings=True,
        **QWEN3_EMBEDDING_CONSTANTS,
    )
    config._attn_implementation = "sdpa"
    model = Qwen3Model(config)
    problems = model.load_state_dict(tensors, strict=False)
    if problems.missing_keys or problems.unexpected_keys:
        raise ValueError(
            f"emb_model weights do not fit a Qwen3 body: missing {problems.missing_keys[:5]}, "
            f"unexpected {problems.unexpected_keys[:5]}"
        )
    model.to(device=device, dtype=dtype).requires_grad_(False).eval()
    return model
