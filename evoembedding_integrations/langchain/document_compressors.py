"""EvoRerank: the EvoEmbedding reranker as a LangChain ``BaseDocumentCompressor``.

A thin wrapper over :func:`evoembedding_core.rerank.rerank`: the candidates are read in the given
order by a fresh stream, then ranked against the query encoded with the memory they leave. Use it in
a ``ContextualCompressionRetriever`` or in any chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import ConfigDict, Field

from evoembedding_core.rerank import rerank
from evoembedding_core.validation import validate_texts

from ..store import resolve_model

__all__ = ["EvoRerank"]


class EvoRerank(BaseDocumentCompressor):
    """Rerank candidate documents the EvoEmbedding way: read them in order, then rank by the query.

    Each returned document is a copy carrying ``relevance_score`` (cosine) in its metadata.

    Example:
        >>> from langchain_classic.retrievers import ContextualCompressionRetriever  # doctest: +SKIP
        >>> ContextualCompressionRetriever(base_compressor=EvoRerank(top_n=2), base_retriever=...)  # doctest: +SKIP
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: Any = None
    """An ``EvoEmbeddingModel``, a name or path, or ``None`` for the default model."""
    top_n: int | None = Field(default=3, ge=1)
    """How many documents to keep (``None``: all, reordered)."""

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        """Rank the documents for ``query`` and keep the ``top_n`` best.

        Args:
            documents: The candidates, in the order they are read.
            query: The query.
            callbacks: Ignored.

        Returns:
            Copies of the best documents, best first, with ``relevance_score`` in their metadata.

        Raises:
            TypeError: ``query`` or a document's ``page_content`` is not a string.
            ValueError: ``query`` or a document's ``page_content`` is empty.
        """
        if not documents:
            return []
        texts = validate_texts([d.page_content for d in documents], "documents' page_content")
        ranked = rerank(resolve_model(self.model), query, texts, top_k=self.top_n)
        return [
            documents[i].model_copy(update={"metadata": {**documents[i].metadata, "relevance_score": score}})
            for i, score in ranked
        ]
