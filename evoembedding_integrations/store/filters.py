"""Metadata filters: the one filter language of the store, and its compiler.

Every search, ``get`` and delete-by-filter of the store, the agent memory and the framework
integrations goes through :func:`compile_filter`; the LlamaIndex ``MetadataFilters`` and mem0
filter formats are translated into this language, so the same rules hold everywhere.

A filter is ``None`` (everything matches), a callable ``metadata -> bool`` (used as is), or a dict:

================================  ===========================================================
``{"tag": "pet"}``                 the key is present and equal to the value
``{"n": {"$gte": 1, "$lt": 3}}``   operators on one key; all must hold
``{"a": 1, "b": {"$ne": 2}}``      several keys: all must hold
``{"$and": [f, g, ...]}``          every filter of a non-empty list holds
``{"$or": [f, g, ...]}``           at least one filter of a non-empty list holds
``{"$not": f}``                    the filter ``f`` does not hold
================================  ===========================================================

Operators (``value`` is the entry's metadata value for the key, ``arg`` the filter's):

* ``$eq`` / ``$ne``: ``value == arg`` / ``value != arg``.
* ``$gt $gte $lt $lte``: ordering (numbers with numbers, strings with strings).
* ``$in`` / ``$nin``: ``value`` is / is not one of ``arg`` (a list).
* ``$exists``: ``arg`` is ``True`` (the key is present) or ``False`` (it is absent).
* ``$contains``: ``value`` is a list holding ``arg``, or a string containing the string ``arg``.
* ``$icontains``: ``value`` is a string containing the string ``arg``, ignoring case.
* ``$any`` / ``$all``: ``value`` is a list holding at least one / every element of ``arg`` (a list).

Rules:

* A **missing key** matches only ``$ne``, ``$nin`` and ``{"$exists": False}``; every other
  operator is false for it (``$not`` inverts the result like any other filter).
* ``None`` is JSON ``null``, an ordinary value: ``{"k": None}`` matches an entry whose ``k`` is
  null, not one without ``k``. (Missing *or* null: ``{"$or": [{"k": None}, {"k": {"$exists": False}}]}``.)
* A comparison between values that cannot be ordered (``"a" > 3``) is false, not an error.
* A dict condition is always a dict of operators. To match a dict value use ``{"$eq": {...}}``;
  a key that is not an operator (``{"n": {"gte": 3}}``, ``{"n": {"$gte": 3, "max": 9}}``), an
  unknown operator (``$regex``) or an empty operator dict raises ``ValueError`` naming it.
* Filter values must be JSON values: strings, finite numbers, booleans, ``None``, lists (tuples are
  read as lists) and dicts with string keys. NumPy scalars are read as Python numbers; an array
  or any other object raises ``TypeError``.
* Nesting (``$and`` / ``$or`` / ``$not`` and nested values together) is limited to
  :data:`MAX_FILTER_DEPTH` levels; a deeper filter raises ``ValueError``.
* Shape errors (a filter or list entry that is not a dict, an ``$in`` argument that is not a list)
  raise ``TypeError``; every message names the key or operator at fault.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

Predicate = Callable[[Mapping], bool]

MAX_FILTER_DEPTH = 32
"""Most levels of nesting a filter may have (logical operators and nested values together)."""

OPERATORS = frozenset(
    {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$contains", "$icontains", "$any", "$all"}
)
"""The operators a key's condition may use."""

LOGICAL = ("$and", "$or", "$not")
"""The operators that combine filters."""

_LIST_ARGS = ("$in", "$nin", "$any", "$all")
_MISSING = object()


def compile_filter(spec) -> Predicate | None:
    """Validate a metadata filter once and return it as a predicate.

    Args:
        spec: ``None``, a callable ``metadata -> bool``, or a filter dict (see the module docstring).

    Returns:
        ``None`` for no filter, ``spec`` itself if it is callable, otherwise a function of an
        entry's metadata dict returning whether the entry matches.

    Raises:
        TypeError: ``spec`` (or a part of it) has the wrong type: not a dict, a non-list ``$in``,
            a non-JSON value such as a NumPy array.
        ValueError: An unknown operator, a dict condition with keys that are not operators, an
            empty ``$and`` / ``$or`` list or operator dict, a non-finite number, or nesting deeper
            than :data:`MAX_FILTER_DEPTH`.
    """
    if spec is None or callable(spec):
        return spec
    if not isinstance(spec, Mapping):
        raise TypeError(f"filter must be a dict, a callable or None, got {type(spec).__name__}")
    return _compile(spec, 1)


def _compile(spec: Mapping, depth: int) -> Predicate:
    if depth > MAX_FILTER_DEPTH:
        raise ValueError(f"filter is nested more than {MAX_FILTER_DEPTH} levels deep")
    tests = [_clause(key, cond, depth) for key, cond in spec.items()]
    if len(tests) == 1:
        return tests[0]
    return lambda metadata: all(test(metadata) for test in tests)


