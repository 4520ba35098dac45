"""The langchain-tests standard suites for EvoEmbeddings, EvoVectorStore and EvoRetriever (nothing xfail)."""

from __future__ import annotations

import pytest
from langchain_tests.integration_tests import (
    EmbeddingsIntegrationTests,
    RetrieversIntegrationTests,
    VectorStoreIntegrationTests,
)
from langchain_tests.unit_tests import EmbeddingsUnitTests

from evoembedding_integrations.langchain import EvoEmbeddings, EvoRetriever, EvoVectorStore


class TestEvoEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self):
        return EvoEmbeddings


class TestEvoEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self):
        return EvoEmbeddings


class TestEvoVectorStorePlain(VectorStoreIntegrationTests):
    """The suite's own deterministic embeddings: EvoVectorStore as a plain, safe FAISS store."""

    @pytest.fixture
    def vectorstore(self):
        return EvoVectorStore(self.get_embeddings())


class TestEvoVectorStoreContextAware(VectorStoreIntegrationTests):
    """The same suite with EvoEmbedding vectors (the default model, per-stream memory)."""

    @pytest.fixture
    def vectorstore(self):
        return EvoVectorStore()


class TestEvoRetriever(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self):
        return EvoRetriever

    @property
    def retriever_constructor_params(self):
        return {
            "texts": [
                "Ana: I grew up in Porto.",
                "Ana: Last spring I moved to Oslo.",
                "Ana: My cat is called Miso.",
                "Ana: I work as a nurse.",
            ]
        }

    @property
    def retriever_query_example(self) -> str:
        return "Where does Ana live now?"
