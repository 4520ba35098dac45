"""Training EvoEmbedding models: EvoTrain data, the two losses, a resumable trainer, the CLI."""

from .data import LoadedData, TokenizedSample, TrainSample, load_samples, parse_sample, tokenize_samples
from .losses import contrastive_loss, evidence_rank
from .trainer import TrainConfig, Trainer, read_log

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
