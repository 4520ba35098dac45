"""The quickstart and LangChain RAG examples run end to end (the RAG one with its fake-LLM flag)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quickstart_prints_every_turn_ranked(capsys):
    quickstart = load_example("quickstart")
    hits = quickstart.main([])
    out = capsys.readouterr().out
    assert sorted(h.position for h in hits) == list(range(len(quickstart.CONVERSATION)))
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(text in out for text in quickstart.CONVERSATION) and "rank" in out


def test_langchain_rag_chain_runs_with_the_fake_llm(capsys):
    rag = load_example("langchain_rag")
    answer = rag.main(["--fake-llm"])
    out = capsys.readouterr().out
    assert answer == "(fake LLM) You live in Oslo."
    assert out.count("retrieved (") == 2 and "Q: Which city do I live in now?" in out
