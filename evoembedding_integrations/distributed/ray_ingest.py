"""Parallel ingest on Ray: many conversations, one model per worker, one durable store.

Each conversation is one stream, read in order with its own memory, and streams are independent
of each other, so ingest parallelises by stream: :func:`ingest_conversations` starts
``num_workers`` Ray actors (:class:`IngestWorker`), each of which loads the model once and opens
the durable store, and hands them whole conversations. A stream is given to one worker at a time
and to another only after that worker finished it or died, so two workers never write to one
stream at once. Each worker commits every :data:`ADD_BATCH` texts to the store (one transaction
each, through ``EvoStore.add``).

**Resume** is exact: before writing a stream, a worker reads how many texts the store already holds
for it (the store keeps each stream's length and memory state). A stream already complete is
skipped; a stream cut short by a killed worker continues from its stored length and memory, so
nothing is read twice and nothing is lost. Entry ids are deterministic (:func:`entry_id`: the
stream id and the text's position), so a re-run writes the same ids. If a worker dies during a
run, its unfinished streams go to a fresh worker (``max_retries`` times per stream).

**Single writer per stream**: within a run, the assignment above; across runs and processes on one
machine, a per-stream file lock in the store's directory (``.ingest-locks/``) held while a
worker checks a stream's length and writes it, so a second ingest of the same stream waits, then
sees it complete. See ``docs/scale-out.md`` for a cluster.

>>> report = ingest_conversations({"ana": ["Hi, I'm Ana.", "I moved to Oslo."]}, "chats")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ADD_BATCH = 32
"""Texts per ``EvoStore.add`` (one committed transaction) while a stream is ingested. Batches are
aligned to stream positions, so a resumed stream is cut exactly where a serial ingest cuts it."""
IN_FLIGHT = 2
"""Conversations queued on each worker at once (one runs, one waits), so no worker idles."""
LOCK_BUCKETS = 1024
"""Lock files a store's streams are hashed into (two streams sharing one only wait for each other)."""
LOCK_DIR = ".ingest-locks"


@dataclass(frozen=True)
class Conversation:
    """One stream to ingest: its id, its texts in order and, optionally, one metadata dict per text."""

    stream_id: str
    texts: tuple[str, ...]
    metadatas: tuple[dict, ...] | None = None

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class IngestReport:
    """What an ingest did.

    Attributes:
        streams: Conversations given.
        new: Streams written from their start.
        resumed: Streams the store held part of, continued from their stored length.
        skipped: Streams the store already held completely.
        texts: Texts embedded and stored by this run.
        retries: Conversations handed to another worker after theirs died or failed.
        failed: ``stream id -> error`` of the conversations given up on.
        workers: Workers used (0: in this process).
        seconds: Wall-clock time.
        startup_seconds: Of which starting the workers (each loading the model and opening the store).
    """

    streams: int = 0
    new: int = 0
    resumed: int = 0
    skipped: int = 0
    texts: int = 0
    retries: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    workers: int = 0
    seconds: float = 0.0
    startup_seconds: float = 0.0

    @property
    def texts_per_second(self) -> float:
        """Texts stored per second of wall-clock time."""
        return self.texts / self.seconds if self.seconds > 0 else 0.0

    @property
    def steady_texts_per_second(self) -> float:
        """Texts stored per second once the workers were started."""
        busy = self.seconds - self.startup_seconds
        return self.texts / busy if busy > 0 else 0.0

    def count(self, status: str, added: int) -> None:
        """Count one finished stream (``status``: ``new``, ``resumed`` or ``skipped``)."""
        setattr(self, status, getattr(self, status) + 1)
        self.texts += added


class IngestError(RuntimeError):
    """Some conversations could not be ingested (``report.failed``); the others are stored."""

    def __init__(self, report: IngestReport) -> None:
        shown = "; ".join(f"{sid}: {error}" for sid, error in list(report.failed.items())[:3])
        super().__init__(f"{len(report.failed)} conversation(s) not ingested (run again to resume): {shown}")
        self.report = report


# ---------------------------------------------------------------------------------------------- input
def entry_id(stream_id: str, position: int) -> str:
    """The id an ingest gives the text at ``position`` of ``stream_id``: ``"<stream_id>#<position>"``."""
    return f"{stream_id}#{position}"


