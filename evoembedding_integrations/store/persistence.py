"""How an :class:`~.EvoStore` persists: durable (a database it writes on every change) or snapshots.

* **Durable** (``EvoStore(path=...)`` / :meth:`Persistence.open`): the store's directory holds an
  SQLite database (:mod:`.sqlite_backend`); every mutating call commits one transaction before it
  returns, and every call first catches up with what other processes (or other store objects)
  committed. A directory saved in the snapshot format is imported on first open (migration).
* **Snapshots** (:meth:`Persistence.save` / :meth:`Persistence.load`): export and import of a
  verified, atomic directory (:mod:`.format`), as the LangChain and LlamaIndex integrations use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .. import defaults
from . import format as fmt
from .backend import Change, MemoryBackend
from .encoders import check_mode
from .records import CorruptStoreError, ModelMismatchError
from .sqlite_backend import SQLiteBackend, StaleStore, StorageError, database_path

if TYPE_CHECKING:
    from evoembedding_core import EvoEmbeddingModel

MAX_COMMIT_ATTEMPTS = 10_000
"""How often a write is re-planned because other writers committed first, before giving up."""


def stored_header(directory: Path) -> dict:
    """The header of the store in ``directory``: its database's, else its snapshot's manifest.

    Raises:
        FileNotFoundError: Neither is there.
        CorruptStoreError: The header is unreadable.
    """
    if database_path(directory).exists() or database_path(directory).is_symlink():
        backend = SQLiteBackend(directory, lambda memory: None, create=False)
        try:
            header = backend.header()
        finally:
            backend.close()
        if header is None:
            raise FileNotFoundError(f"the store in {directory} is still being created")
        return header
    manifest = fmt.read_manifest(directory)
    if not isinstance(manifest, dict) or manifest.get("mode") not in fmt.MODES:
        raise CorruptStoreError(f"{fmt.MANIFEST} is not an {fmt.FORMAT} manifest")
    return manifest


class Persistence:
    """The persistence half of :class:`~.EvoStore` (durable database, snapshots, catching up)."""

    @property
    def durable(self) -> bool:
        """Whether every change is committed to the store's database before the call returns."""
        return self.path is not None

    # ------------------------------------------------------------------ durable
    def _attach(self, directory: Path, check_embedder: bool) -> None:
        """Open (or create) the database in ``directory`` and load what it holds."""
        if directory.exists() and not directory.is_dir():
            raise ValueError(f"{directory} is not a directory")
        backend = SQLiteBackend(directory, self._encoder.memory_state, create=True)
        try:
            header = backend.header()
            if header is None and fmt.has_manifest(directory):  # a snapshot saved before: migrate it
                manifest, document, arrays = fmt.read_verified(directory)
                check_mode(manifest, self.embeddings)
                self._encoder.check_identity(manifest, strict=check_embedder)
                self._restore(manifest, document, arrays)
                header = self._try_create(backend)
            elif header is None:
                header = self._try_create(backend)
            if header is not None:  # an existing database (or another process created it first)
                check_mode(header, self.embeddings)
                self._encoder.check_identity(header, strict=check_embedder)
                dim = fmt.manifest_dim(header)
                if self._encoder.dim is not None and dim not in (None, self._encoder.dim):
                    raise ModelMismatchError(f"store holds {dim}-d vectors, the model makes {self.dim}-d ones")
                self._state.apply(Change(cleared=True))
                self.dim = dim if dim is not None else self._encoder.dim
                snapshots = backend.open()  # read after the header: another process may have added since
                if self.dim is None:
                    self.dim = next((int(s.vectors.shape[1]) for s in snapshots if len(s.vectors)), None)
                for n, snapshot in enumerate(snapshots):
                    self._install(n, snapshot)
        except BaseException:
            backend.close()
            raise
        self._backend, self.path = backend, directory

    def _try_create(self, backend: SQLiteBackend) -> dict | None:
        """Write this (new or migrated) store into an empty database; ``None`` when done, else the
        header another process wrote first."""
        try:
            backend.replace_all(self._db_header(), self._state.snapshots(self._encoder.memory_state), only_if_new=True)
            return None
        except StaleStore:
            return backend.header()

    def _db_header(self) -> dict:
        return {k: v for k, v in self._header().items() if k != "entries"}

    def _sync(self, force: bool = False) -> None:
        """Catch up with changes other connections committed (under the lock; cheap when none)."""
        if self.path is None or not (force or self._backend.stale()):
            return
        replayed = self._backend.changes_since()
        if replayed.dim is not None and self.dim not in (None, replayed.dim):
            raise CorruptStoreError(f"the database holds {replayed.dim}-d vectors, the store {self.dim}-d ones")
        self.dim = self.dim or replayed.dim
        try:
            self._state.replay(replayed.changes, replayed.streams, self._encoder.restore_memory)
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptStoreError(f"a change read from the database is invalid: {exc}") from None
        self._backend.seq = replayed.seq

    def _commit(self, plan) -> None:
        """Catch up, plan a change (``plan()``; ``None``: nothing to do) and apply it, again and
        again while other writers commit first (under the lock)."""
        force = False
        for _ in range(MAX_COMMIT_ATTEMPTS):
            self._sync(force)
            change = plan()
            if change is None:
                return
            try:
                self._apply(change)
                return
            except StaleStore:
                force = True
        raise StorageError(f"gave up after {MAX_COMMIT_ATTEMPTS} attempts: other writers kept committing first")

    def _apply(self, change: Change) -> None:
        """The one place the store changes (under the lock): the backend first, then memory."""
        if self.path is not None:
            header = self._db_header() if change.added and self.dim is None else None
            if header is not None:
                header["dim"] = len(change.added[0].vector)
            self._backend.apply(change, header)
        else:
            self._backend.apply(change)
        if change.added and self.dim is None:
            self.dim = len(change.added[0].vector)
        self._state.apply(change)

    def close(self) -> None:
        """Close the store's database (a durable store then raises ``StorageError`` on every later call)."""
        with self._lock:
            if self.path is not None:
                self._backend.close()

    def checkpoint(self) -> None:
        """Fold a durable store's write-ahead log into its database file (SQLite also does it by itself)."""
        with self._lock:
            if self.path is not None:
                self._backend.checkpoint()

    # ------------------------------------------------------------------ snapshots
    def save(self, directory: str | os.PathLike) -> Path:
        """Write the store to ``directory`` atomically.

        * ``directory`` is this durable store's own path: everything is already committed; the
          write-ahead log is folded into the database.
        * ``directory`` holds a durable store's database: its content is replaced by this store's,
          in one transaction (how ``EvoAgentMemory(autosave=False).save()`` writes).
        * Otherwise: a verified snapshot (see :mod:`.format`).

        Returns:
            The directory.

        Raises:
            ValueError: ``directory`` exists and is not a directory.
            OSError: Writing failed (the previous save, if any, is still complete).
        """
        directory = Path(directory)
        with self._save_lock:
            with self._lock:
                self._sync()
                if self.path is not None and _same_path(directory, self.path):
                    self._backend.checkpoint()
                    return directory
                snapshots = self._state.snapshots(self._encoder.memory_state)
                header = self._header()
            if database_path(directory).exists():
                backend = SQLiteBackend(directory, self._encoder.memory_state, create=False)
                try:
                    backend.replace_all({k: v for k, v in header.items() if k != "entries"}, snapshots)
                finally:
                    backend.close()
                return directory
            document, arrays = fmt.encode_snapshot(header, snapshots)
            directory.mkdir(parents=True, exist_ok=True)
            if not directory.is_dir() or directory.is_symlink():
                raise ValueError(f"{directory} is not a directory")
            fmt.write_snapshot(directory, document, arrays)
        return directory

    def _header(self) -> dict:
        return {
            "mode": self.mode,
            **self._encoder.identity(),
            "dim": self.dim,
            "index": {"kind": self.index_kind, "hnsw_threshold": self.hnsw_threshold},
            "entries": len(self._entries),
        }

    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        model: EvoEmbeddingModel | str | os.PathLike | None = None,
        *,
        embeddings=None,
        index: str | None = None,
        query_memory: bool = defaults.QUERY_MEMORY,
        hybrid: bool = defaults.HYBRID,
        check_embedder: bool = True,
        lexical_scope: str = "store",
        long_texts: str = defaults.LONG_TEXTS,
    ):
        """Open an existing durable store (or a saved snapshot, which is then made durable in place).

        Args:
            path: The store's directory.
            model: For an EvoEmbedding store, the model that wrote it (default: the shipped one).
            embeddings: For a plain store, its embedder.
            index: Override the stored index kind (``"flat"`` or ``"hnsw"``).
            query_memory: As in :class:`EvoStore`.
            hybrid: As in :class:`EvoStore`.
            check_embedder: Check that a plain store's embedder is the one that wrote it.
            lexical_scope: As in :class:`EvoStore`.
            long_texts: As in :class:`EvoStore`.

        Returns:
            The durable store.

        Raises:
            FileNotFoundError: No store there.
            CorruptStoreError: The database or snapshot is damaged, unsafe or of another version.
            ModelMismatchError: Written by another model or embedder, or the wrong kind was given.
        """
        header = stored_header(Path(path))
        check_mode(header, embeddings)
        kind, threshold = fmt.index_options(header, index)
        evo = header["mode"] == "evo"
        return cls(
            model if evo else None,
            embeddings=embeddings,
            index=kind,
            hnsw_threshold=threshold,
            query_memory=query_memory,
            hybrid=hybrid,
            path=path,
            check_embedder=check_embedder,
            lexical_scope=lexical_scope,
            long_texts=long_texts,
        )

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike,
        model: EvoEmbeddingModel | str | os.PathLike | None = None,
        *,
        embeddings=None,
        index: str | None = None,
        query_memory: bool = defaults.QUERY_MEMORY,
        hybrid: bool = defaults.HYBRID,
        check_embedder: bool = True,
        lexical_scope: str = "store",
        long_texts: str = defaults.LONG_TEXTS,
    ):
        """Load a store into memory, verifying it first (nothing in it is ever executed).

        ``directory`` is a snapshot written by :meth:`save`, or a durable store's directory (its
        database is read; the loaded copy is not durable: use :meth:`open` for that).

        Args:
            directory: The saved store.
            model: For an EvoEmbedding store, the model that wrote it (default: the shipped one).
            embeddings: For a plain store, its embedder.
            index: Override the saved index kind (``"flat"`` or ``"hnsw"``).
            query_memory: As in :class:`EvoStore`.
            hybrid: As in :class:`EvoStore`.
            check_embedder: Check that a plain store's embedder is the one that wrote it.
            lexical_scope: As in :class:`EvoStore`.
            long_texts: As in :class:`EvoStore`.

        Returns:
            The store.

        Raises:
            FileNotFoundError: No saved store there.
            CorruptStoreError: The files are unsafe, damaged, inconsistent or of another version.
            ModelMismatchError: Written by another model, or the wrong kind of encoder was given.
        """
        directory = Path(directory)
        options = dict(
            index=index,
            query_memory=query_memory,
            hybrid=hybrid,
            check_embedder=check_embedder,
            lexical_scope=lexical_scope,
            long_texts=long_texts,
        )
        if database_path(directory).exists() or database_path(directory).is_symlink():
            store = cls.open(directory, model, embeddings=embeddings, **options)
            with store._lock:
                store._backend.close()
                store._backend, store.path = MemoryBackend(), None
            return store
        manifest, document, arrays = fmt.read_verified(directory)
        check_mode(manifest, embeddings)
        kind, threshold = fmt.index_options(manifest, index)
        store = cls(
            model if manifest["mode"] == "evo" else None,
            embeddings=embeddings,
            index=kind,
            hnsw_threshold=threshold,
            query_memory=query_memory,
            hybrid=hybrid,
            lexical_scope=lexical_scope,
            long_texts=long_texts,
        )
        store._encoder.check_identity(manifest, strict=check_embedder)
        store._restore(manifest, document, arrays)
        return store

    def _restore(self, manifest: dict, document: dict, arrays) -> None:
        dim = fmt.manifest_dim(manifest)
        if self._encoder.dim is not None and dim not in (None, self.dim):
            raise ModelMismatchError(f"store holds {dim}-d vectors, the model makes {self.dim}-d ones")
        self.dim = dim
        with_memory = self.mode == "evo"
        for n, snapshot in enumerate(fmt.decode_streams(manifest, document, arrays, dim=dim, with_memory=with_memory)):
            self._install(n, snapshot)

    def _install(self, n: int, snapshot) -> None:
        try:
            self._state.install(snapshot, self._encoder.restore_memory(snapshot.memory))
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptStoreError(f"stream #{n} is invalid: {exc}") from None


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False
