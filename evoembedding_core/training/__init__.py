"""Training EvoEmbedding models: EvoTrain data, the two losses, a resumable trainer, the CLI.

Imports are lazy (PEP 562): ``evoembedding train --help`` and ``synth`` load neither torch nor
numpy; the names below load their module on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__all__ = [
    "LoadedData",
    "TokenizedSample",
    "TrainConfig",
    "TrainSample",
    "Trainer",
    "contrastive_loss",
    "evidence_rank",
    "load_samples",
    "parse_sample",
    "read_log",
    "tokenize_samples",
]

_LAZY = {
    "LoadedData": ".data",
    "TokenizedSample": ".data",
    "TrainSample": ".data",
    "load_samples": ".data",
    "parse_sample": ".data",
    "tokenize_samples": ".data",
    "contrastive_loss": ".losses",
    "evidence_rank": ".losses",
    "TrainConfig": ".trainer",
    "Trainer": ".trainer",
    "read_log": ".trainer",
}

if TYPE_CHECKING:
    from .data import LoadedData, TokenizedSample, TrainSample, load_samples, parse_sample, tokenize_samples
    from .losses import contrastive_loss, evidence_rank
    from .trainer import TrainConfig, Trainer, read_log


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
