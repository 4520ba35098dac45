"""The trained weights of an :class:`~evoembedding_core.model.EvoEmbeddingModel`: which parameters
they are, writing and reading them, and the fingerprint that identifies a model.

The trained parts are both LoRA adapters, the memory queries and the three heads; the backbone stays
frozen and is never saved. The model's public methods (``fingerprint``, ``save_pretrained``,
``load_trained_weights``) delegate here.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import save_file

from .backbones import weights_digest
from .lora import is_lora_parameter

if TYPE_CHECKING:
    from .model import EvoEmbeddingModel

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
HEAD_NAMES = frozenset({"memory_queries", "latent_to_mem", "mem_to_latent", "mem_to_emb"})
"""Top-level names of the trained parts besides the LoRA weights."""


def is_trainable_name(name: str) -> bool:
    """Whether a parameter name is a trained part (LoRA weights, queries, heads)."""
    return is_lora_parameter(name) or name.split(".")[0] in HEAD_NAMES


def fingerprint(model: EvoEmbeddingModel) -> str:
    """SHA-256 (hex) over the config, the trained weights and :func:`backbone_digest`, cached on the
    model until the config or a weight changes (see ``EvoEmbeddingModel.fingerprint``)."""
    trained, frozen = [], []
    for name, param in model.named_parameters():  # one pass: every stream save and load asks
        (trained if is_trainable_name(name) else frozen).append((name, param))
    trained.sort(key=lambda item: item[0])
    config = json.dumps(model.config.to_dict(), sort_keys=True)
    key = (config, tuple((p.data_ptr(), p._version) for _, p in trained), _frozen_digest(model, frozen))
    if model._fingerprint_cache is None or model._fingerprint_cache[0] != key:
        digest = hashlib.sha256(config.encode())
        for name, param in trained:
            digest.update(name.encode())
            digest.update(param.detach().float().cpu().contiguous().numpy().tobytes())
        digest.update(key[2].encode())
        model._fingerprint_cache = (key, digest.hexdigest())
    return model._fingerprint_cache[1]


def backbone_digest(model: EvoEmbeddingModel) -> str:
    """:func:`~evoembedding_core.backbones.weights_digest` of the model's frozen weights (backbone,
    bundled embedding model) and tokenizer, computed on first use and cached on the model until a
    frozen weight is replaced or changed in place (keyed on ``data_ptr`` and ``_version``)."""
    return _frozen_digest(model, [(n, p) for n, p in model.named_parameters() if not is_trainable_name(n)])


def _frozen_digest(model: EvoEmbeddingModel, frozen: list[tuple[str, torch.Tensor]]) -> str:
    key = tuple((p.data_ptr(), p._version) for _, p in frozen)
    if model._backbone_cache is None or model._backbone_cache[0] != key:
        model._backbone_cache = (key, weights_digest([p for _, p in frozen], model.tokenizer))
    return model._backbone_cache[1]


def save_trained(model: EvoEmbeddingModel, directory: str | Path) -> Path:
    """Write ``config.json`` and ``model.safetensors`` (the trained weights) to ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.config.save(directory / CONFIG_NAME)
    tensors = {n: t.contiguous().cpu() for n, t in model.trainable_state_dict().items()}
    save_file(tensors, directory / WEIGHTS_NAME, metadata={"format": "evoembedding"})
    return directory


def load_trained(model: EvoEmbeddingModel, tensors: dict[str, torch.Tensor]) -> None:
    """Copy trained tensors into ``model``; ``ValueError`` (nothing copied) on a missing,
    unexpected or mis-shaped tensor."""
    own = dict(model.trainable_named_parameters())
    missing, unexpected = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
    if missing or unexpected:
        raise ValueError(f"checkpoint does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for name, param in own.items():
        if tensors[name].shape != param.shape:
            raise ValueError(f"{name}: checkpoint shape {tuple(tensors[name].shape)} != {tuple(param.shape)}")
    with torch.no_grad():
        for name, param in own.items():
            param.copy_(tensors[name])
