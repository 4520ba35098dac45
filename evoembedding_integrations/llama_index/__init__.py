"""LlamaIndex integration: an embedder, a vector store, a memory block, a retriever and a reranker on EvoEmbedding.

One module per LlamaIndex concept, as in LlamaIndex's integration packages:

* :mod:`.embeddings`: :class:`EvoEmbedding` (``BaseEmbedding``), one stream per ``ref_doc_id``;
  :class:`EvoStoreEmbedding`, the embed model of indexes on an :class:`EvoVectorStore`
  (``store.embed_model``: it computes nothing, the store reads each node once).
* :mod:`.vector_stores`: :class:`EvoVectorStore` (``BasePydanticVectorStore``) on
  :class:`~evoembedding_integrations.store.EvoStore`: one stream per document, ``doc_ids``,
  ``node_ids``, ``MetadataFilters``, MMR, hybrid, delete, ``get_nodes`` and safe persistence.
* :mod:`.memory`: :class:`EvoMemoryBlock` (``BaseMemoryBlock``), one stream per session (or user).
* :mod:`.filters`: ``MetadataFilters`` translated into the store's filter language.
* :mod:`.retrievers`: :class:`EvoRetriever` (``BaseRetriever``).
* :mod:`.postprocessors`: :class:`EvoRerank` (``BaseNodePostprocessor``).

>>> from llama_index.core import StorageContext, VectorStoreIndex                 # doctest: +SKIP
>>> store = EvoVectorStore()                                                      # doctest: +SKIP
>>> index = VectorStoreIndex.from_documents(
...     docs, storage_context=StorageContext.from_defaults(vector_store=store), embed_model=store.embed_model)
>>> index.as_retriever(similarity_top_k=2).retrieve("Where does Ana live now?")     # doctest: +SKIP
"""

from .embeddings import EvoEmbedding, EvoStoreEmbedding
from .filters import NODE_ID_KEY, compile_metadata_filters, to_store_filter
from .memory import EvoMemoryBlock
from .postprocessors import EvoRerank
from .retrievers import EvoRetriever
from .vector_stores import PERSIST_NAME, EvoVectorStore

__all__ = [
    "NODE_ID_KEY",
    "PERSIST_NAME",
    "EvoEmbedding",
    "EvoMemoryBlock",
    "EvoRerank",
    "EvoRetriever",
    "EvoStoreEmbedding",
    "EvoVectorStore",
    "compile_metadata_filters",
    "to_store_filter",
]
