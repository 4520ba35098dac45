"""One agent loop with EvoAgentMemory: remember what the user says, recall it to answer.

Runs offline. The "LLM" here is a SCRIPTED FAKE (it answers from the recalled memories with a
template), so the example shows the memory, not a language model. Swap ``scripted_llm`` for any
chat model.

    python examples/agent_memory.py [--path ./agent-memory]
"""

from __future__ import annotations

import argparse
import tempfile

from evoembedding_integrations.memory import EvoAgentMemory

SESSIONS = [
    ("2024-03-01", ["I grew up in Porto, by the river.", "My sister Lia still lives there."]),
    (
        "2024-09-12",
        ["Big news: last week I moved to Oslo for a new job.", "The winters here are long but I love skiing."],
    ),
]
QUESTIONS = ["Which city did I move to for my job?", "Who is Lia?"]


def scripted_llm(question: str, memories: list[dict]) -> str:
    """A fake LLM (no model, no network): quotes the best recalled memory."""
    if not memories:
        return "I don't remember anything about that."
    return f'From what you told me: "{memories[0]["memory"].removeprefix("User: ")}"'


def run(memory: EvoAgentMemory, user_id: str = "ana") -> list[tuple[str, str, list[dict]]]:
    """Feed the scripted sessions into memory, then answer each question; returns (question, answer, recalled)."""
    for session_id, turns in SESSIONS:
        for turn in turns:
            reply = "Noted!"
            memory.add([{"role": "user", "content": turn}], user_id=user_id, session_id=session_id)
            memory.add(reply, user_id=user_id, session_id=session_id, metadata={"kind": "agent-reply"})
    transcript = []
    for question in QUESTIONS:
        recalled = memory.search(question, user_id=user_id, k=3, filters={"role": "user"})
        transcript.append((question, scripted_llm(question, recalled), recalled))
    return transcript


def main(argv: list[str] | None = None, model=None) -> list[tuple[str, str, list[dict]]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", help="directory to keep the memory in (default: a temporary one)")
    args = parser.parse_args(argv)
    print("NOTE: the LLM in this example is a scripted fake; the memory and retrieval are real.")
    with tempfile.TemporaryDirectory() as tmp:
        memory = EvoAgentMemory(args.path or tmp, model=model)
        transcript = run(memory)
        for question, answer, recalled in transcript:
            print(f"Q: {question}\nA: {answer}")
            for item in recalled:
                print(f"   {item['score']:.3f}  [{item['session_id']}] {item['memory']}")
        print(f"{len(memory)} memories saved in {memory.path}")
    return transcript


if __name__ == "__main__":
    main()
