"""Drop-in adapters that put EvoEmbedding under agent-memory systems people already run.

* :mod:`.amem`: A-MEM (``pip install evoembedding[amem]``, module ``agentic_memory``): a
  ``ChromaRetriever`` replacement.
* :mod:`.mem0`: mem0 (``pip install evoembedding[mem0]``): ``EmbeddingBase`` / ``VectorStoreBase``
  subclasses for a ``Memory``'s ``embedding_model`` / ``vector_store``.
* :mod:`.lightmem`: LightMem-style hooks: an ``embed(text)`` embedder and a retriever with
  ``insert`` / ``search`` / ``exists`` / ``get_all`` / ``update`` / ``delete``.

Each adapter is served by an :class:`~evoembedding_integrations.store.EvoStore` (pass one to share
it, e.g. ``EvoAgentMemory(...).store``, or a new one is made on ``model``). Vectors are always
computed by the store from the text, in stream order; vectors handed in by the host system are
not used (they come from a memory-less embedder). The adapters are translators: updates go through
:meth:`EvoAgentMemory.update <evoembedding_integrations.memory.EvoAgentMemory.update>`, and mem0 /
LightMem filters are rewritten by :mod:`.filters` into the store's filter language. Import an
adapter module only when its package is installed (mem0 and A-MEM are imported lazily).
"""

from __future__ import annotations

from ..store import EvoStore

__all__ = ["resolve_store"]


def resolve_store(store: EvoStore | None, model=None) -> EvoStore:
    """The store an adapter works on.

    Args:
        store: An existing :class:`EvoStore` to share, or ``None``.
        model: The model of a new store (an ``EvoEmbeddingModel``, a name or path; ``None``: the
            shipped default). Not with ``store``.

    Returns:
        ``store`` itself, or a new EvoEmbedding store on ``model``.

    Raises:
        ValueError: Both ``store`` and ``model`` are given.
        TypeError: ``store`` is not an :class:`EvoStore`.
    """
    if store is not None and model is not None:
        raise ValueError("pass either store= or model=, not both")
    if store is None:
        return EvoStore(model)
    if not isinstance(store, EvoStore):
        raise TypeError(f"store must be an EvoStore, got {type(store).__name__}")
    return store