def conversations_of(source, *, unit: str = "message") -> list[Conversation]:
    """The conversations in ``source``, checked (non-empty texts, unique string stream ids).

    Args:
        source: ``{stream_id: [texts]}``; an iterable of ``(stream_id, texts)`` or
            ``(stream_id, texts, metadatas)`` pairs, of :class:`Conversation` /
            ``cli.ExportedConversation`` objects or of ``{"stream_id", "texts"[, "metadatas"]}``
            rows (a Ray Dataset of such rows too); or a chat-export file or folder (read by
            :func:`evoembedding_integrations.cli.read_conversations`).
        unit: For chat exports: ``"message"`` or ``"pair"`` (see ``read_conversations``).

    Raises:
        TypeError: An item is none of the above, a stream id is not a string, a text not a string.
        ValueError: A conversation has no texts, its metadatas do not match its texts, or two
            conversations share a stream id.
    """
    if isinstance(source, (str, os.PathLike)):
        from ..cli import read_conversations

        source = read_conversations(source, unit=unit)
    elif isinstance(source, Mapping):
        source = source.items()
    elif hasattr(source, "iter_rows"):  # a Ray Dataset
        source = source.iter_rows()
    out, seen = [], set()
    for item in source:
        conversation = _conversation(item)
        if conversation.stream_id in seen:
            raise ValueError(f"two conversations share the stream id {conversation.stream_id!r}")
        seen.add(conversation.stream_id)
        out.append(conversation)
    return out


def _conversation(item) -> Conversation:
    if isinstance(item, Conversation):
        sid, texts, metadatas = item.stream_id, item.texts, item.metadatas
    elif isinstance(item, Mapping) and "stream_id" in item:
        sid, texts, metadatas = item["stream_id"], item.get("texts"), item.get("metadatas")
    elif hasattr(item, "stream_id") and hasattr(item, "texts"):
        sid, texts, metadatas = item.stream_id, item.texts, getattr(item, "metadatas", None)
    elif isinstance(item, tuple) and len(item) in (2, 3):
        sid, texts, metadatas = (*item, None)[:3]
    else:
        raise TypeError(f"not a conversation: {type(item).__name__} (give (stream_id, texts) pairs or a mapping)")
    if not isinstance(sid, str) or not sid:
        raise TypeError(f"a stream id must be a non-empty string, got {sid!r}")
    if isinstance(texts, str) or not isinstance(texts, Iterable):
        raise TypeError(f"conversation {sid!r}: texts must be a list of strings")
    texts = tuple(texts)
    if not texts:
        raise ValueError(f"conversation {sid!r} has no texts")
    if not all(isinstance(t, str) for t in texts):
        raise TypeError(f"conversation {sid!r}: every text must be a string")
    if metadatas is not None:
        metadatas = tuple(metadatas)
        if len(metadatas) != len(texts):
            raise ValueError(f"conversation {sid!r}: {len(metadatas)} metadatas for {len(texts)} texts")
    return Conversation(sid, texts, metadatas)


# ---------------------------------------------------------------------------------------------- one stream
def open_store(store, model=None, store_options: Mapping[str, Any] | None = None):
    """The store to write to: an ``EvoStore`` as is, a factory's store, or the durable store at a path."""
    from ..store import EvoStore

    if isinstance(store, EvoStore):
        return store
    if callable(store):
        return store()
    return EvoStore(model, path=store, **dict(store_options or {}))


def stored_length(store, stream_id: str) -> int:
    """How many texts ``store`` has read into ``stream_id`` (0 for a new stream), after catching up
    with what other processes committed."""
    with store._lock:  # the store's stream counter has no public accessor yet
        store._sync()
        stream = store._streams.get(stream_id)
        return 0 if stream is None else stream.length


@contextmanager
def stream_lock(store_path: Path | None, stream_id: str):
    """Hold the store-directory file lock of ``stream_id`` (a no-op for a store without a directory)."""
    if store_path is None:
        yield
        return
    import fcntl

    bucket = int.from_bytes(hashlib.sha256(stream_id.encode("utf-8", "surrogatepass")).digest()[:8], "big")
    directory = Path(store_path) / LOCK_DIR
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / f"{bucket % LOCK_BUCKETS:04d}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock (and the kernel releases it if this process dies)


