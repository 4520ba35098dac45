"""Evaluation harness: benchmark loaders, retrieval systems, rank metrics, reports (``evoembedding eval``).

Imports are lazy (PEP 562): ``evoembedding eval --help`` and :mod:`.names` load no torch; the
names below load their module on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

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

_LAZY = {
    "SYSTEMS": ".names",
    "Conversation": ".conversation",
    "Question": ".conversation",
    "Segment": ".conversation",
    "build_systems": ".systems",
    "evaluate": ".runner",
    "evaluate_samples": ".runner",
    "load_benchmark": ".loaders",
}

if TYPE_CHECKING:
    from .conversation import Conversation, Question, Segment
    from .loaders import load_benchmark
    from .names import SYSTEMS
    from .runner import evaluate, evaluate_samples
    from .systems import build_systems


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
