"""Long texts: truncated to the model's segment limit, or cut into consecutive pieces that each fit.

With ``long_texts="split"`` the stores, the framework embedders and the eval read a long text's
pieces in order (each piece's memory holds the pieces before it) and keep one vector for the
text: the normalised mean of its pieces' vectors. ``"truncate"`` (the default: it measured better
on the dev benchmarks' long assistant turns, ``docs/evaluation.md``) keeps a text's first tokens.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .validation import check_choice

if TYPE_CHECKING:
    import numpy as np

LONG_TEXT_MODES = ("truncate", "split")
"""What happens to a text over the segment limit."""

MARGIN = 4
"""Tokens each piece leaves free below the limit: re-tokenising a piece cut at a token boundary
can give a token or two more than the cut."""


def check_long_texts(long_texts: str) -> str:
    """``long_texts`` if it is one of :data:`LONG_TEXT_MODES`.

    Raises:
        ValueError: Another value.
    """
    return check_choice(long_texts, "long_texts", LONG_TEXT_MODES)


def segments_of(model, texts: Sequence[str], long_texts: str) -> tuple[list[str], list[int]]:
    """The segments to read for ``texts``: the texts themselves (``"truncate"``: the tokenizer cuts
    long ones, with a warning) or :func:`split_long_texts` (``"split"``).

    Returns:
        ``(segments, owners)`` as :func:`split_long_texts` returns them.
    """
    if long_texts == "split":
        return split_long_texts(model, texts)
    return list(texts), list(range(len(texts)))


def split_long_texts(model, texts: Sequence[str]) -> tuple[list[str], list[int]]:
    """Cut every text that would be truncated into pieces that fit ``max_segment_tokens``.

    Args:
        model: The ``EvoEmbeddingModel`` whose tokenizer and segment limit apply.
        texts: Validated texts.

    Returns:
        ``(pieces, owners)``: the pieces in order (a text that fits is its own one piece) and, for
        each piece, the index of its text.
    """
    from .backbones import tokenize_segments  # here: the module stays light for the stores' imports

    if not texts:
        return [], []
    limit = model.config.max_segment_tokens
    with warnings.catch_warnings():  # a probe one token past the limit: its truncation is expected
        warnings.simplefilter("ignore", UserWarning)
        probe = tokenize_segments(model.tokenizer, model.kind, list(texts), limit=limit + 1)
    lengths = [len(ids) for ids in probe]
    budget = None  # content tokens per piece, found at the first long text
    pieces: list[str] = []
    owners: list[int] = []
    for n, (text, length) in enumerate(zip(texts, lengths)):
        if length > limit and budget is None:
            special = len(tokenize_segments(model.tokenizer, model.kind, ["x"], limit=limit)[0]) - 1
            budget = max(1, limit - special - MARGIN)
        cut = _pieces(model, text, budget) if length > limit else [text]
        pieces += cut
        owners += [n] * len(cut)
    return pieces, owners


def _pieces(model, text: str, budget: int) -> list[str]:
    """``text`` cut between words into pieces of at most ``budget`` tokens (without special tokens)."""
    try:
        offsets = model.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)[
            "offset_mapping"
        ]
    except NotImplementedError:  # a slow tokenizer has no offsets: keep the text whole (truncated)
        return [text]
    pieces, start = [], 0
    while start < len(offsets):
        end = min(start + budget, len(offsets))
        if end < len(offsets):  # cut before a token that starts a word, if the window has one
            word_start = next(
                (e for e in range(end, start, -1) if offsets[e][0] and text[offsets[e][0] - 1].isspace()), end
            )
            end = word_start
        stop = offsets[end][0] if end < len(offsets) else len(text)
        piece = text[offsets[start][0] if start else 0 : stop].strip()
        if piece:
            pieces.append(piece)
        start = end
    return pieces or [text]


def mean_per_text(piece_vectors: np.ndarray, owners: Sequence[int], count: int) -> np.ndarray:
    """One unit vector per text from its pieces' vectors: their normalised mean.

    Args:
        piece_vectors: The pieces' unit vectors, (n_pieces, d), in the order of ``owners``.
        owners: Each piece's text index (as :func:`split_long_texts` returns them).
        count: How many texts.

    Returns:
        (count, d) float32 (a text of one piece keeps its piece's vector).
    """
    import numpy as np  # here: the mode names and checks above import nothing heavy (the CLI's --help)

    if len(owners) == count:
        return np.asarray(piece_vectors, dtype=np.float32)
    sums = np.zeros((count, piece_vectors.shape[1]), np.float32)
    np.add.at(sums, np.asarray(owners), piece_vectors)
    return sums / np.linalg.norm(sums, axis=1, keepdims=True)
