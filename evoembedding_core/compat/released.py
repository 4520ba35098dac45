"""The released EvoEmbedding checkpoints (MiG-NJU/EvoEmbedding-0.8B / 2B / 4B, ``model_type: EvoRAG``).

Their layout, mapped onto :class:`~evoembedding_core.model.EvoEmbeddingModel`:

=================================  ==========================================================
released                           ours
=================================  ==========================================================
``model.*`` (peft causal LM)       ``backbone.*``; adapter ``memory_generator`` -> ``memory``,
                                   ``retriever`` -> ``retriever``
``memory_queries`` (1, K, D)       ``memory_queries`` (K, D)
``latent_to_mem`` / ``mem_to_latent`` / ``mem_to_emb``   the same heads, 1:1
``emb_model.*`` (Qwen3-Embedding)  ``native_encoder`` (loaded only with ``native=True``)
``num_latents`` / ``buffer_capacity``  ``num_queries`` / ``capacity`` (``memory_slots = C / K``)
=================================  ==========================================================

The released algorithm is reproduced by the config: packed chunk evolution (one causal row per
chunk of at most 16 segments / 2048 tokens), last-token pooling, ``<|endoftext|>`` closing every
segment, and the query prefix tokenised apart from the query.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from ..backbones import Backbone, default_device, default_dtype, load_backbone
from ..config import EvoEmbeddingConfig
from ..model import MEMORY_ADAPTER, EvoEmbeddingModel
from .checkpoint import CheckpointReader
from .native import NATIVE_PREFIX, has_native_weights, load_native_encoder

RELEASED_MODEL_TYPE = "EvoRAG"
RELEASED_QUERY_PREFIX = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"
RELEASED_SEGMENT_END = "<|endoftext|>"
RELEASED_LORA_TARGETS = ["q_proj", "v_proj", "k_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
RELEASED_CHUNK_SEGMENTS = 16
RELEASED_CHUNK_TOKENS = 2048
MAX_SEGMENT_TOKENS = 8192
"""Our truncation limit (the released code has none); lowered when the backbone has fewer positions."""
HEADS = ("memory_queries", "latent_to_mem.", "mem_to_latent.", "mem_to_emb.")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def is_released_config(raw: dict) -> bool:
    """Whether a parsed ``config.json`` is a released EvoEmbedding checkpoint's."""
    return raw.get("model_type") == RELEASED_MODEL_TYPE


def released_parameter_name(key: str) -> str | None:
    """Our parameter name for a released checkpoint key.

    Args:
        key: A tensor name in the released checkpoint.

    Returns:
        The parameter name in :class:`EvoEmbeddingModel`, or ``None`` for the bundled embedding model.

    Raises:
        ValueError: The key belongs to no known part.
    """
    if key.startswith(NATIVE_PREFIX):
        return None
    if key.startswith("model."):
        parts = [MEMORY_ADAPTER if p == "memory_generator" else p for p in key[len("model.") :].split(".")]
        return "backbone." + ".".join(parts)
    if key.startswith(HEADS):
        return key
    raise ValueError(f"unexpected key in released checkpoint: {key!r}")


def released_config(raw: dict, reader: CheckpointReader, hf_config, overrides: dict) -> EvoEmbeddingConfig:
    """Our config equivalent to a released ``config.json``.

    Args:
        raw: The released ``config.json``.
        reader: The checkpoint's tensors (shapes are checked against the config).
        hf_config: The base model's transformers config (for its position limit).
        overrides: Config fields to replace.

    Returns:
        The equivalent :class:`EvoEmbeddingConfig`.

    Raises:
        ValueError: The config contradicts the tensors, or an override is unknown.
    """
    k = int(raw.get("num_latents", 16))
    capacity = int(raw.get("buffer_capacity", 512))
    if "memory_queries" in reader and reader.shape("memory_queries")[-2] != k:
        raise ValueError(f"num_latents={k} but memory_queries has shape {reader.shape('memory_queries')}")
    if capacity % k:
        raise ValueError(f"buffer_capacity {capacity} is not a multiple of num_latents {k}")
    positions = getattr(hf_config, "max_position_embeddings", None) or getattr(
        getattr(hf_config, "text_config", None), "max_position_embeddings", MAX_SEGMENT_TOKENS + capacity + k
    )
    config = EvoEmbeddingConfig(
        backbone=str(raw["base_model_name_or_path"]),
        backbone_kind="causal",
        num_queries=k,
        memory_slots=capacity // k,
        lora_r=int(raw.get("lora_r", 64)),
        lora_alpha=int(raw.get("lora_alpha", 128)),
        lora_target_modules=list(RELEASED_LORA_TARGETS),
        output_dim=reader.shape("mem_to_emb.2.weight")[0],
        pooling="last",
        query_prefix=RELEASED_QUERY_PREFIX,
        query_prefix_apart=True,
        segment_end_token=RELEASED_SEGMENT_END,
        evolution="packed",
        chunk_segments=RELEASED_CHUNK_SEGMENTS,
        chunk_tokens=RELEASED_CHUNK_TOKENS,
        max_segment_tokens=max(1, min(MAX_SEGMENT_TOKENS, positions - capacity - k)),
        extra={"converted_from": RELEASED_MODEL_TYPE},
    )
    try:
        return dataclasses.replace(config, **overrides)
    except TypeError as exc:
        raise ValueError(f"unknown config override for a released checkpoint: {exc}") from None


