"""evoembedding: evolvable, context-aware embeddings (EvoEmbedding) for streams of text.

Imports are lazy (PEP 562): ``import evoembedding_core.validation`` or ``.lexical`` loads neither
torch nor peft; ``from evoembedding_core import EvoEmbeddingModel`` loads the model code on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["EvoEmbeddingClient", "EvoEmbeddingConfig", "EvoEmbeddingModel", "EvoRAGClient", "EvoStream", "__version__"]

_LAZY = {
    "EvoEmbeddingClient": ".client",
    "EvoEmbeddingConfig": ".config",
    "EvoEmbeddingModel": ".model",
    "EvoRAGClient": ".client",
    "EvoStream": ".stream",
}

if TYPE_CHECKING:
    from .client import EvoEmbeddingClient, EvoRAGClient
    from .config import EvoEmbeddingConfig
    from .model import EvoEmbeddingModel
    from .stream import EvoStream


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
