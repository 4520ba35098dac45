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

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from . import weights as _weights
from .backbones import (
    Backbone,
    default_lora_targets,
    last_token_vectors,
    load_backbone,
    tokenize_segments,
    transformer_body,
)
from .config import EvoEmbeddingConfig
from .lora import MEMORY_ADAPTER, RETRIEVER_ADAPTER, LoraAdapters
from .weights import CONFIG_NAME, HEAD_NAMES, WEIGHTS_NAME, is_trainable_name  # noqa: F401 - kept importable here

if TYPE_CHECKING:
    from .stream import EvoStream

DEFAULT_MODEL_DIR = Path(__file__).parent / "default_model"


class EvoEmbeddingModel(nn.Module):
    """The EvoEmbedding model. Build one from a config, or load one with :meth:`from_pretrained`.

    Args:
        config: The hyper-parameters (backbone, memory size, LoRA rank, chunking).
        backbone: An already loaded backbone (default: load ``config.backbone``).
        device: Where to put the model (default: CUDA when available, else CPU).
        dtype: The backbone's dtype (default: bf16 on CUDA, float32 on CPU); adapters, queries,
            heads and memory stay float32.

    Raises:
        ValueError: The config does not fit the backbone (positions, packed evolution on an encoder).

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
        config.check_position_budget(getattr(backbone.model.config, "max_position_embeddings", None))

        self.adapters = LoraAdapters(
            backbone.model,
            target_modules=config.lora_target_modules or default_lora_targets(backbone.model, self.kind),
            r=config.lora_r,
            alpha=config.lora_alpha,
            dropout=config.lora_dropout,
        )
        """The two LoRA adapters (switching and merged weights live in :mod:`evoembedding_core.lora`)."""
        self.backbone = self.adapters.model
        self.lock = self.adapters.lock
        """Held while an adapter is active: the adapter switch is model-wide state, so forwards of one
        model from several threads take turns."""
        self._fingerprint_cache: tuple[tuple, str] | None = None
        self._backbone_cache: tuple[tuple, str] | None = None
        self._body = transformer_body(self.backbone.get_base_model(), self.kind)

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
        """``(name, parameter)`` of :meth:`trainable_parameters`, in registration order."""
        return [(n, p) for n, p in self.named_parameters() if is_trainable_name(n)]

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The trained tensors by name (detached): what :meth:`save_pretrained` writes."""
        return {n: p.detach() for n, p in self.trainable_named_parameters()}

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        """Device of the model's parameters."""
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
        """Width D of the backbone's hidden states and of the memory latents."""
        return self.memory_queries.shape[1]

    @property
    def output_dim(self) -> int:
        """Size of the output vectors."""
        return self.mem_to_emb[2].out_features

    # ------------------------------------------------------------------ tokenising
    def tokenize(self, texts: list[str], *, query: bool = False) -> list[list[int]]:
        """Token ids of each segment, truncated to ``max_segment_tokens`` (with a warning).

        Args:
            texts: The segments (already validated).
            query: Put the config's ``query_prefix`` before each text.

        Returns:
            One list of token ids per text (see :func:`~evoembedding_core.backbones.tokenize_segments`).
        """
        cfg = self.config
        return tokenize_segments(
            self.tokenizer,
            self.kind,
            texts,
            limit=cfg.max_segment_tokens,
            prefix=cfg.query_prefix if query else "",
            prefix_apart=cfg.query_prefix_apart,
            end_token=cfg.segment_end_token,
        )

    # ------------------------------------------------------------------ the two operations
    def evolve(self, memories: list[torch.Tensor], segments: list[list[int]]) -> torch.Tensor:
        """K new latents per segment, each segment read over its memory (adapter ``memory``).

        Args:
            memories: One (m_i, D) memory per segment.
            segments: Token ids of each segment.

        Returns:
            The new latents, (n, K, D).
        """
        hidden, _ = self._encode_rows(MEMORY_ADAPTER, memories, segments, with_queries=True)
        k = self.config.num_queries
        return self.latent_to_mem(hidden[:, -k:, :].to(self.dtype))

    def evolve_packed(self, memory: torch.Tensor, segments: list[list[int]]) -> torch.Tensor:
        """K new latents per segment from ONE causal row (``evolution="packed"``).

        The row is ``[mem_to_latent(memory); seg1; queries; seg2; queries; ...]``: segment t's
        queries see the memory and segments 1..t, never later ones.

        Args:
            memory: The (m, D) memory the chunk starts from.
            segments: Token ids of the chunk's segments, in order.

        Returns:
            The new latents, (n, K, D).

        Raises:
            ValueError: The backbone is not causal.
        """
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
        """Static vectors from the bundled embedding model of a released checkpoint (``native`` mode).

        Args:
            segments: Token ids of each segment.

        Returns:
            The last token's state of each left-padded row, L2-normalised: (n, output_dim).

        Raises:
            ValueError: The model has no bundled embedding model.
        """
        if self.native_encoder is None:
            raise ValueError("native mode needs a released checkpoint that bundles an embedding model (emb_model)")
        return last_token_vectors(self.native_encoder, segments)

    def represent(self, memories: list[torch.Tensor], segments: list[list[int]]) -> torch.Tensor:
        """L2-normalised vector per segment, each read over its memory (adapter ``retriever``).

        Args:
            memories: One (m_i, D) memory per segment.
            segments: Token ids of each segment.

        Returns:
            The vectors, (n, output_dim), float32.
        """
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
        """A (0, D) memory on the model's device and dtype."""
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
        cols = torch.arange(width, device=self.device)
        pads = torch.tensor([width - n for n in lengths], device=self.device)
        starts = width - k - torch.tensor([len(s) for s in segments], device=self.device)
        attention_mask = (cols >= pads[:, None]).long()
        segment_mask = (cols >= starts[:, None]) & (cols < width - k)
        queries = [self.memory_queries.to(compute)] if k else []
        rows = []
        for latent, tokens, pad in zip(latent_rows, token_embeds, pads.tolist()):
            memory = [latent] if latent is not None else []
            rows.append(torch.cat([tokens.new_zeros(pad, self.hidden_size), *memory, tokens, *queries]))
        inputs = torch.stack(rows)
        position_ids = (attention_mask.cumsum(1) - 1).clamp(min=0)
        with self.adapter(adapter):
            out = self._body(inputs_embeds=inputs, attention_mask=attention_mask, position_ids=position_ids)
        return out.last_hidden_state, segment_mask

    @contextmanager
    def adapter(self, name: str | None) -> Iterator[None]:
        """Activate one LoRA adapter (``None``: none) without touching ``requires_grad``.

        Holds :attr:`lock` meanwhile, so concurrent users of one model never see each other's adapter.
        Without autograd (inference) the adapter runs merged (see :mod:`evoembedding_core.lora`).

        Args:
            name: ``"memory"``, ``"retriever"`` or ``None`` (the bare backbone).
        """
        with self.lock:
            merged = self._merged_weights(name) if name is not None else None
            with self.adapters.activate(name, merged=merged):
                yield

    def _merged_weights(self, name: str) -> list[torch.Tensor] | None:
        """Adapter ``name`` merged into each LoRA layer's weight, or ``None`` to run peft's LoRA."""
        return self.adapters.merged_weights(name, training=self.training)

    # ------------------------------------------------------------------ streams
    def stream(self) -> EvoStream:
        """A new, empty stream over this model.

        Returns:
            An :class:`~evoembedding_core.stream.EvoStream` with an empty memory.
        """
        # Lazy: stream.py sits above model.py in the layering (it imports this module).
        from .stream import EvoStream

        return EvoStream(self)

    # ------------------------------------------------------------------ persistence
    def fingerprint(self) -> str:
        """Identify the model a store or a stream state was built with.

        Returns:
            SHA-256 (hex) over the config, the trained weights and :meth:`backbone_digest`; cached
            until the config or a weight changes (every stream save and load asks for it).
        """
        return _weights.fingerprint(self)

    def backbone_digest(self) -> str:
        """Identify the frozen weights actually loaded (backbone, bundled embedding model) and the
        tokenizer's vocabulary, so a backbone replaced at the same path changes :meth:`fingerprint`.

        Returns:
            See :func:`~evoembedding_core.backbones.weights_digest`; computed on first use and cached
            until a frozen weight is replaced or changed in place.
        """
        return _weights.backbone_digest(self)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (adapters, queries, heads; no backbone).

        Args:
            directory: The target directory (created if needed).

        Returns:
            The directory.
        """
        return _weights.save_trained(self, directory)

    def load_trained_weights(self, tensors: dict[str, torch.Tensor]) -> None:
        """Copy trained tensors into the model.

        Args:
            tensors: Tensors by parameter name, as from :meth:`trainable_state_dict`.

        Raises:
            ValueError: A tensor is missing, unexpected or mis-shaped (nothing is copied then).
        """
        _weights.load_trained(self, tensors)

    # ------------------------------------------------------------------ loading (see loading.py)
    # Lazy imports: loading.py sits above model.py in the layering; these are public conveniences.
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
    ) -> EvoEmbeddingModel:
        """Load a model saved by :meth:`save_pretrained`, ``"default"``, a Hugging Face id, or a
        released EvoEmbedding checkpoint.

        Args, Returns, Raises: as :func:`evoembedding_core.loading.from_pretrained`; ``overrides``
        replace config fields (e.g. ``backbone="/local/copy"``), ``local_files_only=True`` uses the
        Hugging Face cache without network.
        """
        from .loading import from_pretrained

        options = dict(device=device, dtype=dtype, revision=revision, local_files_only=local_files_only)
        return from_pretrained(name_or_dir, cls=cls, **options, **overrides)

    @classmethod
    def default(cls, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        """The shipped default model (MiniLM backbone), loaded offline from the package.

        Args:
            device: Where to put the model.
            dtype: The backbone's dtype.

        Returns:
            The trained default model (an untrained one, with a warning, if the build ships none).
        """
        from .loading import default

        return default(cls=cls, device=device, dtype=dtype)
