"""EvoAgentMemory on real MiniLM weights: add/search/get/update/delete/reset, persistence, threads, bad input."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import pytest

from evoembedding_integrations.memory import EvoAgentMemory

ANA = [
    {"role": "user", "content": "I grew up in Porto."},
    {"role": "assistant", "content": "Porto is lovely."},
    {"role": "user", "content": "Last month I moved to Oslo for work."},
]


@pytest.fixture()
def memory(minilm_model):
    return EvoAgentMemory(model=minilm_model)


def test_add_search_get_shapes_and_user_isolation(memory):
    ids = memory.add(ANA, user_id="ana", session_id="s1", metadata={"source": "chat"})
    memory.add("I keep bees on my roof.", user_id="bo")
    assert len(ids) == 3 and len(memory) == 4
    item = memory.get(ids[2])
    assert item["memory"] == "User: Last month I moved to Oslo for work."
    assert (item["user_id"], item["session_id"], item["role"], item["metadata"]) == (
        "ana",
        "s1",
        "user",
        {"source": "chat"},
    )
    assert item["created_at"] == item["updated_at"]
    hits = memory.search("Where did I move for work?", user_id="ana", k=3)
    assert hits[0]["id"] == ids[2] and hits[0]["score"] >= hits[1]["score"]
    assert all(h["user_id"] == "ana" for h in hits)  # bo's memories are never searched for ana
    assert memory.search("bees", user_id="ana", k=5, filters={"role": "assistant"})[0]["id"] == ids[1]
    everyone = memory.search("bees on the roof", user_id=None, k=1)
    assert everyone[0]["user_id"] == "bo"
    assert memory.search("Oslo", user_id="nobody") == [] and memory.get("missing") is None


def test_sessions_get_all_update_delete_reset(memory):
    s1 = memory.add("I adopted a cat.", user_id="ana", session_id="s1")
    s2 = memory.add(["I started piano lessons.", "My teacher is Ines."], user_id="ana", session_id="s2")
    assert [m["id"] for m in memory.get_all(user_id="ana")] == s1 + s2  # oldest first
    assert [m["id"] for m in memory.get_all(user_id="ana", session_id="s2", limit=1)] == s2[:1]
    assert {h["id"] for h in memory.search("music", user_id="ana", session_id="s2", k=5)} == set(s2)
    before = memory.get(s1[0])
    updated = memory.update(s1[0], "I adopted two cats.", metadata={"mood": "happy"})
    assert updated["memory"] == "I adopted two cats." and updated["metadata"] == {"mood": "happy"}
    assert updated["created_at"] == before["created_at"] and updated["session_id"] == "s1"
    assert memory.search("How many cats?", user_id="ana", k=1)[0]["id"] == s1[0]
    with pytest.raises(KeyError):
        memory.update("missing", "x")
    assert memory.delete(s2[0]) is True and memory.delete(s2[0]) is False
    assert memory.delete_all(user_id="ana", session_id="s2") == 1
    assert [m["id"] for m in memory.get_all(user_id="ana")] == s1
    assert memory.delete_all(user_id="ana") == 1 and memory.get_all(user_id=None) == []
    memory.add("x marks the spot", user_id="z")
    memory.reset()
    assert len(memory) == 0


def test_persistent_memory_saves_every_change(minilm_model, tmp_path):
    memory = EvoAgentMemory(tmp_path / "mem", model=minilm_model)
    ids = memory.add(ANA, user_id="ana")
    memory.delete(ids[1])
    reopened = EvoAgentMemory(tmp_path / "mem", model=minilm_model)
    assert [m["id"] for m in reopened.get_all(user_id="ana")] == [ids[0], ids[2]]
    a, b = (m.search("Where do I live?", user_id="ana", k=2) for m in (memory, reopened))
    assert [h["id"] for h in a] == [h["id"] for h in b]
    assert [h["score"] for h in a] == pytest.approx([h["score"] for h in b], abs=1e-6)
    manual = EvoAgentMemory(tmp_path / "manual", model=minilm_model, autosave=False)
    manual.add("not yet saved", user_id="ana")
    assert len(EvoAgentMemory(tmp_path / "manual", model=minilm_model)) == 0
    manual.save()
    assert len(EvoAgentMemory(tmp_path / "manual", model=minilm_model)) == 1
    with pytest.raises(ValueError, match="no path"):
        EvoAgentMemory(model=minilm_model).save()


def test_bad_input_is_rejected_and_changes_nothing(memory):
    memory.add("kept", user_id="ana")
    bad_calls = [
        (lambda: memory.add("   ", user_id="ana"), ValueError, "empty"),
        (lambda: memory.add([], user_id="ana"), ValueError, "empty"),
        (lambda: memory.add(["ok", 3], user_id="ana"), TypeError, r"messages\[1\]"),
        (lambda: memory.add([{"role": "robot", "content": "hi"}]), ValueError, "role"),
        (lambda: memory.add("hi", user_id=7), TypeError, "user_id"),
        (lambda: memory.add("hi", metadata={"user_id": "eve"}), ValueError, "reserved"),
        (lambda: memory.add("hi", metadata={"x": float("nan")}), TypeError, "finite"),
        (lambda: memory.search("q", user_id="ana", k=0), ValueError, "k must be"),
        (lambda: memory.search("q", filters={"a": {"$regex": "x"}}), ValueError, "operator"),
        (lambda: memory.get_all(limit=0), ValueError, "limit"),
    ]
    for call, error, message in bad_calls:
        with pytest.raises(error, match=message):
            call()
    assert [m["memory"] for m in memory.get_all(user_id=None)] == ["kept"]


def test_concurrent_adds_searches_and_deletes_lose_nothing(memory, tmp_path):
    memory = EvoAgentMemory(tmp_path / "mem", model=memory.store.model)
    added, deleted, errors = {}, set(), []

    def worker(n):
        try:
            for i in range(3):
                (id_,) = memory.add(f"worker {n} fact {i}", user_id=f"u{n % 2}")
                added[id_] = n
                memory.search(f"fact {i}", user_id=f"u{n % 2}", k=2)
                if i == 1:
                    memory.delete(id_)
                    deleted.add(id_)
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    live = {m["id"] for m in memory.get_all(user_id=None)}
    assert live == set(added) - deleted and len(live) == 8
    assert {m["id"] for m in EvoAgentMemory(tmp_path / "mem", model=memory.store.model).get_all(user_id=None)} == live


def test_agent_memory_example_runs(minilm_model, capsys):
    path = Path(__file__).resolve().parents[2] / "examples" / "agent_memory.py"
    spec = importlib.util.spec_from_file_location("agent_memory_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    transcript = example.main([], model=minilm_model)
    assert "Oslo" in transcript[0][2][0]["memory"] and "Lia" in transcript[1][2][0]["memory"]
    assert "scripted fake" in capsys.readouterr().out


def test_store_options_reach_the_store(minilm_model, tmp_path):
    memory = EvoAgentMemory(tmp_path / "m", model=minilm_model, query_memory=True, hybrid=False)
    ids = memory.add(["I keep bees on my roof.", "My sister Ines plays the oboe."], user_id="ana")
    assert (memory.store.query_memory, memory.store.hybrid) == (True, False)
    hits = memory.search("Who plays the oboe?", user_id="ana", k=2)
    expected = memory.store.search("Who plays the oboe?", k=2, stream_ids="ana")
    assert [h["id"] for h in hits] == [h.id for h in expected] and hits[0]["id"] == ids[1]
    reopened = EvoAgentMemory(tmp_path / "m", model=minilm_model, query_memory=True)
    assert reopened.store.hybrid and reopened.store.query_memory and len(reopened) == 2  # hybrid: the default
    with pytest.raises(TypeError, match="hybrid"):
        EvoAgentMemory(model=minilm_model, hybrid="yes")


def test_update_keeps_what_it_is_not_given_and_is_shared_by_the_adapters(memory):
    from evoembedding_integrations.adapters.lightmem import EvoLightMemRetriever

    (id_,) = memory.add("I adopted a cat.", user_id="ana", session_id="s1", metadata={"mood": "happy"})
    retagged = memory.update(id_, metadata={"mood": "proud"})
    assert retagged["memory"] == "I adopted a cat." and retagged["metadata"] == {"mood": "proud"}
    assert retagged["session_id"] == "s1" and memory.store.get([id_])[0].position == 1  # re-read at the end
    with pytest.raises(ValueError, match="new text or new metadata"):
        memory.update(id_)
    with pytest.raises(ValueError, match="reserved"):
        memory.update(id_, metadata={"user_id": "eve"})
    shared = EvoAgentMemory(store=memory.store)
    retriever = EvoLightMemRetriever(memory.store)
    assert shared._lock is memory._lock is retriever.memory._lock  # one mutation lock per store
    with pytest.raises(ValueError, match="not both"):
        EvoAgentMemory(model=memory.store.model, store=memory.store)


def test_pair_unit_stores_a_user_message_and_its_reply_as_one_memory(minilm_model):
    memory = EvoAgentMemory(model=minilm_model, unit="pair")
    chat = [*ANA, {"role": "assistant", "content": "How is the weather there?"}]
    ids = memory.add(chat, user_id="ana")
    stored = [memory.get(i) for i in ids]
    assert [(m["memory"], m["role"]) for m in stored] == [
        ("User: I grew up in Porto.\nAssistant: Porto is lovely.", "pair"),
        ("User: Last month I moved to Oslo for work.\nAssistant: How is the weather there?", "pair"),
    ]
    lone = memory.add([{"role": "assistant", "content": "Anything else?"}], user_id="ana")
    assert memory.get(lone[0])["role"] == "assistant"  # a message without its pair stays one entry
    assert memory.search("Where did I move for work?", user_id="ana", k=1)[0]["id"] == ids[1]
    with pytest.raises(ValueError, match="unit"):
        EvoAgentMemory(model=minilm_model, unit="turn")
