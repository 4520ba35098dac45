"""Integrations of evoembedding: the FAISS store and the framework layers built on it.

* :mod:`.defaults`: the retrieval setting every entry point starts with (the best measured).
* :mod:`.store`: :class:`EvoStore`, the persistent store of many streams (and its records, errors
  and filter language).
* :mod:`.streams`: :class:`~.streams.StreamPool`, the per-stream readers behind the embedders.
* :mod:`.langchain`, :mod:`.llama_index`: one module per framework concept (embeddings, vector
  stores, retrievers, rerankers).
* :mod:`.memory`: :class:`~.memory.EvoAgentMemory`; :mod:`.adapters`: A-MEM, mem0 and LightMem.

Everything is imported on first use (PEP 562), so ``import evoembedding_integrations.store`` does
not import LangChain or LlamaIndex, and ``from evoembedding_integrations import EvoStore`` loads
only the store.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["CorruptStoreError", "EvoStore", "Hit", "ModelMismatchError", "Record", "resolve_model"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module(".store", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
