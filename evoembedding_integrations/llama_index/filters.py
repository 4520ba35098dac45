"""LlamaIndex ``MetadataFilters`` translated into the store's filter language.

The store's filter core (:meth:`EvoStore.search`'s ``filter=``) is the only interpreter of metadata
filters in the library; this module only rewrites LlamaIndex filters into its dict language, so a
missing key or a ``None`` value follows the same rules everywhere: a missing key matches only
``!=`` and ``nin``; ``None`` is a value like any other.

==========================  ===========================================================
LlamaIndex                  store filter
==========================  ===========================================================
``==  !=  >  >=  <  <=``     ``$eq $ne $gt $gte $lt $lte``
``in  nin``                 ``$in $nin`` (the value must be a list)
``contains``                ``$contains`` (a list holding the value, or a string holding it)
``any`` / ``all``           ``$any`` / ``$all`` (a list holding one / every value)
``text_match``              ``$contains`` of the value as a string
``text_match_insensitive``  ``$icontains``
``is_empty``                missing, or one of ``None``, ``""``, ``[]``
``AND`` / ``OR`` / ``NOT``  ``$and`` / ``$or`` / ``$not`` of ``$or``
==========================  ===========================================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from llama_index.core.vector_stores.types import FilterCondition, FilterOperator, MetadataFilter, MetadataFilters

from ..store import compile_filter

__all__ = ["NODE_ID_KEY", "compile_metadata_filters", "to_store_filter"]

NODE_ID_KEY = "_node_id"
"""The metadata key under which the vector store keeps each node's id."""

MATCH_NOTHING = {"$not": {}}
"""A store filter no entry passes (the negation of the empty filter)."""

_COMPARISONS = {
    FilterOperator.EQ: "$eq",
    FilterOperator.NE: "$ne",
    FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt",
    FilterOperator.LTE: "$lte",
    FilterOperator.IN: "$in",
    FilterOperator.NIN: "$nin",
    FilterOperator.CONTAINS: "$contains",
    FilterOperator.ANY: "$any",
    FilterOperator.ALL: "$all",
}
_LIST_OPERATORS = (FilterOperator.IN, FilterOperator.NIN, FilterOperator.ANY, FilterOperator.ALL)


def to_store_filter(filters: MetadataFilters | None, node_ids: Sequence[str] | None = None) -> dict | None:
    """Translate LlamaIndex filters (and a node-id constraint) into a store filter.

    Args:
        filters: ``MetadataFilters`` (nested, AND / OR / NOT), or ``None``.
        node_ids: Keep only these node ids (``None``: no constraint).

    Returns:
        A filter for :meth:`EvoStore.search` / :func:`compile_filter`, or ``None`` for no filter.

    Raises:
        TypeError: ``filters`` is not ``MetadataFilters``, or ``in`` / ``nin`` / ``any`` / ``all``
            has a value that is not a list.
        ValueError: An operator or condition is unknown.
    """
    parts = []
    if filters is not None:
        if not isinstance(filters, MetadataFilters):
            raise TypeError(f"filters must be llama-index MetadataFilters, got {type(filters).__name__}")
        parts.append(_filters(filters))
    if node_ids is not None:
        parts.append({NODE_ID_KEY: {"$in": list(node_ids)}})
    parts = [p for p in parts if p]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


def compile_metadata_filters(filters: MetadataFilters | None) -> Callable[[dict], bool] | None:
    """LlamaIndex ``MetadataFilters`` as a predicate on metadata (``None``: no filter).

    Args:
        filters: ``MetadataFilters``, or ``None``.

    Returns:
        The store's compiled predicate for :func:`to_store_filter`'s translation, or ``None``.
    """
    return compile_filter(to_store_filter(filters))


def _filters(filters: MetadataFilters) -> dict:
    parts = [_filters(f) if isinstance(f, MetadataFilters) else _filter(f) for f in filters.filters]
    condition = FilterCondition(filters.condition or FilterCondition.AND)
    if condition == FilterCondition.AND:
        return _all(parts)
    either = _any(parts)
    return either if condition == FilterCondition.OR else {"$not": either}


def _filter(f: MetadataFilter) -> dict:
    op, key, value = FilterOperator(getattr(f, "operator", FilterOperator.EQ)), f.key, f.value
    if op in _LIST_OPERATORS and not isinstance(value, list):
        raise TypeError(f"metadata filter {key!r} {op.value} needs a list value, got {type(value).__name__}")
    if op in _COMPARISONS:
        return {key: {_COMPARISONS[op]: value}}
    if op == FilterOperator.TEXT_MATCH:
        return {key: {"$contains": str(value)}}
    if op == FilterOperator.TEXT_MATCH_INSENSITIVE:
        return {key: {"$icontains": str(value)}}
    if op == FilterOperator.IS_EMPTY:
        return {"$or": [{key: {"$exists": False}}, {key: {"$in": [None, "", []]}}]}
    raise ValueError(f"unsupported metadata filter operator {op.value!r}")


def _all(parts: list[dict]) -> dict:
    parts = [p for p in parts if p]  # {} passes everything
    if not parts:
        return {}
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _any(parts: list[dict]) -> dict:
    if not parts:
        return MATCH_NOTHING
    if any(not p for p in parts):
        return {}
    return parts[0] if len(parts) == 1 else {"$or": parts}
