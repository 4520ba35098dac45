"""Quickstart: a conversation streamed into an EvoStore, then a question that needs its context.

    python examples/quickstart.py

Each turn is read in order by the stream's latent memory, so its vector reflects what was said
before it; the query is encoded against that memory. The table lists the turns ranked by score.
"""

from __future__ import annotations

import argparse

from evoembedding_integrations import EvoStore

CONVERSATION = [
    "Ana: I grew up in Porto, right by the Douro river.",
    "Bob: Do you still live there?",
    "Ana: No, last spring I moved to Oslo for a new job.",
    "Bob: How do you like the weather?",
    "Ana: It is cold, but my cat Miso loves the snow.",
    "Bob: I started learning the cello this winter.",
]
QUERY = "Where does Ana live now?"


def main(argv: list[str] | None = None) -> list:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--query", default=QUERY)
    parser.add_argument("-k", type=int, default=len(CONVERSATION))
    args = parser.parse_args(argv)

    store = EvoStore()  # the shipped default model (MiniLM backbone), offline
    store.add(CONVERSATION, stream_id="chat")
    hits = store.search(args.query, k=args.k, stream_ids="chat")

    print(f"query: {args.query}\n")
    print(f"{'rank':>4}  {'score':>6}  {'turn':>4}  text")
    for rank, hit in enumerate(hits, 1):
        print(f"{rank:>4}  {hit.score:6.3f}  {hit.position:>4}  {hit.text}")
    return hits


if __name__ == "__main__":
    main()
