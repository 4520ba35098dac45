"""Integrations of evoembedding: the shared FAISS store (:mod:`.store`), LangChain (:mod:`.langchain`) and more.

Framework modules are imported on demand (``from evoembedding_integrations.langchain import ...``),
so using the store never imports LangChain or LlamaIndex.
"""

from .store import CorruptStoreError, EvoStore, Hit, ModelMismatchError, Record, resolve_model

__all__ = ["CorruptStoreError", "EvoStore", "Hit", "ModelMismatchError", "Record", "resolve_model"]
