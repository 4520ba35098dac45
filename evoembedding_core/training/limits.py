"""Per-sample caps of EvoTrain data, importable without numpy or torch (``evoembedding train --help``)."""

from __future__ import annotations

MAX_TOKENS = 12 * 1024
"""Most tokens per training sample (the oldest segments are dropped beyond it)."""
MAX_SEGMENTS = 256
"""Most segments per training sample."""