def ingest_stream(store, conversation: Conversation, *, batch: int = ADD_BATCH, lock_path=None) -> tuple[str, int]:
    """Write one conversation into ``store``, continuing from what it already holds.

    Returns:
        ``(status, texts added)``; status ``"new"``, ``"resumed"`` or ``"skipped"``.

    Raises:
        ValueError: The store's stream is longer than the conversation, or holds other texts.
    """
    sid, texts, metadatas = conversation.stream_id, conversation.texts, conversation.metadatas
    with stream_lock(lock_path, sid):
        length = stored_length(store, sid)
        if length > len(texts):
            raise ValueError(f"stream {sid!r}: the store holds {length} texts, the conversation {len(texts)}")
        for record in store.get([entry_id(sid, p) for p in range(length)]):
            if record.stream_id == sid and record.text != texts[record.position]:
                raise ValueError(f"stream {sid!r}: text {record.position} in the store differs from the conversation's")
        start = length
        while start < len(texts):
            end = min((start // batch + 1) * batch, len(texts))
            store.add(
                list(texts[start:end]),
                stream_id=sid,
                ids=[entry_id(sid, p) for p in range(start, end)],
                metadatas=None if metadatas is None else list(metadatas[start:end]),
                progress=False,
            )
            start = end
    status = "skipped" if length == len(texts) else "resumed" if length else "new"
    return status, len(texts) - length


class IngestWorker:
    """One ingest worker (a Ray actor in :func:`ingest_conversations`): one model, one store handle.

    Args:
        store: The durable store's directory, or a picklable factory returning the ``EvoStore``.
        model: The model (name, directory or ``None`` for the shipped one), loaded once here.
        batch: See :data:`ADD_BATCH`.
        store_options: More ``EvoStore`` arguments (with a directory).
    """

    def __init__(self, store, model=None, batch: int = ADD_BATCH, store_options: Mapping | None = None) -> None:
        self.lock_path = None if callable(store) else Path(store)
        self.store, self.batch = open_store(store, model, store_options), batch

    def ready(self) -> int:
        """The process id, once the model is loaded and the store open."""
        return os.getpid()

    def ingest(self, conversation: Conversation) -> tuple[str, str, int]:
        """Ingest one conversation: ``(stream id, status, texts added)`` (see :func:`ingest_stream`)."""
        status, added = ingest_stream(self.store, conversation, batch=self.batch, lock_path=self.lock_path)
        return conversation.stream_id, status, added


# ---------------------------------------------------------------------------------------------- drivers
def ingest_serial(
    conversations,
    store,
    *,
    model=None,
    unit: str = "message",
    batch: int = ADD_BATCH,
    progress: bool = True,
    store_options: Mapping | None = None,
) -> IngestReport:
    """Ingest in this process, one conversation after another (the reference a parallel run equals).

    Args:
        conversations: See :func:`conversations_of`.
        store: An ``EvoStore``, a durable store's directory or a factory returning a store.
        model: With a directory: the model (default: the shipped one).
        unit: See :func:`conversations_of`.
        batch: See :data:`ADD_BATCH`.
        progress: A progress bar over finished streams.
        store_options: More ``EvoStore`` arguments (with a directory).

    Returns:
        What was done.
    """
    from tqdm.auto import tqdm

    conversations, started = conversations_of(conversations, unit=unit), time.perf_counter()
    lock_path = Path(store) if isinstance(store, (str, os.PathLike)) else None
    target, report = open_store(store, model, store_options), IngestReport(streams=len(conversations))
    with tqdm(total=len(conversations), desc="ingesting", unit="stream", disable=not progress) as bar:
        for conversation in conversations:
            report.count(*ingest_stream(target, conversation, batch=batch, lock_path=lock_path))
            bar.update()
    report.seconds = time.perf_counter() - started
    return report


def ingest_conversations(
    conversations,
    store_path,
    *,
    num_workers: int = 2,
    model=None,
    progress: bool = True,
    address: str | None = None,
    unit: str = "message",
    batch: int = ADD_BATCH,
    cpus_per_worker: float = 1,
    max_retries: int = 2,
    store_options: Mapping | None = None,
) -> IngestReport:
    """Ingest many conversations on Ray workers into one durable store (see the module docstring).

    Args:
        conversations: ``{stream_id: [texts]}``, ``(stream_id, texts)`` pairs, rows, or a chat-export
            file or folder (see :func:`conversations_of`).
        store_path: The durable store's directory (every worker must reach it: one machine, or a
            factory for a shared database such as
            :func:`~evoembedding_integrations.store.qdrant_backend.open_qdrant_store`).
        num_workers: Ray worker actors (each loads one model); 0: in this process, no Ray.
        model: The model name or directory (``None``: the shipped one), loaded by each worker.
        progress: A progress bar over finished streams.
        address: The Ray cluster to connect to when Ray is not initialised yet (``None``: a local
            one on this machine; ``"auto"``: the cluster this machine belongs to).
        unit: For chat exports (see :func:`conversations_of`).
        batch: See :data:`ADD_BATCH`.
        cpus_per_worker: CPUs Ray reserves for each worker.
        max_retries: How often a conversation is handed to a fresh worker after a worker died or failed.
        store_options: More ``EvoStore`` arguments (index, hybrid, ...).

    Returns:
        What was done.

    Raises:
        IngestError: Some conversations failed more than ``max_retries`` times; the rest are stored,
            and running the same ingest again resumes them.
        ImportError: Ray is not installed (``pip install "evoembedding[ray]"``).
    """
    if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 0:
        raise ValueError(f"num_workers must be a non-negative integer, got {num_workers!r}")
    conversations = conversations_of(conversations, unit=unit)
    options = dict(model=model, batch=batch, store_options=store_options)
    if num_workers == 0:
        return ingest_serial(conversations, store_path, progress=progress, **options)
    import ray

    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        return _run(ray, conversations, store_path, min(num_workers, len(conversations)), progress, cpus_per_worker,
                    max_retries, options)  # fmt: skip
    finally:
        if started_ray:
            ray.shutdown()


def _run(ray, conversations, store_path, num_workers, progress, cpus, max_retries, options) -> IngestReport:
    from ray.exceptions import RayActorError, RayTaskError
    from tqdm.auto import tqdm

    started, report = time.perf_counter(), IngestReport(streams=len(conversations), workers=num_workers)
    store = store_path if callable(store_path) else str(Path(store_path).resolve())
    remote = ray.remote(num_cpus=cpus, max_restarts=0)(IngestWorker)
    run = uuid.uuid4().hex[:8]
    spawned = 0

    def spawn():
        nonlocal spawned
        spawned += 1
        return remote.options(name=f"evoembedding-ingest-{run}-{spawned}").remote(store, **options)

    workers = [spawn() for _ in range(num_workers)]
    try:
        ray.get([worker.ready.remote() for worker in workers])
    except RayActorError:
        pass  # a worker that died while starting is replaced when its first conversation fails
    report.startup_seconds = time.perf_counter() - started
    generation = [0] * num_workers
    queue = deque(sorted(conversations, key=len, reverse=True))  # longest first: shorter tail
    in_flight: dict[Any, tuple[int, int, Conversation]] = {}
    queued, attempts = [0] * num_workers, {}

    def submit(slot: int) -> None:
        while queue and queued[slot] < IN_FLIGHT:
            conversation = queue.popleft()
            in_flight[workers[slot].ingest.remote(conversation)] = (slot, generation[slot], conversation)
            queued[slot] += 1

    with tqdm(total=len(conversations), desc="ingesting", unit="stream", disable=not progress) as bar:
        for slot in range(num_workers):
            submit(slot)
        while in_flight:
            (ref,), _ = ray.wait(list(in_flight), num_returns=1)
            slot, gen, conversation = in_flight.pop(ref)
            if gen == generation[slot]:
                queued[slot] -= 1
            try:
                _, status, added = ray.get(ref)
                report.count(status, added)
                bar.update()
            except (RayActorError, RayTaskError) as exc:
                died = isinstance(exc, RayActorError)
                if died and gen == generation[slot]:  # replace the dead worker (once)
                    workers[slot], generation[slot], queued[slot] = spawn(), gen + 1, 0
                sid = conversation.stream_id
                attempts[sid] = attempts.get(sid, 0) + 1
                if attempts[sid] > max_retries:
                    report.failed[sid] = _reason(exc)
                    bar.update()
                else:  # the worker that had it is dead or done with it: nobody writes it now
                    report.retries += 1
                    queue.appendleft(conversation)
            submit(slot)
            for other in range(num_workers):
                submit(other)
    for worker in workers:
        ray.kill(worker)
    report.seconds = time.perf_counter() - started
    if report.failed:
        raise IngestError(report)
    return report


def _reason(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)
    text = f"{type(cause).__name__}: {cause}" if cause is not None else f"{type(exc).__name__}: {exc}"
    return text.splitlines()[0][:300] if text else type(exc).__name__


def worker_names(prefix: str = "evoembedding-ingest-") -> list[str]:
    """Names of the ingest workers alive in the connected Ray cluster (to watch or stop one)."""
    import ray

    return [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith(prefix)]
