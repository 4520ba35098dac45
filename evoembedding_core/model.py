"""EvoEmbeddingModel: one frozen backbone, two LoRA adapters, memory queries and three small heads.

Two operations, shared by inference and training:

* ``evolve(memories, segments)`` (adapter ``memory``): the backbone reads
  ``[mem_to_latent(memory); segment; K memory queries]``; the hidden states at the query
  positions go through ``latent_to_mem`` and become the segment's K new latents.
* ``represent(memories, segments)`` (adapter ``retriever``): the backbone reads
  ``[mem_to_latent(memory); segment]``; the pooled segment state goes through ``latent_to_mem``
  and ``mem_to_emb`` and is L2-normalised.

The recurrence that strings these together over a stream lives in :mod:`evoembedding_core.recurrence`.

Initialisation makes an untrained model well defined: LoRA B = 0 (adapters are no-ops), the heads
are *shifted identities* (``latent_to_mem`` adds ``init_shift`` before its ReLU, the following
linear layer removes it), so with an empty memory an untrained model returns exactly the
backbone's pooled embedding (mean-pooled MiniLM = sentence-transformers' all-MiniLM-L6-v2).
"""

from __future__ import annotations

import hashlib
import json
import threading
import warnings
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from peft.tuners.lora import Linear as LoraLinear
from peft.tuners.tuners_utils import BaseTunerLayer
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .backbones import Backbone, default_lora_targets, load_backbone, quiet_loading
from .config import EvoEmbeddingConfig

MEMORY_ADAPTER = "memory"
RETRIEVER_ADAPTER = "retriever"
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
DEFAULT_MODEL_DIR = Path(__file__).parent / "default_model"


