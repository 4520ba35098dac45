"""The ``evoembedding`` command line: ``demo`` here; other subcommands register from their modules."""

from __future__ import annotations

import argparse
import importlib
import sys

# Each module exposes ``register(subparsers)`` adding its subcommand(s); imported lazily by name.
COMMAND_MODULES: list[str] = [
    "evoembedding_core.eval.cli",
    "evoembedding_core.training.cli",
    "evoembedding_core.training.synth",
]

DEMO_TURNS = [
    "Maya: I grew up in Porto, right by the river.",
    "Leo: Porto is lovely. Did you stay there for university?",
    "Maya: No, I studied in Lisbon, then took a job in Madrid.",
    "Leo: Madrid must have been hot in summer.",
    "Maya: It was! Last spring I finally moved again, to Oslo.",
    "Leo: Quite a change. How do you like it there?",
    "Maya: I love it, even the dark winters.",
]
DEMO_QUERIES = ["Where does Maya live now?", "Where did Maya grow up?"]


def _demo(args: argparse.Namespace) -> int:
    from .model import EvoEmbeddingModel

    model = EvoEmbeddingModel.from_pretrained(args.model) if args.model else EvoEmbeddingModel.default()
    stream = model.stream()
    vectors = stream.add(DEMO_TURNS)
    print(f"Read {len(stream)} turns into a stream (memory: {stream.memory.shape[0]} latents).\n")
    for query in DEMO_QUERIES:
        scores = vectors @ stream.encode_query(query)
        order = scores.argsort()[::-1][: args.top]
        print(f"Query: {query}")
        print(f"  {'rank':<5} {'score':>6}  turn")
        for rank, i in enumerate(order, 1):
            print(f"  {rank:<5} {scores[i]:6.3f}  {DEMO_TURNS[i]}")
        print()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evoembedding", description="Evolvable, context-aware embeddings.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="rank the turns of a short chat for context-dependent questions")
    demo.add_argument("--model", default=None, help="model directory or id (default: the shipped model)")
    demo.add_argument("--top", type=int, default=3, help="turns to show per query")
    demo.set_defaults(func=_demo)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
