"""Evaluation harness: benchmark loaders, retrieval systems, rank metrics, reports (``evoembedding eval``)."""

from .conversation import Conversation, Question, Segment
from .loaders import load_benchmark
from .runner import evaluate, evaluate_samples
from .systems import SYSTEMS, build_systems

__all__ = [
    "SYSTEMS",
    "Conversation",
    "Question",
    "Segment",
    "build_systems",
    "evaluate",
    "evaluate_samples",
    "load_benchmark",
]
