"""EvoMemoryBlock inside llama-index's own ``Memory``, on real MiniLM weights: one stream per session."""

from __future__ import annotations

import numpy as np
import pytest
from llama_index.core.llms import ChatMessage
from llama_index.core.memory import Memory

from evoembedding_core import EvoStream
from evoembedding_integrations.llama_index import EvoMemoryBlock, EvoVectorStore

ANA = [
    ("user", "I grew up in Porto, a city by the sea."),
    ("assistant", "Porto sounds lovely."),
    ("user", "Last spring I moved to Oslo for a nursing job."),
    ("assistant", "Congratulations on the new job!"),
    ("user", "My cat Pixel came with me."),
    ("assistant", "Pixel must like the snow."),
]
BEN = [
    ("user", "I work as a chef in Lyon."),
    ("assistant", "Lyon is famous for its food."),
    ("user", "Every Friday I cook grilled fish."),
    ("assistant", "That sounds delicious."),
    ("user", "My dog Rex loves the market."),
    ("assistant", "Rex has good taste."),
]


def memory_for(session_id, block):
    # a small token limit makes Memory flush the older turns to its blocks, as in a long chat
    return Memory.from_defaults(session_id=session_id, token_limit=40, token_flush_size=10, memory_blocks=[block])


def chat(memory, turns):
    for role, text in turns:
        memory.put(ChatMessage(role=role, content=text))


def retrieved(memory, question):
    """The text the memory block adds for this question (Memory puts it in the system message)."""
    messages = memory.get(input=question)
    return "\n".join(m.content or "" for m in messages if m.role.value == "system")


def test_two_sessions_in_one_store_never_see_each_others_turns(minilm_model):
    store = EvoVectorStore(model=minilm_model)
    block = EvoMemoryBlock(vector_store=store, similarity_top_k=2)
    ana, ben = memory_for("ana-1", block), memory_for("ben-1", block)
    chat(ana, ANA)
    chat(ben, BEN)
    assert sorted(store.store.streams()) == ["ana-1", "ben-1"]
    for session, turns in (("ana-1", ANA), ("ben-1", BEN)):
        nodes = store.get_nodes(node_ids=store.store.ids(session))
        assert {n.metadata["session_id"] for n in nodes} == {session}
        texts = [n.get_content() for n in nodes]
        assert texts == [f"{role}: {text}" for role, text in turns[: len(texts)]]  # the flushed turns, in order
        # each message was read over its own session's earlier turns only
        assert np.allclose(store.store.vectors(store.store.ids(session)), EvoStream(minilm_model).add(texts), atol=1e-5)

    ana_context = retrieved(ana, "Which city did I grow up in?")
    assert "Porto" in ana_context and "Lyon" not in ana_context and "Rex" not in ana_context
    ben_context = retrieved(ben, "Where do I work as a chef?")
    assert "Lyon" in ben_context and "Porto" not in ben_context and "Oslo" not in ben_context


def test_a_fixed_stream_id_keeps_one_user_across_sessions(minilm_model):
    store = EvoVectorStore(model=minilm_model)
    block = EvoMemoryBlock(vector_store=store, stream_id="user:ana", similarity_top_k=10)
    chat(memory_for("monday", block), ANA[:4])
    tuesday = [
        ("user", "My cat Pixel came with me to Norway last spring."),
        ("assistant", "Pixel must like the snow."),
        ("user", "Pixel now sleeps by the window all day."),
        ("assistant", "A happy cat."),
    ]
    chat(memory_for("tuesday", block), tuesday)
    assert store.store.streams() == ["user:ana"]
    assert {n.metadata["session_id"] for n in store.get_nodes()} == {"monday", "tuesday"}
    context = retrieved(memory_for("wednesday", block), "Which city did I grow up in?")
    assert "Porto" in context and "Pixel" in context  # a new session of the same user sees both earlier ones
    assert context.index("Porto") < context.index("Pixel")  # oldest first


def test_block_direct_use_and_bad_input(minilm_model):
    import asyncio

    block = EvoMemoryBlock(vector_store=EvoVectorStore(model=minilm_model))
    assert block.stream_for(None) == "default" and block.stream_for("s") == "s"
    assert asyncio.run(block.aget([ChatMessage(role="user", content="hi")], session_id="nobody")) == ""
    asyncio.run(block.aput([ChatMessage(role="user", content="  ")], session_id="s"))  # no text: nothing stored
    assert block.vector_store.store.streams() == []
    with pytest.raises(ValueError):
        EvoMemoryBlock(vector_store=block.vector_store, stream_id="  ")
