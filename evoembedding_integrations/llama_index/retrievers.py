"""EvoRetriever: a LlamaIndex ``BaseRetriever`` over an :class:`~.vector_stores.EvoVectorStore`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.schema import BaseNode, NodeWithScore, QueryBundle
from llama_index.core.vector_stores.types import MetadataFilters, VectorStoreQuery, VectorStoreQueryMode

from evoembedding_core.validation import check_positive_int

from .vector_stores import EvoVectorStore

__all__ = ["EvoRetriever"]


class EvoRetriever(BaseRetriever):
    """Retrieve nodes from an :class:`EvoVectorStore` (a new one on ``model`` when not given).

    Example:
        >>> retriever = EvoRetriever(similarity_top_k=2)                    # doctest: +SKIP
        >>> retriever.add_nodes(nodes)                                      # doctest: +SKIP
        >>> retriever.retrieve("Which pet belongs to Tom?")                 # doctest: +SKIP
    """

    def __init__(
        self,
        vector_store: EvoVectorStore | None = None,
        *,
        model=None,
        similarity_top_k: int = 4,
        doc_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        mode: str = "default",
        **kwargs: Any,
    ) -> None:
        """Create the retriever.

        Args:
            vector_store: The store to search; a new one on ``model`` when ``None``.
            model: The model of a new store (not with ``vector_store``).
            similarity_top_k: How many nodes to return.
            doc_ids: Search only these documents (``None``: all).
            filters: ``MetadataFilters`` applied to every query.
            mode: ``"default"``, ``"mmr"`` or ``"hybrid"``.
            **kwargs: ``BaseRetriever`` arguments (callback manager, ...).

        Raises:
            ValueError: Both ``vector_store`` and ``model`` are given, ``similarity_top_k`` is not a
                positive integer, or ``mode`` is unknown.
        """
        if vector_store is not None and model is not None:
            raise ValueError("pass either vector_store= or model=, not both")
        self.similarity_top_k = check_positive_int(similarity_top_k, "similarity_top_k")
        self.vector_store = vector_store if vector_store is not None else EvoVectorStore(model=model)
        self.doc_ids, self.filters = doc_ids, filters
        self.mode = VectorStoreQueryMode(mode)
        super().__init__(**kwargs)

    def add_nodes(self, nodes: Sequence[BaseNode]) -> list[str]:
        """Read nodes into their documents' streams, in order; returns their ids."""
        return self.vector_store.add(nodes)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        query = VectorStoreQuery(
            query_str=query_bundle.query_str,
            similarity_top_k=self.similarity_top_k,
            doc_ids=self.doc_ids,
            filters=self.filters,
            mode=self.mode,
        )
        result = self.vector_store.query(query)
        return [NodeWithScore(node=n, score=s) for n, s in zip(result.nodes, result.similarities)]