class EvoEmbeddingModel(nn.Module):
    """The EvoEmbedding model. Build one from a config, or load one with :meth:`from_pretrained`.

    >>> model = EvoEmbeddingModel.default()            # doctest: +SKIP
    >>> stream = model.stream()                         # doctest: +SKIP
    >>> vectors = stream.add(["I grew up in Porto.", "Now I live in Oslo."])  # doctest: +SKIP
    >>> stream.encode_query("Where do I live now?") @ vectors.T  # doctest: +SKIP
    """

    def __init__(
        self,
        config: EvoEmbeddingConfig,
        *,
        backbone: Backbone | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        backbone = backbone or load_backbone(
            config.backbone,
            gguf_file=config.gguf_file,
            kind=config.backbone_kind,
            device=device,
            dtype=dtype,
            trust_remote_code=config.trust_remote_code,
        )
        self.config = config
        self.kind = backbone.kind
        self.tokenizer = backbone.tokenizer
        self.pooling = config.pooling or ("mean" if self.kind == "encoder" else "last")
        if config.evolution == "packed" and self.kind != "causal":
            raise ValueError("evolution='packed' needs a causal backbone (a query must not see later segments)")
        self.native_encoder: nn.Module | None = None
        """The bundled static embedding model of a released checkpoint (``native`` mode), if any."""
        hidden = backbone.model.config.hidden_size
        out_dim = config.output_dim or hidden
        self._check_positions(backbone.model.config)

        targets = config.lora_target_modules or default_lora_targets(backbone.model, self.kind)
        lora = LoraConfig(
            r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout, target_modules=targets
        )
        with quiet_loading():  # LoRA weights stay float32 even on a bf16 backbone (peft's autocast)
            self.backbone = get_peft_model(backbone.model, lora, adapter_name=MEMORY_ADAPTER)
            self.backbone.add_adapter(RETRIEVER_ADAPTER, lora)
        self._lora_layers = [m for m in self.backbone.modules() if isinstance(m, BaseTunerLayer)]
        self._merged_cache: dict[str, tuple[tuple, list[torch.Tensor]]] = {}
        self._fingerprint_cache: tuple[tuple, str] | None = None
        self.lock = threading.RLock()
        """Held while an adapter is active: the adapter switch is model-wide state, so forwards of one
        model from several threads take turns."""
        self._body = _transformer_body(self.backbone.get_base_model(), self.kind)

        # Queries, heads and memory latents are float32 whatever the backbone's dtype: the heads'
        # shifted identities (x + init_shift - init_shift) would lose x's precision in bf16.
        ref = backbone.model.get_input_embeddings().weight
        self.memory_queries = nn.Parameter(torch.randn(config.num_queries, hidden) * 0.02)
        self.latent_to_mem = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU())
        self.mem_to_latent = nn.Sequential(nn.Linear(hidden, hidden))
        self.mem_to_emb = nn.Sequential(nn.Linear(hidden, out_dim), nn.ReLU(), nn.Linear(out_dim, out_dim))
        self._init_heads(config.init_shift)
        self.to(device=ref.device)
        self.requires_grad_(False)
        for param in self.trainable_parameters():
            param.requires_grad_(True)
        self.eval()

    # ------------------------------------------------------------------ construction helpers
    def _check_positions(self, hf_config) -> None:
        limit = getattr(hf_config, "max_position_embeddings", None)
        cfg = self.config
        if limit:
            need = cfg.capacity + cfg.max_segment_tokens + cfg.num_queries
            if need > limit:
                raise ValueError(
                    f"capacity ({cfg.capacity}) + max_segment_tokens ({cfg.max_segment_tokens}) + num_queries "
                    f"({cfg.num_queries}) = {need} exceeds the backbone's {limit} positions"
                )

    @torch.no_grad()
    def _init_heads(self, shift: float) -> None:
        for layer in (self.latent_to_mem[0], self.mem_to_latent[0], self.mem_to_emb[0], self.mem_to_emb[2]):
            nn.init.eye_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.latent_to_mem[0].bias.fill_(shift)
        self.mem_to_latent[0].bias.fill_(-shift)
        n = min(self.mem_to_emb[2].bias.numel(), self.latent_to_mem[0].bias.numel())
        self.mem_to_emb[2].bias[:n].fill_(-shift)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """LoRA weights of both adapters, the memory queries and the heads (the backbone stays frozen)."""
        return [p for _, p in self.trainable_named_parameters()]

    def trainable_named_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.named_parameters() if _is_trainable_name(n)]

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        return {n: p.detach() for n, p in self.trainable_named_parameters()}

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        return self.memory_queries.device

    @property
    def dtype(self) -> torch.dtype:
        """dtype of the memory latents and heads (float32)."""
        return self.memory_queries.dtype

    @property
    def backbone_dtype(self) -> torch.dtype:
        """dtype the backbone computes in (bf16 on CUDA by default, float32 on CPU)."""
        return self.backbone.get_input_embeddings().weight.dtype

    @property
    def hidden_size(self) -> int:
        return self.memory_queries.shape[1]

    @property
    def output_dim(self) -> int:
        return self.mem_to_emb[2].out_features

    # ------------------------------------------------------------------ tokenising
    def tokenize(self, texts: list[str], *, query: bool = False) -> list[list[int]]:
        """Token ids of each segment (queries get the instruction prefix), truncated to the limit.

        Encoders keep their special tokens ([CLS] ... [SEP]); causal LMs get the EOS token appended.
        Truncation rule: a segment over ``max_segment_tokens`` (special tokens included) keeps its
        first ``max_segment_tokens - 1`` tokens plus the closing [SEP]/EOS, with a warning.
        """
        apart = query and self.config.query_prefix_apart
        if query and not apart:
            texts = [self.config.query_prefix + t for t in texts]
        limit = self.config.max_segment_tokens
        tok = self.tokenizer
        # Tokenise one token past the limit: enough to detect overflow without materialising huge texts.
        if self.kind == "encoder":
            ids = tok(texts, add_special_tokens=True, truncation=True, max_length=limit + 1)["input_ids"]
            tail = [tok.sep_token_id] if tok.sep_token_id is not None else []
        else:
            encoded = tok(texts, add_special_tokens=False, truncation=True, max_length=limit)["input_ids"]
            end = self._segment_end_id()
            head = tok(self.config.query_prefix, add_special_tokens=False)["input_ids"] if apart else []
            ids = [head + seq + [end] for seq in encoded]
            tail = [end]
        long = [i for i, seq in enumerate(ids) if len(seq) > limit]
        for i in long:
            ids[i] = ids[i][: limit - len(tail)] + tail
        if long:
            warnings.warn(
                f"{len(long)} segment(s) longer than max_segment_tokens={limit} were truncated "
                f"(first: #{long[0]}); split long documents into chunks before adding them",
                stacklevel=3,
            )
        return ids

    def _segment_end_id(self) -> int:
        """Id of the token closing every causal segment (``segment_end_token``, default EOS)."""
        token = self.config.segment_end_token
        if token is None:
            return self.tokenizer.eos_token_id
        token_id = self.tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == self.tokenizer.unk_token_id:
            raise ValueError(f"segment_end_token {token!r} is not in the tokenizer's vocabulary")
        return token_id

    # ------------------------------------------------------------------ the two operations
    def evolve(self, memories: list[torch.Tensor], segments: list[list[int]]) -> torch.Tensor:
        """K new latents per segment, each segment read over its memory: returns (n, K, D)."""
        hidden, _ = self._encode_rows(MEMORY_ADAPTER, memories, segments, with_queries=True)
        k = self.config.num_queries
        return self.latent_to_mem(hidden[:, -k:, :].to(self.dtype))

    def evolve_packed(self, memory: torch.Tensor, segments: list[list[int]]) -> torch.Tensor:
        """K new latents per segment from ONE causal row ``[mem_to_latent(memory); seg1; queries;
        seg2; queries; ...]`` (``evolution="packed"``): segment t's queries see the memory and
        segments 1..t, never later ones. Returns (n, K, D)."""
        if self.kind != "causal":
            raise ValueError("packed evolution needs a causal backbone")
        k = self.config.num_queries
        embed = self.backbone.get_input_embeddings()
        compute = embed.weight.dtype
        tokens = embed(torch.tensor([t for s in segments for t in s], device=self.device)).split(
            [len(s) for s in segments]
        )
        parts = [self.mem_to_latent(memory).to(compute)] if memory.shape[0] else []
        query_ends, offset = [], memory.shape[0]
        for segment in tokens:
            parts += [segment, self.memory_queries.to(compute)]
            offset += segment.shape[0] + k
            query_ends.append(offset)
        row = torch.cat(parts).unsqueeze(0)
        positions = torch.arange(row.shape[1], device=self.device).unsqueeze(0)
        mask = torch.ones_like(positions)
        with self.adapter(MEMORY_ADAPTER):
            hidden = self._body(inputs_embeds=row, attention_mask=mask, position_ids=positions).last_hidden_state[0]
        at = torch.stack([torch.arange(end - k, end, device=self.device) for end in query_ends])
        return self.latent_to_mem(hidden[at].to(self.dtype))

    def represent_native(self, segments: list[list[int]]) -> torch.Tensor:
        """Static vectors from the bundled embedding model (``native`` mode): the last token's
        state of each left-padded row, L2-normalised. Returns (n, output_dim)."""
        if self.native_encoder is None:
            raise ValueError("native mode needs a released checkpoint that bundles an embedding model (emb_model)")
        width = max(len(s) for s in segments)
        ids = torch.zeros(len(segments), width, dtype=torch.long, device=self.device)
        mask = torch.zeros_like(ids)
        for row, segment in enumerate(segments):
            ids[row, width - len(segment) :] = torch.tensor(segment, device=self.device)
            mask[row, width - len(segment) :] = 1
        inputs = self.native_encoder.get_input_embeddings()(ids) * mask.unsqueeze(-1)
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        out = self.native_encoder(inputs_embeds=inputs, attention_mask=mask, position_ids=positions)
        return F.normalize(out.last_hidden_state[:, -1, :].float(), dim=-1)

    def represent(self, memories: list[torch.Tensor], segments: list[list[int]]) -> torch.Tensor:
        """L2-normalised vector per segment, each read over its memory: returns (n, output_dim)."""
        hidden, segment_mask = self._encode_rows(RETRIEVER_ADAPTER, memories, segments, with_queries=False)
        vectors = self.mem_to_emb(self.latent_to_mem(self.pool(hidden, segment_mask)))
        return F.normalize(vectors.float(), dim=-1)

    def pool(self, hidden: torch.Tensor, segment_mask: torch.Tensor) -> torch.Tensor:
        """Pooled segment state per row (the model's ``pooling``): (n, T, D) -> (n, D), in :attr:`dtype`."""
        hidden = hidden.to(self.dtype)
        if self.pooling == "last":
            return hidden[:, -1, :]
        # where(), not a product: padding positions may hold NaN (fully masked rows)
        summed = torch.where(segment_mask.unsqueeze(-1), hidden, 0.0).sum(1)
        return summed / segment_mask.sum(1, keepdim=True)

    def static_vectors(self, segments: list[list[int]]) -> torch.Tensor:
        """The frozen backbone's own L2-normalised pooled vectors (adapters off, no memory, no heads),
        without autograd: what a static embedder makes of the same tokens. Returns (n, hidden_size)."""
        with torch.no_grad():
            hidden, mask = self._encode_rows(None, [self.empty_memory()] * len(segments), segments, with_queries=False)
            return F.normalize(self.pool(hidden, mask).float(), dim=-1)

    def empty_memory(self) -> torch.Tensor:
        return torch.zeros(0, self.hidden_size, device=self.device, dtype=self.dtype)

    def _encode_rows(
        self, adapter: str, memories: list[torch.Tensor], segments: list[list[int]], *, with_queries: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the backbone over left-padded rows ``[mem_to_latent(memory); segment; (queries)]``.

        Returns the last hidden states (n, T, D) and a mask (n, T) of each row's segment tokens.
        Position ids count only real tokens, so padding never shifts a row's positions.
        """
        if len(memories) != len(segments) or not segments:
            raise ValueError(f"one memory per segment is required (got {len(memories)} and {len(segments)})")
        k = self.config.num_queries if with_queries else 0
        embed = self.backbone.get_input_embeddings()
        lengths = [m.shape[0] + len(s) + k for m, s in zip(memories, segments)]
        width = max(lengths)
        flat_ids = torch.tensor([t for s in segments for t in s], device=self.device)
        token_embeds = embed(flat_ids).split([len(s) for s in segments])
        # One batched head call for all memories (rows often share theirs).
        compute = embed.weight.dtype
        latents = self.mem_to_latent(torch.cat(memories)).to(compute) if sum(m.shape[0] for m in memories) else None
        latent_rows = latents.split([m.shape[0] for m in memories]) if latents is not None else [None] * len(memories)
        rows, masks, seg_masks = [], [], []
        for latent, tokens, length, seg in zip(latent_rows, token_embeds, lengths, segments):
            pad = width - length
            parts = [tokens.new_zeros(pad, self.hidden_size)]
            if latent is not None:
                parts.append(latent)
            parts.append(tokens)
            if k:
                parts.append(self.memory_queries.to(compute))
            rows.append(torch.cat(parts))
            mask = torch.zeros(width, dtype=torch.long, device=self.device)
            mask[pad:] = 1
            masks.append(mask)
            seg_mask = torch.zeros(width, dtype=torch.bool, device=self.device)
            seg_mask[width - k - len(seg) : width - k] = True
            seg_masks.append(seg_mask)
        inputs = torch.stack(rows)
        attention_mask = torch.stack(masks)
        position_ids = (attention_mask.cumsum(1) - 1).clamp(min=0)
        with self.adapter(adapter):
            out = self._body(inputs_embeds=inputs, attention_mask=attention_mask, position_ids=position_ids)
        return out.last_hidden_state, torch.stack(seg_masks)

    @contextmanager
    def adapter(self, name: str | None):
        """Activate one LoRA adapter (``None``: none) without touching ``requires_grad``.

        Holds :attr:`lock` meanwhile, so concurrent users of one model never see each other's adapter.
        Without autograd (inference) the adapter runs merged: each LoRA linear becomes one matmul
        with ``W + B A * scaling`` (cached per adapter until a weight changes), instead of the base
        matmul plus two thin LoRA matmuls, a scale and an add over every token.
        """
        with self.lock:
            previous = [
                (layer._active_adapter, layer._disable_adapters, layer.__dict__.get("forward"))
                for layer in self._lora_layers
            ]
            merged = self._merged_weights(name) if name is not None else None
            for layer in self._lora_layers:
                layer._disable_adapters = name is None
                if name is not None:
                    layer._active_adapter = [name]
            for layer, weight in zip(self._lora_layers, merged or ()):
                layer.forward = partial(F.linear, weight=weight, bias=layer.base_layer.bias)
            try:
                yield
            finally:
                for layer, (active, disabled, forward) in zip(self._lora_layers, previous):
                    layer._active_adapter, layer._disable_adapters = active, disabled
                    if forward is None:
                        layer.__dict__.pop("forward", None)
                    else:
                        layer.forward = forward

    def _merged_weights(self, name: str) -> list[torch.Tensor] | None:
        """Per LoRA layer, its base weight with adapter ``name`` merged in (summed in float32, stored
        in the layer's dtype); ``None`` when merging is not exact or not allowed (autograd on,
        dropout active, non-plain-LoRA layers)."""
        if torch.is_grad_enabled() or self.training or not self._lora_layers:
            return None
        if not all(_plain_lora(layer, name) for layer in self._lora_layers):
            return None
        key = tuple(
            (t.data_ptr(), t._version)
            for layer in self._lora_layers
            for t in (layer.base_layer.weight, layer.lora_A[name].weight, layer.lora_B[name].weight)
        )
        cached = self._merged_cache.get(name)
        if cached is None or cached[0] != key:
            with torch.no_grad():
                weights = [_merged_weight(layer, name) for layer in self._lora_layers]
            cached = self._merged_cache[name] = (key, weights)
        return cached[1]

    # ------------------------------------------------------------------ streams
    def stream(self) -> "EvoStream":
        """A new, empty stream over this model."""
        from .stream import EvoStream

        return EvoStream(self)

    # ------------------------------------------------------------------ persistence
    def fingerprint(self) -> str:
        """SHA-256 over the config and the trained weights: identifies the model a store was built with.

        Cached until the config or a trained weight changes (every stream save and load asks for it).
        """
        config = json.dumps(self.config.to_dict(), sort_keys=True)
        named = sorted(self.trainable_named_parameters())
        key = (config, tuple((p.data_ptr(), p._version) for _, p in named))
        if self._fingerprint_cache is None or self._fingerprint_cache[0] != key:
            digest = hashlib.sha256(config.encode())
            for name, param in named:
                digest.update(name.encode())
                digest.update(param.detach().float().cpu().contiguous().numpy().tobytes())
            self._fingerprint_cache = (key, digest.hexdigest())
        return self._fingerprint_cache[1]

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (adapters, queries, heads; no backbone)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.config.save(directory / CONFIG_NAME)
        tensors = {n: t.contiguous().cpu() for n, t in self.trainable_state_dict().items()}
        save_file(tensors, directory / WEIGHTS_NAME, metadata={"format": "evoembedding"})
        return directory

    def load_trained_weights(self, tensors: dict[str, torch.Tensor]) -> None:
        """Copy trained tensors in, refusing missing, unexpected or mis-shaped ones."""
        own = dict(self.trainable_named_parameters())
        missing, unexpected = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
        if missing or unexpected:
            raise ValueError(f"checkpoint does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
        with torch.no_grad():
            for name, param in own.items():
                if tensors[name].shape != param.shape:
                    raise ValueError(f"{name}: checkpoint shape {tuple(tensors[name].shape)} != {tuple(param.shape)}")
                param.copy_(tensors[name])

    @classmethod
    def from_pretrained(
        cls,
        name_or_dir: str | Path,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        **overrides,
    ) -> "EvoEmbeddingModel":
        """Load a model saved by :meth:`save_pretrained`, ``"default"``, or a Hugging Face id.

        A hub id is fetched with ``huggingface_hub.snapshot_download`` (config, safetensors and
        tokenizer files only) into the Hugging Face cache; ``local_files_only=True`` (or
        ``HF_HUB_OFFLINE=1``) uses the cache without network. ``overrides`` replace config fields
        (e.g. ``backbone="/local/copy"`` when the original backbone path is not available here).
        """
        directory = _resolve_model_dir(name_or_dir, revision=revision, local_files_only=local_files_only)
        raw = json.loads((directory / CONFIG_NAME).read_text())
        if raw.get("format") != "evoembedding":
            from .compat import load_foreign

            return load_foreign(directory, raw, device=device, dtype=dtype, **overrides)
        # Running a backbone's own code is the caller's decision: a config file cannot grant it to itself.
        config = EvoEmbeddingConfig.from_dict({**raw, "trust_remote_code": False, **overrides})
        try:
            tensors = load_file(directory / WEIGHTS_NAME)
        except SafetensorError as exc:
            raise ValueError(f"{directory / WEIGHTS_NAME} is not a valid safetensors file ({exc})") from None
        model = cls(config, device=device, dtype=dtype)
        model.load_trained_weights(tensors)
        return model

    @classmethod
    def default(cls, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        """The shipped default model (MiniLM backbone), loaded offline from the package."""
        if not (DEFAULT_MODEL_DIR / WEIGHTS_NAME).is_file():
            warnings.warn(
                "no trained default model is shipped in this build: using an UNTRAINED EvoEmbedding "
                "model on MiniLM (equal to static MiniLM on an empty memory)",
                stacklevel=2,
            )
            return cls(EvoEmbeddingConfig(), device=device, dtype=dtype)
        return cls.from_pretrained(DEFAULT_MODEL_DIR, device=device, dtype=dtype)


def _is_trainable_name(name: str) -> bool:
    return "lora_" in name or name.split(".")[0] in {"memory_queries", "latent_to_mem", "mem_to_latent", "mem_to_emb"}


_FLOATS = (torch.float32, torch.bfloat16, torch.float16)


def _plain_lora(layer: nn.Module, name: str) -> bool:
    """A vanilla LoRA ``Linear`` over a float ``nn.Linear``: merging it changes only float rounding
    (in float32; over a bfloat16/float16 backbone, one rounding of the summed weight)."""
    return (
        isinstance(layer, LoraLinear)
        and isinstance(layer.base_layer, nn.Linear)
        and name in layer.lora_A
        and name not in layer.lora_variant
        and not layer.fan_in_fan_out
        and layer.base_layer.weight.dtype in _FLOATS
        and layer.lora_A[name].weight.dtype in _FLOATS  # peft keeps adapters in float32 over a bf16 base
    )


def _merged_weight(layer: LoraLinear, name: str) -> torch.Tensor:
    """``W + B A * scaling`` of one LoRA layer, summed in float32, in the base weight's dtype."""
    base = layer.base_layer.weight
    delta = (layer.lora_B[name].weight.float() @ layer.lora_A[name].weight.float()) * layer.scaling[name]
    return (base.float() + delta).to(base.dtype)


def _transformer_body(model: nn.Module, kind: str) -> nn.Module:
    """The module that maps input embeddings to last hidden states (no LM head)."""
    if kind == "causal":
        return model.get_decoder()
    return model


HUB_FILE_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model"]


def _resolve_model_dir(name_or_dir: str | Path, *, revision: str | None = None, local_files_only: bool = False) -> Path:
    """A local model directory for ``"default"``, a directory, or a Hugging Face id (``owner/name``)."""
    if not isinstance(name_or_dir, (str, Path)) or not str(name_or_dir).strip():
        raise TypeError(f"model must be a directory path or a Hugging Face id, got {name_or_dir!r}")
    if str(name_or_dir) == "default":
        return DEFAULT_MODEL_DIR
    path = Path(name_or_dir).expanduser()
    if path.is_dir():
        if not (path / CONFIG_NAME).is_file():
            raise FileNotFoundError(f"{path} has no {CONFIG_NAME}: not a saved model directory")
        return path
    if path.exists():
        raise ValueError(f"{path} is a file; pass the model directory")
    name = str(name_or_dir)
    if isinstance(name_or_dir, Path) or name.startswith((".", "/", "~")) or name.count("/") != 1:
        raise FileNotFoundError(f"model directory {name!r} does not exist (and is not a Hugging Face id owner/name)")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        snapshot = snapshot_download(
            name, revision=revision, allow_patterns=HUB_FILE_PATTERNS, local_files_only=local_files_only
        )
    except (LocalEntryNotFoundError, HfHubHTTPError) as exc:
        raise FileNotFoundError(f"could not get model {name!r} from the Hugging Face hub or its cache: {exc}") from exc
    if not (Path(snapshot) / CONFIG_NAME).is_file():
        raise FileNotFoundError(f"hub model {name!r} has no {CONFIG_NAME}")
    return Path(snapshot)
