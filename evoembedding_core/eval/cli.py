"""``evoembedding eval``: run the benchmark harness from the command line."""

from __future__ import annotations

import argparse

from ..chat import UNITS
from ..splitting import LONG_TEXT_MODES
from .names import SYSTEMS, check_system_names

EPILOG = """examples:
  evoembedding eval --data realtalk --out runs/realtalk
  evoembedding eval --data longmemeval --systems evo,minilm,bm25 --limit 20 --out /tmp/lme
  evoembedding eval --data samples.jsonl --model runs/my-model --systems evo,evo-zero-memory --out /tmp/s
  # one process per core: shards of the conversations, then one table
  evoembedding eval --data realtalk --shard 1/2 --out runs/rt1 & evoembedding eval --data realtalk --shard 2/2 --out runs/rt2
  evoembedding eval --merge runs/rt1 runs/rt2 --out runs/realtalk
"""


def _systems(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    try:
        check_system_names(names)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return names


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shard must look like K/N (e.g. 1/2), got {text!r}") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"shard K/N needs 1 <= K <= N, got {text!r}")
    return k, n


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evidence-retrieval benchmark: our model against static MiniLM and BM25 baselines",
        description=(
            "Stream each conversation through the model, ask every question after it, and rank the turns. "
            "Writes results.json, results.md and PNG plots to --out."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data",
        help="'realtalk', 'longmemeval' (from ../shared/data or $EVOEMBEDDING_SHARED_DATA) or a path: "
        "LoCoMo-style JSON file/directory, LongMemEval JSON, EvoTrain JSON/JSONL",
    )
    parser.add_argument("--model", default="default", help="model directory or 'default' (the shipped model)")
    parser.add_argument(
        "--systems",
        type=_systems,
        default=list(SYSTEMS),
        help=f"comma-separated systems to compare (default: {','.join(SYSTEMS)}); a name + '-dated' runs on "
        "dated turns, names joined by '+' are fused by reciprocal rank (e.g. evo-query-no-memory-dated+bm25-dated)",
    )
    parser.add_argument("--limit", type=_positive, default=None, help="first N conversations (LongMemEval: questions)")
    parser.add_argument(
        "--shard",
        type=_shard,
        default=None,
        metavar="K/N",
        help="only conversations K, K+N, K+2N, ... (1-based): run N shards in parallel, then --merge",
    )
    parser.add_argument(
        "--label",
        default=None,
        help="name the model's rows LABEL, LABEL-query-no-memory, ... instead of evo... "
        "(to --merge runs of several models into one table)",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        metavar="DIR",
        default=None,
        help="instead of running: combine the results.json of shards or of runs of other systems",
    )
    parser.add_argument(
        "--unit",
        choices=UNITS,
        default="message",
        help="retrieval unit: one message per candidate (default), or 'pair': a turn and the reply after it "
        "(the benchmark is then named NAME-pairs)",
    )
    parser.add_argument(
        "--long-texts",
        choices=LONG_TEXT_MODES,
        default="truncate",
        help="evo systems: a turn over the segment limit keeps its first tokens (default) or is 'split' "
        "into consecutive segments (its vector the mean of theirs)",
    )
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .report import markdown_report, write_report

    if args.merge:
        result = _merged(args.merge)
    elif args.data:
        result = _run(args)
    else:
        raise SystemExit("error: eval needs --data (or --merge)")
    paths = write_report(result, args.out, plots=not args.no_plots)
    print(markdown_report(result))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _merged(dirs: list[str]) -> dict:
    import json
    from pathlib import Path

    from .runner import merge_results

    results = []
    for entry in dirs:
        path = Path(entry) / "results.json" if Path(entry).is_dir() else Path(entry)
        if not path.is_file():
            raise SystemExit(f"error: --merge: {path} does not exist")
        results.append(json.loads(path.read_text()))
    try:
        return merge_results(results)
    except ValueError as exc:
        raise SystemExit(f"error: --merge: {exc}") from None


def _run(args: argparse.Namespace) -> dict:
    from ..model import EvoEmbeddingModel
    from .conversation import paired
    from .loaders import load_benchmark
    from .names import uses_model
    from .runner import evaluate
    from .systems import build_systems

    name, conversations = load_benchmark(args.data, args.limit)
    if args.shard:
        k, n = args.shard
        if n > len(conversations):
            raise SystemExit(f"error: --shard {k}/{n}: {name} has only {len(conversations)} conversation(s)")
        conversations = conversations[k - 1 :: n]
    if args.unit == "pair":
        name, conversations = f"{name}-pairs", [paired(c) for c in conversations]

    def load_model() -> EvoEmbeddingModel:
        return EvoEmbeddingModel.default() if args.model == "default" else EvoEmbeddingModel.from_pretrained(args.model)

    systems = build_systems(args.systems, model=load_model, long_texts=args.long_texts)
    result = evaluate(conversations, systems, benchmark=name, progress=not args.quiet)
    result["model"] = args.model if uses_model(args.systems) else None
    result["limit"] = args.limit
    result["long_texts"] = args.long_texts
    if args.label:
        from .names import relabel
        from .runner import rename_system

        for name in [n for n in result["systems"] if relabel(n, args.label) != n]:
            rename_system(result, name, relabel(name, args.label))
    return result
