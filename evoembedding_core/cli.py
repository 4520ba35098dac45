"""The ``evoembedding`` command line: ``demo`` here; every other subcommand registers from its module.

Subcommand modules are imported only when their subcommand runs (or shows its ``--help``):
``evoembedding --help`` lists them from :data:`COMMANDS` without importing any of them, so it needs
neither torch nor numpy. User errors (a missing file, a malformed export, bad JSON, a damaged store)
print one line, ``evoembedding: error: ...``, and exit with status 1; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS: dict[str, tuple[str, str]] = {
    "eval": (
        "evoembedding_core.eval.cli",
        "evidence-retrieval benchmark: our model against static MiniLM and BM25 baselines",
    ),
    "train": ("evoembedding_core.training.cli", "train an EvoEmbedding model on EvoTrain JSON/JSONL data"),
    "synth": ("evoembedding_core.training.synth", "generate context-dependent synthetic EvoTrain samples (JSONL)"),
    "index": ("evoembedding_integrations.cli", "read chat exports into a saved store, one stream per conversation"),
    "search": ("evoembedding_integrations.cli", "search a store built by `evoembedding index`"),
}
"""Subcommand name -> (module whose ``register(subparsers)`` adds it, the one-line help listed by
``evoembedding --help``). A module may register several subcommands; the help given here must match
the one its ``register`` gives (a test checks)."""

COMMAND_MODULES: list[str] = list(dict.fromkeys(module for module, _ in COMMANDS.values()))
"""The subcommand modules, in order (each imported only when one of its subcommands is used)."""

USER_ERRORS = (ValueError, TypeError, OSError, ImportError)
"""What :func:`main` reports as one line: bad values and types (``json.JSONDecodeError``, the store's
``CorruptStoreError`` and ``ModelMismatchError`` are ``ValueError`` s), missing or unreadable files
(``FileNotFoundError`` is an ``OSError``) and a missing optional extra (``ImportError``)."""

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


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("evoembedding")
    except PackageNotFoundError:  # running from a source tree that was never installed
        from . import __version__

        return __version__


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv``: its first token that is not an option (the top-level
    options take no values)."""
    for token in argv:
        if token == "--":
            return None
        if not token.startswith("-"):
            return token
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser, with the full arguments of the subcommand named in ``argv``.

    Args:
        argv: The command line about to be parsed. Its subcommand's module is imported and registers
            the subcommand's arguments; every other subcommand is listed by name and help only.
            ``None`` (or no subcommand) imports none of them.

    Returns:
        The parser.
    """
    parser = argparse.ArgumentParser(prog="evoembedding", description="Evolvable, context-aware embeddings.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser("demo", help="rank the turns of a short chat for context-dependent questions")
    demo.add_argument("--model", default=None, help="model directory or id (default: the shipped model)")
    demo.add_argument("--top", type=int, default=3, help="turns to show per query")
    demo.set_defaults(func=_demo)
    chosen = COMMANDS.get(_command(argv or []), (None, ""))[0]
    for name, (module, help_text) in COMMANDS.items():
        if name in sub.choices:
            continue
        if module == chosen:
            importlib.import_module(module).register(sub)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``evoembedding``.

    Args:
        argv: The arguments (default: ``sys.argv[1:]``). ``--debug`` may appear anywhere before a
            ``--``.

    Returns:
        The exit status: 0 on success, 1 after a user error (reported as one line on stderr).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    end = argv.index("--") if "--" in argv else len(argv)
    debug = "--debug" in argv[:end]
    argv = [token for i, token in enumerate(argv) if not (i < end and token == "--debug")]
    args = build_parser(argv).parse_args(argv)
    try:
        return args.func(args)
    except USER_ERRORS as exc:
        if debug:
            raise
        print(f"evoembedding: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if debug:
            raise
        print("evoembedding: interrupted", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) not in text:
        text = f"{exc.filename}: {text}"
    return text


if __name__ == "__main__":
    sys.exit(main())
