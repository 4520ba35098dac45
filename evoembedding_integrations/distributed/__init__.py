"""Scale-out: many conversations ingested in parallel on Ray workers into one durable store.

See :mod:`.ray_ingest` (``ingest_conversations``) and ``docs/scale-out.md``. Nothing here imports
Ray until a parallel ingest runs (``pip install "evoembedding[ray]"``).
"""

from .ray_ingest import (
    ADD_BATCH,
    Conversation,
    IngestError,
    IngestReport,
    IngestWorker,
    conversations_of,
    entry_id,
    ingest_conversations,
    ingest_serial,
    ingest_stream,
    worker_names,
)

__all__ = [
    "ADD_BATCH",
    "Conversation",
    "IngestError",
    "IngestReport",
    "IngestWorker",
    "conversations_of",
    "entry_id",
    "ingest_conversations",
    "ingest_serial",
    "ingest_stream",
    "worker_names",
]
