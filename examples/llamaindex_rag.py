"""Naive RAG with LlamaIndex on EvoEmbedding: VectorStoreIndex + EvoVectorStore + query engine.

Uses SmolLM2-135M-Instruct through transformers when ``llama-index-llms-huggingface`` and the
SmolLM2 weights are available locally; otherwise llama-index's MockLLM (it echoes the prompt, so the
retrieved context is visible) and says so.

    python examples/llamaindex_rag.py
"""

from __future__ import annotations

from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.llms import MockLLM

from evoembedding_integrations.llama_index import EvoRerank, EvoVectorStore

DOCUMENTS = [
    Document(
        text="Ana grew up in Porto. In 2023 she moved to Oslo, where she now works as a nurse.",
        doc_id="ana",
        metadata={"person": "Ana", "year": 2023},
    ),
    Document(
        text="Ben is a chef in Lyon. Every Friday he cooks grilled fish for his neighbours.",
        doc_id="ben",
        metadata={"person": "Ben", "year": 2021},
    ),
    Document(
        text="Chen studies physics in Toronto and plays the cello in a student orchestra.",
        doc_id="chen",
        metadata={"person": "Chen", "year": 2022},
    ),
]
QUESTIONS = ["Which city does Ana live in now?", "What does Ben cook on Fridays?"]


def local_llm():
    """SmolLM2 through transformers if the llama-index HuggingFace LLM and local weights exist, else None."""
    try:
        from llama_index.llms.huggingface import HuggingFaceLLM

        from evoembedding_core.backbones import SMOLLM2, load_backbone

        backbone = load_backbone(SMOLLM2)
        return HuggingFaceLLM(model=backbone.model, tokenizer=backbone.tokenizer, max_new_tokens=48)
    except (ImportError, OSError, ValueError):  # a missing piece: fall back to the mock
        return None


def main(model=None, use_local_llm: bool = True):
    """Build the index, answer the questions; returns [(question, answer, source doc ids)]."""
    llm = local_llm() if use_local_llm else None
    if llm is None:
        print("NOTE: no local LLM (llama-index-llms-huggingface + SmolLM2) available: using llama-index's MockLLM.")
        llm = MockLLM(max_tokens=64)
    vector_store = EvoVectorStore(model=model)
    index = VectorStoreIndex.from_documents(
        DOCUMENTS,
        storage_context=StorageContext.from_defaults(vector_store=vector_store),
        embed_model=vector_store.embed_model,  # the store reads each node once, into its document's stream
    )
    engine = index.as_query_engine(
        llm=llm, similarity_top_k=2, node_postprocessors=[EvoRerank(vector_store.store.model, top_n=1)]
    )
    results = []
    for question in QUESTIONS:
        response = engine.query(question)
        sources = [n.node.ref_doc_id for n in response.source_nodes]
        print(f"Q: {question}\nA: {str(response).strip()[:300]}\n   sources: {sources}")
        results.append((question, str(response), sources))
    return results


if __name__ == "__main__":
    main()
