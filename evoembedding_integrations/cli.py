"""``evoembedding index`` and ``evoembedding search``: your own chat exports in a saved store.

``evoembedding index PATH --store DIR`` reads conversations into an :class:`~.store.EvoStore` saved
in ``DIR``, one stream per conversation, and ``evoembedding search DIR "question"`` ranks their
segments. :func:`read_conversations` is the reader behind ``index``; it accepts:

* **Chat exports**: a JSONL file of ``{"role", "content"[, "timestamp"]}`` messages (one per
  line), or a JSON file holding a list of them (or an object whose ``"messages"`` is that list).
  One file is one conversation: its stream id is the file's stem. Messages become segments by
  :func:`evoembedding_core.chat.fold_messages` (``unit="message"`` or ``"pair"``); a segment whose
  first message has a timestamp is dated by the evaluation's rule for dated turns
  (:func:`evoembedding_core.eval.systems.dated_conversation`): ``"[2023-05-01] User: ..."``.
* **LoCoMo-style chats** (:func:`evoembedding_core.eval.loaders.load_locomo`): one stream per chat,
  turns dated by their session date; session headers are not indexed.
* **EvoTrain files** (:func:`evoembedding_core.training.data.load_samples`): one stream per sample
  (``STEM#N``), holding the sample's history segments.
* **A folder**: every ``.json`` / ``.jsonl`` file in it (not recursive), in natural order.

This module imports only the standard library at import time; models, numpy and the store load
when a command runs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import defaults

__all__ = ["ExportedConversation", "read_conversations", "register"]

INDEX_HELP = "read chat exports into a saved store, one stream per conversation"
SEARCH_HELP = "search a store built by `evoembedding index`"
ADD_BATCH = 32
"""Segments per ``EvoStore.add`` call while indexing (the progress bar's step). A stream read in
several calls gets the vectors of one call (equal up to float rounding, about 1e-6)."""

INDEX_EPILOG = """examples:
  evoembedding index examples/data/chat_export.jsonl --store my-chats
  evoembedding index exports/ --store my-chats --unit pair      # one stream per file in exports/
  evoembedding search my-chats "How much does the moving company charge?" -k 3
"""
SEARCH_EPILOG = """examples:
  evoembedding search my-chats "When does the new job start?"
  evoembedding search my-chats "Where do we meet?" --stream book_club -k 3 --json
"""


@dataclass
class ExportedConversation:
    """One conversation read from a file: the texts of one stream, in order.

    Attributes:
        stream_id: The stream it is indexed into (a chat export's file stem, a LoCoMo chat's
            ``sample_id`` or stem, ``STEM#N`` for EvoTrain sample N).
        texts: The segments, in conversation order (dated where the source has dates).
        metadatas: One dict per segment: ``source`` (the file), ``turn`` (the chat export's message
            index, the LoCoMo ``dia_id`` or the EvoTrain turn index) and, where known, ``date``
            and ``session``.
    """

    stream_id: str
    texts: list[str] = field(default_factory=list)
    metadatas: list[dict] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- reading
def read_conversations(path: str | Path, *, unit: str = "message") -> list[ExportedConversation]:
    """Read a chat export, a LoCoMo-style chat, an EvoTrain file, or a folder of them.

    Args:
        path: A ``.json`` / ``.jsonl`` file or a folder of them (see the module docstring).
        unit: How chat-export messages become segments: ``"message"`` (one segment per message) or
            ``"pair"`` (a user message and the reply right after it form one segment).

    Returns:
        The conversations, in file order; each one stream.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The folder holds no ``.json`` / ``.jsonl`` file, a file is not valid JSON or
            not one of the accepted shapes, a message is malformed, a conversation is empty, or
            two conversations would share a stream id.
        TypeError: A message's content is not a string.
    """
    from evoembedding_core.chat import check_unit

    check_unit(unit)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_dir():
        from evoembedding_core.eval.loaders import natural_key

        files = sorted(
            (p for p in path.iterdir() if p.suffix in (".json", ".jsonl") and p.is_file()),
            key=lambda p: natural_key(p.name),
        )
        if not files:
            raise ValueError(f"{path}: no .json or .jsonl files in this folder")
    else:
        files = [path]
    conversations: list[ExportedConversation] = []
    for file in files:
        conversations.extend(_read_file(file, unit))
    seen: dict[str, int] = {}
    for c in conversations:
        seen[c.stream_id] = seen.get(c.stream_id, 0) + 1
    clashes = [sid for sid, count in seen.items() if count > 1]
    if clashes:
        raise ValueError(f"{path}: two conversations would share the stream id {clashes[0]!r}; rename one file")
    return conversations


def _read_file(path: Path, unit: str) -> list[ExportedConversation]:
    records = _jsonl_records(path) if path.suffix == ".jsonl" else None
    data = records if records is not None else _json(path)
    first = data[0] if isinstance(data, list) and data else data
    if isinstance(first, Mapping) and "meta" in first:
        return _evotrain(path)
    if isinstance(data, Mapping) and "messages" in data:
        data = data["messages"]
        first = data[0] if isinstance(data, list) and data else data
    if isinstance(data, list) and (not data or (isinstance(first, Mapping) and "role" in first)):
        return [_chat(path, data, unit)]
    if isinstance(first, Mapping) and ("qa" in first or "conversation" in first or _has_sessions(first)):
        return _locomo(path)
    raise ValueError(
        f"{path}: not a chat export: expected {{role, content}} messages (a JSON list or one per JSONL line), "
        "a LoCoMo-style chat or EvoTrain samples"
    )


def _json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg} (column {exc.colno})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 text file") from None


def _jsonl_records(path: Path) -> list:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 text file") from None
    records = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not valid JSON: {exc.msg} (column {exc.colno})") from None
    return records


def _has_sessions(item: Mapping) -> bool:
    return any(isinstance(key, str) and re.fullmatch(r"session_\d+", key) for key in item)


def _chat(path: Path, messages: list, unit: str) -> ExportedConversation:
    from evoembedding_core.chat import fold_messages, validate_messages
    from evoembedding_core.eval.conversation import Conversation, Segment
    from evoembedding_core.eval.loaders import short_date

    validate_messages(messages, str(path), non_empty=True)
    segments = fold_messages(messages, unit=unit)
    # The first message of each segment, found by folding the message numbers by the same rule.
    numbered = [{"role": m["role"], "content": str(i)} for i, m in enumerate(messages)]
    starts = [int(s.split(": ", 1)[1].split("\n", 1)[0]) for s in fold_messages(numbered, unit=unit)]
    dates = [_date(messages[i].get("timestamp"), f"{path}: message {i}", short_date) for i in starts]
    turns = [Segment(text, turn_id=str(i), date=d) for text, i, d in zip(segments, starts, dates)]
    return _exported(Conversation(path.stem, turns), path)


def _date(timestamp, where: str, short_date) -> str:
    """The calendar date of a message's ``timestamp`` (a date string or Unix seconds), ``""`` for none."""
    if timestamp is None or timestamp == "":
        return ""
    if isinstance(timestamp, (int, float)) and not isinstance(timestamp, bool):
        try:
            return datetime.fromtimestamp(timestamp, tz=timezone.utc).date().isoformat()
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"{where}: timestamp {timestamp!r} is out of range") from None
    if isinstance(timestamp, str):
        return short_date(timestamp)
    raise TypeError(f"{where}: timestamp must be a string or a number, got {type(timestamp).__name__}")


def _locomo(path: Path) -> list[ExportedConversation]:
    from evoembedding_core.eval.loaders import load_locomo

    return [_exported(conversation, path) for conversation in load_locomo(path)]


def _evotrain(path: Path) -> list[ExportedConversation]:
    from evoembedding_core.eval.conversation import Conversation, Segment
    from evoembedding_core.training.data import load_samples

    samples = load_samples(path).samples
    out = []
    for n, sample in enumerate(samples):
        name = path.stem if len(samples) == 1 else f"{path.stem}#{n}"
        out.append(
            _exported(Conversation(name, [Segment(t, turn_id=str(i)) for i, t in enumerate(sample.history)]), path)
        )
    return out


def _exported(conversation, path: Path) -> ExportedConversation:
    """A conversation's turns as a stream: dated as the evaluation dates them, headers left out."""
    from evoembedding_core.eval.systems import dated_conversation

    out = ExportedConversation(conversation.name)
    for plain, dated in zip(conversation.candidates, dated_conversation(conversation).candidates):
        metadata = {"source": str(path), "turn": plain.turn_id}
        metadata.update({key: value for key, value in (("date", plain.date), ("session", plain.session)) if value})
        out.texts.append(dated.text)
        out.metadatas.append(metadata)
    if not out.texts:
        raise ValueError(f"{path}: conversation {conversation.name!r} has no turns to index")
    return out


# ---------------------------------------------------------------------------------------------- commands
def _index(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from .store import MANIFEST, EvoStore

    conversations = read_conversations(args.path, unit=args.unit)  # every file is read before any work
    if args.workers:
        return _index_parallel(args, conversations)
    directory = Path(args.store)
    if (directory / MANIFEST).exists():
        store = EvoStore.load(directory, args.model)
    elif directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ValueError(f"{directory} is not a saved store: give a new or empty directory, or an existing store")
    else:
        store = EvoStore(args.model)
    existing = set(store.streams())
    if args.replace:
        for c in conversations:
            store.delete_stream(c.stream_id)
    total = sum(len(c.texts) for c in conversations)
    with tqdm(total=total, desc="indexing", unit="segment", disable=True if args.no_progress else None) as bar:
        for c in conversations:
            for start in range(0, len(c.texts), ADD_BATCH):
                end = start + ADD_BATCH
                store.add(c.texts[start:end], stream_id=c.stream_id, metadatas=c.metadatas[start:end])
                bar.update(len(c.texts[start:end]))
    store.save(directory)
    for c in conversations:
        if c.stream_id not in existing:
            note = ""
        elif args.replace:
            note = " (replaced)"
        else:
            note = " (appended to the existing stream)"
        print(f"  {c.stream_id}: {_count(len(c.texts), 'segment')}{note}")
    print(
        f"indexed {_count(total, 'segment')} in {_count(len(conversations), 'stream')} into {directory} "
        f"(the store holds {_count(len(store), 'segment')} in {_count(len(store.streams()), 'stream')})"
    )
    return 0


def _index_parallel(args: argparse.Namespace, conversations: list[ExportedConversation]) -> int:
    """``index --workers N``: ingest on N Ray workers into the durable store in ``--store``."""
    from .distributed import ingest_conversations
    from .store import EvoStore

    if args.replace:
        store = EvoStore(args.model, path=args.store)
        for c in conversations:
            store.delete_stream(c.stream_id)
        store.close()
    report = ingest_conversations(
        conversations, args.store, num_workers=args.workers, model=args.model, progress=not args.no_progress
    )
    print(
        f"indexed {_count(report.texts, 'segment')} on {_count(report.workers, 'worker')} into {args.store}: "
        f"{report.new} new, {report.resumed} resumed, {report.skipped} already complete "
        f"({report.texts_per_second:.1f} segments/s)"
    )
    return 0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _search(args: argparse.Namespace) -> int:
    from .store import EvoStore

    if not Path(args.store).exists():
        raise FileNotFoundError(f"{args.store}: no such store (build one with `evoembedding index PATH --store DIR`)")
    store = EvoStore.load(args.store, args.model, query_memory=args.query_memory, hybrid=args.hybrid)
    streams = store.streams()
    for sid in args.stream or []:
        if sid not in streams:
            shown = ", ".join(streams[:10]) + (", ..." if len(streams) > 10 else "")
            raise ValueError(f"no stream {sid!r} in {args.store} (its streams: {shown or 'none'})")
    hits = store.search(args.question, k=args.k, stream_ids=args.stream)
    if not hits:
        print(f"no hits: {args.store} holds no segments", file=sys.stderr)
    if args.json:
        for rank, hit in enumerate(hits, 1):
            row = {"rank": rank, "score": hit.score, "stream_id": hit.stream_id, "position": hit.position}
            row.update({"id": hit.id, "text": hit.text, "metadata": hit.metadata})
            print(json.dumps(row, ensure_ascii=False))
        return 0
    width = max([len("stream"), *(len(hit.stream_id) for hit in hits)])
    if hits:
        print(f"{'rank':>4}  {'score':>6}  {'stream':<{width}}  text")
    for rank, hit in enumerate(hits, 1):
        first, *rest = hit.text.splitlines() or [""]
        print(f"{rank:>4}  {hit.score:6.3f}  {hit.stream_id:<{width}}  {first}")
        for line in rest:
            print(f"{'':>4}  {'':>6}  {'':<{width}}  {line}")
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _wrap(text: str) -> str:
    return textwrap.fill(text, 90)


def register(subparsers) -> None:
    """Add ``evoembedding index`` and ``evoembedding search``."""
    index = subparsers.add_parser(
        "index",
        help=INDEX_HELP,
        description=_wrap(
            "Read chat exports into a store saved in --store, one stream per conversation, each "
            "read in order with its own memory. PATH is a JSON / JSONL file of {role, content[, timestamp]} "
            "messages (one conversation, its stream named after the file), a LoCoMo-style chat, an EvoTrain "
            "file, or a folder of such files. Indexing into an existing store adds to it."
        ),
        epilog=INDEX_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    index.add_argument("path", metavar="PATH", help="a .json / .jsonl file, or a folder of them (one stream each)")
    index.add_argument("--store", required=True, metavar="DIR", help="the store's directory (created, or added to)")
    index.add_argument(
        "--unit",
        choices=("message", "pair"),
        default="message",
        help="one segment per message (default), or a user message and its reply as one segment",
    )
    index.add_argument(
        "--replace",
        action="store_true",
        help="re-read streams the store already has from their start, instead of adding to their end",
    )
    index.add_argument("--model", default=None, help="model directory or id (default: the shipped model)")
    index.add_argument(
        "--workers",
        type=_positive,
        default=None,
        metavar="N",
        help="ingest on N Ray workers (one model each; needs `pip install evoembedding[ray]`) into a durable "
        "store in DIR; running it again resumes: complete streams are skipped, cut-short ones continued",
    )
    index.add_argument("--no-progress", action="store_true", help="no progress bar")
    index.set_defaults(func=_index)

    search = subparsers.add_parser(
        "search",
        help=SEARCH_HELP,
        description=_wrap(
            "Rank the segments of a saved store for a question and print the best: rank, score, "
            "stream and text (or one JSON object per line with --json). By default the question is "
            "read without any stream's memory (right for questions about any point of a finished "
            "history) and the vector ranking is fused with BM25 over the texts (scores are fusion "
            "scores); --no-hybrid gives the vector ranking alone, with cosine similarities."
        ),
        epilog=SEARCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    search.add_argument("store", metavar="DIR", help="a store built by `evoembedding index`")
    search.add_argument("question", help="what to look for")
    search.add_argument("-k", type=_positive, default=5, help="how many hits (default 5)")
    search.add_argument(
        "--stream",
        action="append",
        metavar="ID",
        default=None,
        help="search only this stream (repeat for several; default: all)",
    )
    search.add_argument("--json", action="store_true", help="one JSON object per hit and line")
    search.add_argument(
        "--hybrid",
        action=argparse.BooleanOptionalAction,
        default=defaults.HYBRID,
        help="fuse the vector ranking with BM25 by reciprocal rank (scores are then fusion scores, "
        f"about 0.03 at the top; default: {'on' if defaults.HYBRID else 'off'})",
    )
    search.add_argument(
        "--query-memory",
        action=argparse.BooleanOptionalAction,
        default=defaults.QUERY_MEMORY,
        help=f"read the question over each stream's memory (default: {'on' if defaults.QUERY_MEMORY else 'off'})",
    )
    search.add_argument("--model", default=None, help="the model the store was built with (default: the shipped one)")
    search.set_defaults(func=_search)
