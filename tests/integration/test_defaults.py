"""Every entry point starts with the one default retrieval setting of ``evoembedding_integrations.defaults``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from evoembedding_core.cli import build_parser
from evoembedding_integrations import defaults
from evoembedding_integrations.adapters import resolve_store
from evoembedding_integrations.langchain import EvoEmbeddings
from evoembedding_integrations.langchain import EvoVectorStore as LangChainStore
from evoembedding_integrations.langgraph import EvoLangGraphStore
from evoembedding_integrations.llama_index import EvoVectorStore as LlamaIndexStore
from evoembedding_integrations.memory import EvoAgentMemory
from evoembedding_integrations.store import EvoStore

DEFAULT = (defaults.QUERY_MEMORY, defaults.HYBRID)
ROOT = Path(__file__).resolve().parents[2]


def setting(store: EvoStore) -> tuple[bool, bool]:
    return store.query_memory, store.hybrid


def test_the_default_is_the_best_measured_setting_and_the_readme_says_which():
    # questions over an empty memory, fused with BM25: the best row of docs/eval/v4
    assert DEFAULT == (False, True)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = re.search(r"EvoStore\(\)  # = EvoStore\(query_memory=(\w+), hybrid=(\w+)\)", readme)
    assert shown and shown.groups() == (str(defaults.QUERY_MEMORY), str(defaults.HYBRID))


def test_every_store_entry_point_starts_with_it(minilm_model, tmp_path):
    assert setting(EvoStore(minilm_model)) == DEFAULT
    assert setting(EvoStore(embeddings=lambda texts: [[1.0, 0.0]] * len(texts))) == DEFAULT
    durable = EvoStore(minilm_model, path=tmp_path / "d")
    durable.add(["Ana moved to Oslo."])
    durable.close()
    assert setting(EvoStore.open(tmp_path / "d", minilm_model)) == DEFAULT
    assert setting(EvoStore.load(tmp_path / "d", minilm_model)) == DEFAULT
    assert setting(LangChainStore(minilm_model).store) == DEFAULT
    assert setting(LangChainStore.from_texts(["Ana moved to Oslo."], minilm_model).store) == DEFAULT
    assert setting(LlamaIndexStore(model=minilm_model)._store) == DEFAULT
    assert setting(EvoLangGraphStore(minilm_model).store) == DEFAULT
    assert setting(EvoAgentMemory(model=minilm_model).store) == DEFAULT
    assert setting(EvoAgentMemory(tmp_path / "m", model=minilm_model).store) == DEFAULT
    assert setting(resolve_store(None, minilm_model)) == DEFAULT
    assert EvoEmbeddings(minilm_model).query_memory is defaults.QUERY_MEMORY
    assert EvoStore(minilm_model).long_texts == defaults.LONG_TEXTS == "truncate"  # measured better


@pytest.mark.parametrize("flip", [True, False])
def test_the_method_as_specified_is_one_option_away(minilm_model, flip):
    method = dict(query_memory=not defaults.QUERY_MEMORY) if flip else dict(hybrid=not defaults.HYBRID)
    changed = setting(EvoStore(minilm_model, **method))
    assert changed != DEFAULT and setting(LangChainStore(minilm_model, **method).store) == changed
    assert setting(EvoLangGraphStore(minilm_model, **method).store) == changed
    assert setting(EvoAgentMemory(model=minilm_model, **method).store) == changed


def test_the_cli_searches_with_it():
    argv = ["search", "my-chats", "Where?"]
    args = build_parser(argv).parse_args(argv)
    assert (args.query_memory, args.hybrid) == DEFAULT
    argv += ["--query-memory", "--no-hybrid"]
    flipped = build_parser(argv).parse_args(argv)
    assert (flipped.query_memory, flipped.hybrid) == (True, False)
