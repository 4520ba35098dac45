"""Long-term memory for a LangGraph agent: EvoLangGraphStore, one EvoEmbedding stream per user.

    python examples/langgraph_memory.py                  # memories in a new temporary directory
    python examples/langgraph_memory.py --path /tmp/mem  # somewhere else

A two-node graph (no LLM needed): ``remember`` writes what the user said into the store under
``("memories", user)``, ``recall`` searches that user's memories for the message. The store is
durable at ``--path`` (every write committed), so a second run, or another process, remembers. With langmem
installed, its ``manage_memory`` / ``search_memory`` tools work on the same store.
"""

from __future__ import annotations

import argparse
import tempfile
from typing import TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from evoembedding_integrations.langgraph import EvoLangGraphStore

CONVERSATIONS = {
    "ana": ["I grew up in Porto.", "Last spring I moved to Oslo for a new job.", "My cat Miso loves the snow."],
    "bob": ["I live in Lisbon.", "I play the cello in an orchestra."],
}
QUESTION = ("ana", "Which city do I live in now?")


class Turn(TypedDict):
    user: str
    message: str
    recalled: list[str]


def remember(state: Turn, runtime: Runtime) -> dict:
    namespace = ("memories", state["user"])
    key = f"m{len(runtime.store.search(namespace, limit=1000))}"
    runtime.store.put(namespace, key, {"content": state["message"]})
    return {}


def recall(state: Turn, runtime: Runtime) -> dict:
    found = runtime.store.search(("memories", state["user"]), query=state["message"], limit=2)
    return {"recalled": [item.value["content"] for item in found]}


def build_graph(store: EvoLangGraphStore, *, write: bool = True):
    """``remember`` then ``recall`` (or only ``recall``), compiled with the store."""
    builder = StateGraph(Turn)
    builder.add_node("recall", recall)
    if write:
        builder.add_node("remember", remember)
        builder.add_edge(START, "remember")
        builder.add_edge("remember", "recall")
    else:
        builder.add_edge(START, "recall")
    builder.add_edge("recall", END)
    return builder.compile(store=store)


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", default=None, help="where the store is saved (default: a temporary directory)")
    args = parser.parse_args(argv)
    path = args.path or tempfile.mkdtemp(prefix="langgraph_memories_")

    # The default setting: queries read over an empty memory, fused with BM25 (best for a whole history).
    store = EvoLangGraphStore(path=path, fields=["content"])
    graph = build_graph(store)
    for user, messages in CONVERSATIONS.items():
        for message in messages:
            graph.invoke({"user": user, "message": message, "recalled": []})
    print(f"namespaces: {store.list_namespaces()} (saved in {path})")

    reopened = EvoLangGraphStore(path=path, fields=["content"])
    user, question = QUESTION
    out = build_graph(reopened, write=False).invoke({"user": user, "message": question, "recalled": []})
    print(f"\n{user} asks: {question}")
    for text in out["recalled"]:
        print(f"  recalled: {text!r}")
    return out["recalled"]


if __name__ == "__main__":
    main()
