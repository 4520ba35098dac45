"""mem0 and LightMem filters translated into the store's filter language.

The store's filter core (:meth:`EvoStore.search`'s ``filter=``) is the only interpreter of metadata
filters in the library; this module only rewrites the filters of mem0 (and of LightMem, whose
``{key: value}`` / ``{key: {"gte": a, "lte": b}}`` filters are a subset) into its dict language, so
a missing key or a ``None`` value follows the same rules everywhere: a missing key matches only
``ne`` and ``nin``; ``None`` is a value like any other.

==================================  ===============================================
mem0                                store filter
==================================  ===============================================
``{key: value}``                    ``{key: {"$eq": value}}``
``eq ne gt gte lt lte in nin``      ``$eq $ne $gt $gte $lt $lte $in $nin``
``contains`` / ``icontains``        ``$contains`` / ``$icontains``
``{key: "*"}``                      ``{key: {"$exists": True}}``
``AND`` / ``OR`` / ``NOT`` lists    ``$and`` / ``$or`` / ``$not`` of ``$or``
==================================  ===============================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..store import compile_filter

__all__ = ["MEM0_OPERATORS", "compile_mem0_filters", "to_store_filter"]

MEM0_OPERATORS = {
    "eq": "$eq",
    "ne": "$ne",
    "gt": "$gt",
    "gte": "$gte",
    "lt": "$lt",
    "lte": "$lte",
    "in": "$in",
    "nin": "$nin",
    "contains": "$contains",
    "icontains": "$icontains",
}
"""mem0's comparison operators and the store operator each one becomes."""

MATCH_NOTHING = {"$not": {}}
"""A store filter no entry passes (the negation of the empty filter)."""


def to_store_filter(filters: Mapping | None) -> dict | None:
    """Translate mem0 (or LightMem) filters into a store filter.

    Args:
        filters: ``{key: value}`` equalities, ``{key: {op: value}}`` comparisons (see
            :data:`MEM0_OPERATORS`), ``{key: "*"}`` (the key is present) and ``"AND"`` / ``"OR"`` /
            ``"NOT"`` lists of filters; ``None`` or ``{}`` for no filter.

    Returns:
        A filter for :meth:`EvoStore.search` / :func:`compile_filter`, or ``None`` for no filter.

    Raises:
        TypeError: ``filters`` is not a dict.
        ValueError: An operator is unknown, or ``AND`` / ``OR`` / ``NOT`` is not given a list.
    """
    if not filters:
        return None
    if not isinstance(filters, Mapping):
        raise TypeError(f"filters must be a dict, got {type(filters).__name__}")
    return _all([_condition(key, cond) for key, cond in filters.items()]) or None


def compile_mem0_filters(filters: Mapping | None) -> Callable[[dict], bool] | None:
    """mem0 filters as a predicate on a payload (``None``: no filter).

    Args:
        filters: As for :func:`to_store_filter`.

    Returns:
        The store's compiled predicate for the translated filter, or ``None``.

    Raises:
        ValueError: An operator is unknown.
    """
    return compile_filter(to_store_filter(filters))


def _condition(key, cond) -> dict:
    if key in ("AND", "OR", "NOT"):
        if not isinstance(cond, (list, tuple)):
            raise ValueError(f"filter {key} needs a list of filters")
        parts = [to_store_filter(c) or {} for c in cond]
        if key == "AND":
            return _all(parts)
        either = MATCH_NOTHING if not parts else {} if not all(parts) else {"$or": parts}
        return either if key == "OR" else _negate(either)
    if isinstance(cond, str) and cond == "*":
        return {key: {"$exists": True}}
    if isinstance(cond, Mapping):
        unknown = set(cond) - set(MEM0_OPERATORS)
        if unknown:
            raise ValueError(
                f"unknown mem0 filter operators {sorted(unknown)} for {key!r} (known: {sorted(MEM0_OPERATORS)})"
            )
        if not cond:
            return {}
        return {key: {MEM0_OPERATORS[op]: str(arg) if op == "icontains" else arg for op, arg in cond.items()}}
    return {key: {"$eq": cond}}


def _all(parts: list[dict]) -> dict:
    parts = [p for p in parts if p]  # {} passes everything
    if not parts:
        return {}
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _negate(part: dict) -> dict:
    if part == MATCH_NOTHING:
        return {}
    return {"$not": part}
