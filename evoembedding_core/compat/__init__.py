"""Loading checkpoints of other formats as :class:`~evoembedding_core.model.EvoEmbeddingModel`.

Today: the released EvoEmbedding checkpoints (``model_type: "EvoRAG"``), see :mod:`.released`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..model import EvoEmbeddingModel
from .released import is_released_config, load_released

__all__ = ["load_foreign"]


def load_foreign(
    directory: str | Path, raw_config: dict, device=None, dtype: torch.dtype | None = None, **overrides
) -> EvoEmbeddingModel:
    """Load a checkpoint directory whose ``config.json`` is not in our format.

    Args:
        directory: The checkpoint directory.
        raw_config: Its parsed ``config.json``.
        device: Where to put the model.
        dtype: The backbone's dtype.
        **overrides: Config fields to replace.

    Returns:
        The converted model.

    Raises:
        ValueError: The format is not one this library converts (the message names it).
    """
    if is_released_config(raw_config):
        return load_released(Path(directory), raw_config, device=device, dtype=dtype, **overrides)
    kind = raw_config.get("model_type") or raw_config.get("format") or "unknown"
    raise ValueError(
        f"{directory}: config.json is neither an evoembedding model nor a released EvoEmbedding "
        f"checkpoint (model_type 'EvoRAG'); found {kind!r}"
    )
