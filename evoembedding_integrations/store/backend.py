"""The seam between the store and durable storage: every mutation as one :class:`Change`.

:class:`~evoembedding_integrations.store.EvoStore` keeps what it searches in memory (records,
FAISS indexes, stream memories). Each mutating call (``add``, ``delete``, ``delete_stream``,
``clear``) is first described as one :class:`Change` and handed to the store's backend; only if
``apply`` returns is the change applied in memory. A backend that raises therefore leaves the
store exactly as it was, in memory and on disk.

:class:`MemoryBackend`, the default, keeps nothing: durability comes from explicit snapshots
(``EvoStore.save`` / ``EvoStore.load``, see :mod:`.format`). The durable backend,
:class:`~.sqlite_backend.SQLiteBackend` (one SQLite database per store, one transaction per
change), implements :class:`Backend`: ``apply`` commits a change before returning (or raises
``StaleStore`` when another writer committed first, and the store catches up and plans again), and
``open`` returns the streams to build the in-memory store from, in the same
:class:`~.format.StreamSnapshot` form that snapshots use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .format import StreamSnapshot


@dataclass(frozen=True)
class AddedEntry:
    """One text an ``add`` stores: where it goes and its unit vector (d,)."""

    id: str
    stream_id: str
    position: int
    text: str
    metadata: dict
    vector: np.ndarray


@dataclass(frozen=True)
class Change:
    """One mutating call, applied all or nothing.

    Attributes:
        added: The entries an ``add`` stores, in input order.
        removed: Ids of the entries removed (deleted, or replaced by ``added`` under the same id).
        lengths: The new length of every stream the change extends (new streams included).
        memories: The advanced memory of every stream an ``add`` read (EvoEmbedding mode; turn it
            into arrays with the encoder's ``memory_state``).
        dropped_streams: Streams removed with everything in them.
        cleared: Everything is removed (the other fields are then empty).
    """

    added: tuple[AddedEntry, ...] = ()
    removed: tuple[str, ...] = ()
    lengths: Mapping[str, int] = field(default_factory=dict)
    memories: Mapping[str, Any] = field(default_factory=dict)
    dropped_streams: tuple[str, ...] = ()
    cleared: bool = False


class Backend(Protocol):
    """Where a store's changes are made durable."""

    def open(self) -> list[StreamSnapshot]:
        """The streams stored so far, to build the in-memory store from (creation order)."""

    def apply(self, change: Change) -> None:
        """Make ``change`` durable before returning; raise (changing nothing) if it cannot be."""


class MemoryBackend:
    """No durable layer: changes live in memory until ``EvoStore.save`` writes a snapshot."""

    def open(self) -> list[StreamSnapshot]:
        return []

    def apply(self, change: Change) -> None:
        return None
