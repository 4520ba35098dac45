"""EvoStore: a persistent FAISS store of many streams, each read with its own EvoEmbedding memory.

Shared by the LangChain and LlamaIndex integrations and the agent memory.

>>> from evoembedding_integrations.store import EvoStore
>>> store = EvoStore()                                                    # doctest: +SKIP
>>> store.add(["Ana: I grew up in Porto.", "Ana: Last year I moved to Oslo."], stream_id="ana")
>>> store.search("Where does Ana live now?", k=1)[0].text                  # doctest: +SKIP

The package, one concept per module:

* :mod:`.evo_store`: :class:`EvoStore` (streams, ids, add / get / delete, search, MMR).
* :mod:`.persistence`: durable stores (``EvoStore(path=...)``, ``EvoStore.open``), catching up with
  other processes, snapshots (``save`` / ``load``).
* :mod:`.sqlite_backend`: :class:`SQLiteBackend`, the durable layer (one SQLite database per store,
  one transaction per change).
* :mod:`.writing`: the write path (embedding outside the lock, per-stream order, progress).
* :mod:`.encoders`: the EvoEmbedding and plain-embedder encoders behind one interface; the
  process-wide model cache (:func:`resolve_model`).
* :mod:`.index`: the FAISS index of one stream (flat / HNSW), vector normalising, MMR selection.
* :mod:`.filters`: the metadata-filter language (:func:`compile_filter`), documented there.
* :mod:`.hybrid`: BM25 over the texts and reciprocal rank fusion.
* :mod:`.format`: the saved-store format, its verified reader and atomic writer.
* :mod:`.backend`: every mutation as one ``Change``, the seam for a durable storage layer.
* :mod:`.records`: :class:`Record`, :class:`Hit`, the errors, metadata rules.
"""

from .backend import Backend, Change, MemoryBackend
from .encoders import Encoder, EvoEncoder, PlainEncoder, model_lock, resolve_model
from .evo_store import DEFAULT_STREAM, EvoStore
from .filters import MAX_FILTER_DEPTH, OPERATORS, compile_filter
from .format import FORMAT, FORMAT_VERSION, MANIFEST, MAX_MANIFEST_BYTES
from .records import MAX_METADATA_BYTES, MAX_METADATA_DEPTH, CorruptStoreError, Hit, ModelMismatchError, Record
from .sqlite_backend import DATABASE, SQLiteBackend, StorageError

__all__ = [
    "DATABASE",
    "DEFAULT_STREAM",
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "MAX_FILTER_DEPTH",
    "MAX_MANIFEST_BYTES",
    "MAX_METADATA_BYTES",
    "MAX_METADATA_DEPTH",
    "OPERATORS",
    "Backend",
    "Change",
    "CorruptStoreError",
    "Encoder",
    "EvoEncoder",
    "EvoStore",
    "Hit",
    "MemoryBackend",
    "ModelMismatchError",
    "PlainEncoder",
    "Record",
    "SQLiteBackend",
    "StorageError",
    "compile_filter",
    "model_lock",
    "resolve_model",
]
