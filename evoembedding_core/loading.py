"""Getting a model: the shipped default, a saved directory, a Hugging Face id, a released checkpoint.

* :func:`resolve_model_dir` turns ``"default"``, a directory or a hub id (``owner/name``, fetched
  with ``huggingface_hub.snapshot_download``) into a local directory;
* :func:`from_pretrained` loads it: our own format directly, other formats through
  :mod:`evoembedding_core.compat` (the released EvoEmbedding checkpoints);
* :func:`default` is the packaged default model;
* :func:`load_model` is the process-wide cache the integrations use, so that every store, embedder
  and retriever asking for the same name shares one model (and its lock).
"""

from __future__ import annotations

import functools
import json
import os
import threading
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from .compat import load_foreign
from .config import EvoEmbeddingConfig
from .model import CONFIG_NAME, DEFAULT_MODEL_DIR, WEIGHTS_NAME, EvoEmbeddingModel

HUB_FILE_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model"]
MODEL_CACHE_SIZE = 8


def resolve_model_dir(name_or_dir: str | Path, *, revision: str | None = None, local_files_only: bool = False) -> Path:
    """A local model directory for ``"default"``, a directory, or a Hugging Face id (``owner/name``).

    Args:
        name_or_dir: ``"default"``, a directory holding ``config.json``, or a hub id.
        revision: Hub revision (branch, tag or commit) for a hub id.
        local_files_only: Use the Hugging Face cache only, without network.

    Returns:
        The directory holding the model's ``config.json``.

    Raises:
        TypeError: ``name_or_dir`` is neither a path nor a string, or is empty.
        FileNotFoundError: The directory does not exist or has no ``config.json``, or the hub id
            cannot be fetched.
        ValueError: ``name_or_dir`` is a file.
    """
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


def from_pretrained(
    name_or_dir: str | Path,
    *,
    cls: type[EvoEmbeddingModel] = EvoEmbeddingModel,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
    **overrides,
) -> EvoEmbeddingModel:
    """Load a saved model, ``"default"``, a Hugging Face id, or a released checkpoint.

    Args:
        name_or_dir: See :func:`resolve_model_dir`.
        cls: The model class to build (a subclass of :class:`EvoEmbeddingModel`).
        device: Where to put the model (default: CUDA when available, else CPU).
        dtype: The backbone's dtype (default: bf16 on CUDA, float32 on CPU).
        revision: Hub revision for a hub id.
        local_files_only: Use the Hugging Face cache only.
        **overrides: Config fields to replace (e.g. ``backbone="/local/copy"``).

    Returns:
        The loaded model, in eval mode.

    Raises:
        FileNotFoundError, TypeError: See :func:`resolve_model_dir`.
        ValueError: The weights are unreadable or do not match the config, or the format is unknown.
    """
    directory = resolve_model_dir(name_or_dir, revision=revision, local_files_only=local_files_only)
    raw = json.loads((directory / CONFIG_NAME).read_text())
    if raw.get("format") != "evoembedding":
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


def default(
    *, cls: type[EvoEmbeddingModel] = EvoEmbeddingModel, device: torch.device | str | None = None, dtype=None
) -> EvoEmbeddingModel:
    """The shipped default model (MiniLM backbone), loaded offline from the package.

    Args:
        cls: The model class to build.
        device: Where to put the model.
        dtype: The backbone's dtype.

    Returns:
        The trained default model; an untrained one (with a warning) when the build ships no weights.
    """
    if not (DEFAULT_MODEL_DIR / WEIGHTS_NAME).is_file():
        warnings.warn(
            "no trained default model is shipped in this build: using an UNTRAINED EvoEmbedding "
            "model on MiniLM (equal to static MiniLM on an empty memory)",
            stacklevel=3,
        )
        return cls(EvoEmbeddingConfig(), device=device, dtype=dtype)
    return from_pretrained(DEFAULT_MODEL_DIR, cls=cls, device=device, dtype=dtype)


@functools.lru_cache(maxsize=MODEL_CACHE_SIZE)
def _cached_model(name: str) -> EvoEmbeddingModel:
    return EvoEmbeddingModel.default() if name == "default" else EvoEmbeddingModel.from_pretrained(name)


_LOAD_LOCK = threading.Lock()


def load_model(model: EvoEmbeddingModel | str | os.PathLike | None = None) -> EvoEmbeddingModel:
    """A model instance, loaded once per name and process, then shared.

    Args:
        model: A model (returned as is), ``None`` (the shipped default), a name or a directory.

    Returns:
        The model; the same instance for every call with the same name (up to
        :data:`MODEL_CACHE_SIZE` names are kept).

    Raises:
        TypeError: ``model`` is none of the above.
    """
    if isinstance(model, EvoEmbeddingModel):
        return model
    if model is None:
        model = "default"
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be an EvoEmbeddingModel, a name or a path, got {type(model).__name__}")
    with _LOAD_LOCK:
        return _cached_model(str(model))