def _clause(key, cond, depth: int) -> Predicate:
    """One ``key: condition`` pair of a filter dict."""
    if key in ("$and", "$or"):
        if not isinstance(cond, (list, tuple)) or not cond:
            raise ValueError(f"filter {key} needs a non-empty list of filters")
        parts = [_compile(_entry(key, part), depth + 1) for part in cond]
        combine = all if key == "$and" else any
        return lambda metadata: combine(part(metadata) for part in parts)
    if key == "$not":
        inner = _compile(_entry(key, cond), depth + 1)
        return lambda metadata: not inner(metadata)
    if not isinstance(key, str) or key.startswith("$"):
        raise ValueError(f"unknown filter operator or key {key!r} (combining operators: {list(LOGICAL)})")
    if not isinstance(cond, Mapping):
        return _test(key, "$eq", _json_value(cond, f"filter value for {key!r}", depth))
    if not cond:
        raise ValueError(f"filter on {key!r} is an empty operator dict (to match an empty dict use {{'$eq': {{}}}})")
    not_operators = [op for op in cond if not (isinstance(op, str) and op.startswith("$"))]
    if not_operators:
        raise ValueError(
            f"filter on {key!r} has keys that are not operators: {not_operators!r} (operators start with '$', "
            f"known: {sorted(OPERATORS)}; to match a dict value use {{'$eq': {{...}}}})"
        )
    tests = [_test(key, op, _argument(key, op, arg, depth)) for op, arg in cond.items()]
    return tests[0] if len(tests) == 1 else (lambda metadata: all(test(metadata) for test in tests))


def _entry(key: str, part) -> Mapping:
    if not isinstance(part, Mapping):
        raise TypeError(f"filter {key} entries must be dicts, got {type(part).__name__}")
    return part


def _argument(key: str, op: str, arg, depth: int):
    """An operator's argument, checked and normalised."""
    if op not in OPERATORS:
        raise ValueError(f"unknown filter operator {op!r} for key {key!r} (known: {sorted(OPERATORS)})")
    what = f"filter {key}.{op}"
    if op in _LIST_ARGS:
        if not isinstance(arg, (list, tuple, set, frozenset)):
            raise TypeError(f"{what} needs a list, got {type(arg).__name__}")
        arg = list(arg)
    arg = _json_value(arg, f"{what} value", depth)
    if op == "$exists" and not isinstance(arg, bool):
        raise TypeError(f"{what} needs true or false, got {arg!r}")
    if op == "$icontains" and not isinstance(arg, str):
        raise TypeError(f"{what} needs a string, got {type(arg).__name__}")
    return arg


def _json_value(value, what: str, depth: int):
    """``value`` as a plain JSON value (tuples as lists, NumPy scalars as Python ones), or an error.
    ``depth`` counts the levels around ``value`` (each list or dict adds one)."""
    if isinstance(value, (list, tuple, Mapping)) and depth >= MAX_FILTER_DEPTH:
        raise ValueError(f"{what} is nested more than {MAX_FILTER_DEPTH} levels deep")
    if isinstance(value, np.ndarray):
        raise TypeError(f"{what} is a NumPy array: pass a scalar or a list (array.tolist())")
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{what} is not a finite number: {value!r}")
        return value
    if isinstance(value, (list, tuple)):
        return [_json_value(item, what, depth + 1) for item in value]
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"{what} has a dict with a non-string key")
        return {k: _json_value(item, what, depth + 1) for k, item in value.items()}
    raise TypeError(
        f"{what} must be a JSON value (string, number, bool, None, list or dict), got {type(value).__name__}"
    )


_COMPARE: dict[str, Callable] = {
    "$eq": lambda v, a: v == a,
    "$ne": lambda v, a: v != a,
    "$gt": lambda v, a: v > a,
    "$gte": lambda v, a: v >= a,
    "$lt": lambda v, a: v < a,
    "$lte": lambda v, a: v <= a,
    "$in": lambda v, a: v in a,
    "$nin": lambda v, a: v not in a,
    "$contains": lambda v, a: (a in v) if isinstance(v, list) else isinstance(v, str) and isinstance(a, str) and a in v,
    "$icontains": lambda v, a: isinstance(v, str) and a.casefold() in v.casefold(),
    "$any": lambda v, a: isinstance(v, list) and any(x in v for x in a),
    "$all": lambda v, a: isinstance(v, list) and all(x in v for x in a),
}


def _test(key: str, op: str, arg) -> Predicate:
    """The predicate of one operator on one key."""
    if op == "$exists":
        return lambda metadata: (key in metadata) == arg
    compare = _COMPARE[op]

    def test(metadata: Mapping) -> bool:
        value = metadata.get(key, _MISSING)
        if value is _MISSING:
            return op in ("$ne", "$nin")
        try:
            return bool(compare(value, arg))
        except TypeError:  # e.g. "a" > 3: not a match
            return False

    return test