def load_released(
    directory: Path, raw: dict, *, device=None, dtype: torch.dtype | None = None, **overrides
) -> EvoEmbeddingModel:
    """Load a released checkpoint directory as an :class:`EvoEmbeddingModel` (nothing unpickled).

    Args:
        directory: The checkpoint directory.
        raw: Its parsed ``config.json``.
        device: Where to put the model.
        dtype: The backbone's dtype.
        **overrides: Config fields to replace; ``backbone=`` replaces ``base_model_name_or_path``
            (e.g. a local copy), ``native=True`` loads the bundled embedding model and makes every
            vector static.

    Returns:
        The model, in eval mode.

    Raises:
        ValueError: The base model cannot be read, or the tensors do not match it.
    """
    reader = CheckpointReader(directory)
    device = torch.device(device) if device is not None else default_device()
    dtype = dtype or default_dtype(device)
    base = str(overrides.get("backbone") or raw.get("base_model_name_or_path") or "")
    if not base:
        raise ValueError(f"{directory}/config.json has no base_model_name_or_path; pass backbone=")
    try:
        hf_config = AutoConfig.from_pretrained(base)
    except OSError as exc:
        raise ValueError(
            f"cannot read the base model {base!r} named by {directory}/config.json ({exc}); pass "
            "backbone='<hub id or local copy>', e.g. backbone='Qwen/Qwen3-4B-Instruct-2507'"
        ) from exc
    config = released_config({**raw, "base_model_name_or_path": base}, reader, hf_config, overrides)
    has_base = any(name.startswith("model.") and "lora_" not in name for name in reader.keys())
    backbone = _released_backbone(directory, base, hf_config, has_base, device=device, dtype=dtype)
    model = EvoEmbeddingModel(config, backbone=backbone, device=device, dtype=dtype)
    _copy_released_weights(model, reader, include_base=has_base)
    if config.native:
        if not has_native_weights(reader):
            raise ValueError(f"{directory}: native=True needs emb_model.* weights, which this checkpoint lacks")
        model.native_encoder = load_native_encoder(reader, device=device, dtype=dtype)
    return model


def _released_backbone(directory: Path, base: str, hf_config, has_base: bool, *, device, dtype) -> Backbone:
    """The base causal LM: built from its config when the checkpoint carries its weights, else loaded."""
    if not has_base:
        return load_backbone(base, kind="causal", device=device, dtype=dtype)
    model = AutoModelForCausalLM.from_config(hf_config, dtype=dtype, attn_implementation="sdpa").to(device)
    model.requires_grad_(False).eval()
    has_tokenizer = any((directory / name).is_file() for name in TOKENIZER_FILES)
    tokenizer = AutoTokenizer.from_pretrained(str(directory) if has_tokenizer else base)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return Backbone(model=model, tokenizer=tokenizer, kind="causal", source=base)


@torch.no_grad()
def _copy_released_weights(model: EvoEmbeddingModel, reader: CheckpointReader, *, include_base: bool) -> None:
    """Copy every released tensor into its parameter; refuse missing, unexpected or mis-shaped ones."""
    params = dict(model.named_parameters(remove_duplicate=False))
    required = {name for name, _ in model.trainable_named_parameters()}
    if include_base:
        required |= {name for name, _ in model.named_parameters() if name.startswith("backbone.")}
    loaded, unexpected = set(), []
    for key in reader.keys():
        name = released_parameter_name(key)
        if name is None:
            continue
        if name not in params:
            unexpected.append(key)
            continue
        tensor = reader.get(key)
        if name == "memory_queries":
            tensor = tensor.reshape(tensor.shape[-2:])  # (1, K, D) -> (K, D)
        if tuple(tensor.shape) != tuple(params[name].shape):
            raise ValueError(f"{key}: checkpoint shape {tuple(tensor.shape)} != model {tuple(params[name].shape)}")
        params[name].copy_(tensor)
        loaded.add(name)
    missing = sorted(required - loaded - _tied_aliases(model, loaded))
    if missing or unexpected:
        raise ValueError(
            f"released checkpoint does not match its base model: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )


def _tied_aliases(model: EvoEmbeddingModel, loaded: set[str]) -> set[str]:
    """Names of parameters shared with a loaded one (tied input/output embeddings)."""
    by_tensor: dict[int, set[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        by_tensor.setdefault(id(param), set()).add(name)
    return {alias for names in by_tensor.values() if names & loaded for alias in names}
