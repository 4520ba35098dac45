"""EvoRerank: the EvoEmbedding reranker as a LlamaIndex ``BaseNodePostprocessor``.

A thin wrapper over :func:`evoembedding_core.rerank.rerank`: the candidate nodes are read in the
given order by a fresh stream, then ranked against the query encoded with the memory they leave.
"""

from __future__ import annotations

import os
from typing import Any

from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle
from pydantic import Field, PrivateAttr

from evoembedding_core import EvoEmbeddingModel
from evoembedding_core.rerank import rerank
from evoembedding_core.validation import validate_texts

from ..store import resolve_model

__all__ = ["EvoRerank"]


class EvoRerank(BaseNodePostprocessor):
    """Rerank candidate nodes: read them in the given order, then rank by the query against that memory.

    Example:
        >>> index.as_query_engine(node_postprocessors=[EvoRerank(top_n=2)])   # doctest: +SKIP
    """

    top_n: int = Field(default=4, ge=1, description="How many nodes to keep.")
    _model: EvoEmbeddingModel = PrivateAttr()

    def __init__(self, model: EvoEmbeddingModel | str | os.PathLike | None = None, **kwargs: Any) -> None:
        """Create the reranker.

        Args:
            model: An ``EvoEmbeddingModel``, a name or path, or ``None`` for the shipped default.
            **kwargs: Fields (``top_n``).
        """
        super().__init__(**kwargs)
        self._model = resolve_model(model)

    @classmethod
    def class_name(cls) -> str:
        return "EvoRerank"

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        if query_bundle is None:
            raise ValueError("EvoRerank needs the query (query_bundle or query_str)")
        if not nodes:
            return []
        texts = validate_texts([n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes], "node texts")
        ranked = rerank(self._model, query_bundle.query_str, texts, top_k=self.top_n)
        return [NodeWithScore(node=nodes[i].node, score=score) for i, score in ranked]
