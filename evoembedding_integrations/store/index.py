"""Vector search for one stream: the FAISS index wrapper, vector normalising and MMR selection.

Vectors are L2-normalised float32, so inner products are cosine similarities. Each stream has
one exact ``IndexFlatIP`` keyed by the store's int64 labels; with ``kind="hnsw"`` (the store's
name for approximate search) a stream holding at least ``hnsw_threshold`` vectors is searched
through an approximate index whose shape is chosen by the stream's size: an inverted file
(IVF-Flat) with about 4 x sqrt(n) lists, of which :data:`IVF_PROBES` are searched. Measured on
context-aware vectors (``benchmarks/index_recall.py``, ``docs/performance.md``) it keeps recall@10
above 0.95 against exact search where an HNSW graph did not. The index is built lazily, rebuilt
once the stream has doubled since it was trained, and dropped on delete; filtered searches stay
exact.
"""

from __future__ import annotations

import math

import faiss
import numpy as np

INDEX_KINDS = ("flat", "hnsw")
IVF_PROBES = 32
"""Inverted lists searched per query (recall@10 0.98 at 100K vectors, measured)."""
IVF_LISTS_PER_SQRT = 4
"""Lists per square root of the stream's size."""
IVF_MIN_POINTS_PER_LIST = 39
"""Fewest training vectors per list (FAISS's k-means minimum)."""
IVF_TRAIN_POINTS_PER_LIST = 64
"""Training sample per list (a sample of the stream's vectors, seeded)."""


def ivf_lists(size: int) -> int:
    """How many inverted lists a stream of ``size`` vectors gets: about 4 x sqrt(size), at least
    one, and no more than its vectors can train."""
    return max(1, min(int(IVF_LISTS_PER_SQRT * math.sqrt(size)), size // IVF_MIN_POINTS_PER_LIST))


def normalise(vectors, dim: int | None, what: str) -> np.ndarray:
    """Check vectors and scale them to unit length.

    Args:
        vectors: Anything NumPy reads as an (n, d) array of numbers.
        dim: The dimension the vectors must have, or ``None`` for any.
        what: What the vectors are, used in error messages.

    Returns:
        A C-contiguous float32 (n, d) array of unit rows.

    Raises:
        TypeError: ``vectors`` is not numeric.
        ValueError: Wrong shape or dimension, NaN or inf, or a zero vector.
    """
    try:
        array = np.asarray(vectors, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be numeric vectors") from None
    if array.ndim != 2 or array.shape[1] == 0:
        raise ValueError(f"{what} must have shape (n, d), got {array.shape}")
    if dim is not None and array.shape[1] != dim:
        raise ValueError(f"{what} have dimension {array.shape[1]}, the store holds {dim}-d vectors")
    if not np.isfinite(array).all():
        raise ValueError(f"{what} contain NaN or inf")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"{what} contain a zero vector (no direction to compare)")
    return np.ascontiguousarray(array / norms, dtype=np.float32)


def query_vector(vector, dim: int | None) -> np.ndarray:
    """One query vector (d,), checked and normalised like stored ones.

    Raises:
        ValueError: Not one 1-d vector, or one that :func:`normalise` refuses.
    """
    array = np.asarray(vector) if not isinstance(vector, (str, bytes)) else None
    if array is None or array.ndim != 1:
        raise ValueError("vector must be one 1-d vector")
    return normalise(array[None], dim, "query vector")[0]


class VectorIndex:
    """One stream's vectors, searchable by inner product.

    Args:
        dim: The vectors' dimension.
        kind: ``"flat"`` (exact) or ``"hnsw"`` (approximate for big streams, see the module).
        hnsw_threshold: Smallest stream searched approximately (``kind="hnsw"`` only).
    """

    def __init__(self, dim: int, kind: str, hnsw_threshold: int) -> None:
        self.flat = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self.kind, self.hnsw_threshold, self.dim = kind, hnsw_threshold, dim
        self.graph = None  # the approximate index: built lazily, dropped on delete
        self._trained_size = 0

    def __len__(self) -> int:
        return self.flat.ntotal

    def add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        """Add unit vectors (n, d) under int64 ``labels`` (n,)."""
        self.flat.add_with_ids(vectors, labels)
        if self.graph is not None:
            self.graph.add_with_ids(vectors, labels)

    def remove(self, labels: np.ndarray) -> None:
        """Remove the vectors of ``labels`` (missing labels are ignored)."""
        self.flat.remove_ids(labels)
        self.graph = None

    def vectors(self, labels: np.ndarray) -> np.ndarray:
        """The stored vectors of existing ``labels``: (n, d) float32."""
        return self.flat.reconstruct_batch(labels) if len(labels) else np.zeros((0, self.dim), np.float32)

    def labels(self) -> np.ndarray:
        """Every stored label, in insertion order (int64)."""
        return faiss.vector_to_array(self.flat.id_map).astype(np.int64)

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best labels for each query.

        Args:
            queries: Unit query vectors (q, d).
            k: How many results per query (fewer if the stream holds fewer).
            allowed: Labels to search among (exact search), or ``None`` for all.

        Returns:
            ``(scores, labels)``, both (q, k'), best first; label ``-1`` marks an empty slot.
        """
        k = min(k, len(self) if allowed is None else len(allowed))
        if k == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        if allowed is not None:
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
            return self.flat.search(queries, k, params=params)
        if self.kind == "hnsw" and len(self) >= self.hnsw_threshold:
            if self.graph is None or len(self) > 2 * self._trained_size:
                self._build_approximate()
            return self.graph.search(queries, k)
        return self.flat.search(queries, k)

    def _build_approximate(self) -> None:
        """Train an IVF-Flat index on (a seeded sample of) the stream's vectors and fill it."""
        labels = self.labels()
        vectors = self.vectors(labels)
        lists = ivf_lists(len(labels))
        quantizer = faiss.IndexFlatIP(self.dim)
        ivf = faiss.IndexIVFFlat(quantizer, self.dim, lists, faiss.METRIC_INNER_PRODUCT)
        sample = vectors
        if len(vectors) > IVF_TRAIN_POINTS_PER_LIST * lists:
            rows = np.random.default_rng(0).choice(len(vectors), IVF_TRAIN_POINTS_PER_LIST * lists, replace=False)
            sample = vectors[np.sort(rows)]
        ivf.train(sample)
        ivf.nprobe = min(IVF_PROBES, lists)
        graph = faiss.IndexIDMap2(ivf)
        graph.add_with_ids(vectors, labels)
        self._parts = (quantizer, ivf)  # FAISS does not own them: keep them alive with the wrapper
        self.graph, self._trained_size = graph, len(labels)


def mmr_select(relevance: np.ndarray, vectors: np.ndarray, k: int, lambda_mult: float) -> list[int]:
    """Maximal marginal relevance: pick ``k`` candidates that are relevant and unlike each other.

    Args:
        relevance: Each candidate's similarity to the query (n,).
        vectors: The candidates' unit vectors (n, d).
        k: How many to pick (at most n).
        lambda_mult: 1 ranks by relevance only, 0 by diversity only.

    Returns:
        Indices of the chosen candidates, in the order they were chosen.
    """
    chosen: list[int] = []
    while len(chosen) < min(k, len(relevance)):
        redundancy = (vectors @ vectors[chosen].T).max(axis=1) if chosen else np.zeros(len(relevance))
        value = lambda_mult * relevance - (1 - lambda_mult) * redundancy
        value[chosen] = -np.inf
        chosen.append(int(np.argmax(value)))
    return chosen
