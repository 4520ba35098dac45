"""LangChain integration: embeddings, a vector store, a retriever and a document compressor on EvoEmbedding.

One module per LangChain concept, as in LangChain's partner packages:

* :mod:`.embeddings`: :class:`EvoEmbeddings`, a stateful ``Embeddings`` (one stream per id).
* :mod:`.vectorstores`: :class:`EvoVectorStore`, a ``VectorStore`` on
  :class:`~evoembedding_integrations.store.EvoStore`.
* :mod:`.retrievers`: :class:`EvoRetriever`, a ``BaseRetriever`` over one stream (texts or chat messages).
* :mod:`.document_compressors`: :class:`EvoRerank`, a ``BaseDocumentCompressor`` (the EvoEmbedding reranker).
* :mod:`.stream_keys`: which stream a document is read in (``metadata["stream_id"]``, else the
  stream key, ``metadata["source"]`` by default: one stream per source).

>>> from evoembedding_integrations.langchain import EvoRetriever                         # doctest: +SKIP
>>> EvoRetriever(texts=["Ana grew up in Porto.", "Ana moved to Oslo."], k=1).invoke("Where does Ana live?")
"""

from .document_compressors import EvoRerank
from .embeddings import EvoEmbeddings
from .retrievers import EvoRetriever
from .vectorstores import EvoVectorStore

__all__ = ["EvoEmbeddings", "EvoRerank", "EvoRetriever", "EvoVectorStore"]
