"""The store's one metadata-filter language: every operator, the missing-key and null rules, and the
filters that must fail loudly instead of silently matching nothing."""

from __future__ import annotations

import numpy as np
import pytest

from evoembedding_integrations.store import MAX_FILTER_DEPTH, EvoStore, compile_filter

ROWS = {
    "a": {"n": 1, "tag": "Pet", "tags": ["x", "y"], "city": "Oslo"},
    "b": {"n": 2, "tag": None, "tags": ["y"]},
    "c": {"n": 3, "tags": []},
    "d": {"nested": {"k": 1}},
}


def matching(spec) -> set[str]:
    predicate = compile_filter(spec)
    return {name for name, metadata in ROWS.items() if predicate(metadata)}


@pytest.mark.parametrize(
    "spec, expected",
    [
        ({}, {"a", "b", "c", "d"}),
        ({"n": 1}, {"a"}),
        ({"n": {"$eq": 2}}, {"b"}),
        ({"n": {"$ne": 2}}, {"a", "c", "d"}),  # a missing key matches $ne
        ({"n": {"$gt": 1}}, {"b", "c"}),
        ({"n": {"$gte": 2, "$lte": 3}}, {"b", "c"}),
        ({"n": {"$lt": 2}}, {"a"}),
        ({"n": {"$in": [1, 3]}}, {"a", "c"}),
        ({"n": {"$in": (1, 3)}}, {"a", "c"}),
        ({"n": {"$nin": [1, 3]}}, {"b", "d"}),  # ... and $nin
        ({"tag": {"$exists": True}}, {"a", "b"}),
        ({"tag": {"$exists": False}}, {"c", "d"}),
        ({"tag": None}, {"b"}),  # null is a value: not the same as missing
        ({"$or": [{"tag": None}, {"tag": {"$exists": False}}]}, {"b", "c", "d"}),
        ({"tags": {"$contains": "y"}}, {"a", "b"}),
        ({"city": {"$contains": "sl"}}, {"a"}),
        ({"tag": {"$icontains": "pe"}}, {"a"}),
        ({"tags": {"$any": ["x", "z"]}}, {"a"}),
        ({"tags": {"$all": ["x", "y"]}}, {"a"}),
        ({"tags": {"$all": []}}, {"a", "b", "c"}),
        ({"tags": []}, {"c"}),
        ({"nested": {"$eq": {"k": 1}}}, {"d"}),
        ({"n": {"$gt": "a"}}, set()),  # incomparable: no match, no error
        ({"$and": [{"n": {"$gte": 1}}, {"tags": {"$contains": "y"}}]}, {"a", "b"}),
        ({"$not": {"n": 1}}, {"b", "c", "d"}),
        ({"$not": {"$or": [{"n": 1}, {"n": 2}]}}, {"c", "d"}),
        ({"n": np.int64(2)}, {"b"}),  # NumPy scalars read as numbers
        ({"n": {"$in": [np.float64(3.0)]}}, {"c"}),
    ],
)
def test_the_filter_language(spec, expected):
    assert matching(spec) == expected


def test_none_and_callables_pass_through():
    assert compile_filter(None) is None
    function = lambda metadata: True  # noqa: E731
    assert compile_filter(function) is function


@pytest.mark.parametrize(
    "spec, error, message",
    [
        ({"n": {"gte": 3}}, ValueError, "'gte'"),  # an operator without its $
        ({"n": {"gt": 1}}, ValueError, "'gt'"),
        ({"n": {"$gte": 3, "max": 9}}, ValueError, "'max'"),  # operators mixed with plain keys
        ({"n": {"$regex": "a"}}, ValueError, r"\$regex"),
        ({"n": {}}, ValueError, "empty operator dict"),
        ({"$nor": [{"n": 1}]}, ValueError, r"\$nor"),
        ({"$and": []}, ValueError, r"\$and"),
        ({"$or": {"n": 1}}, ValueError, r"\$or"),
        ({"$and": [3]}, TypeError, r"\$and entries"),
        ({"$not": [{"n": 1}]}, TypeError, r"\$not"),
        ({"n": {"$in": 3}}, TypeError, r"\$in"),
        ({"n": {"$exists": 1}}, TypeError, r"\$exists"),
        ({"n": {"$icontains": 3}}, TypeError, r"\$icontains"),
        ({"n": np.array([1, 2])}, TypeError, "NumPy array"),
        ({"n": {"$in": np.array([1, 2])}}, TypeError, r"\$in"),
        ({"n": {"$eq": np.array([1, 2])}}, TypeError, "NumPy array"),
        ({"n": object()}, TypeError, "JSON value"),
        ({"n": float("nan")}, ValueError, "finite"),
        ({"n": {"$gt": float("inf")}}, ValueError, "finite"),
        (["n"], TypeError, "filter must be"),
    ],
)
def test_bad_filters_raise_naming_the_fault(spec, error, message):
    with pytest.raises(error, match=message):
        compile_filter(spec)


def test_deep_filters_raise_value_error_not_recursion_error():
    spec = {"n": 1}
    for _ in range(1200):
        spec = {"$and": [spec]}
    with pytest.raises(ValueError, match="nested more than"):
        compile_filter(spec)
    value = 1
    for _ in range(1200):
        value = [value]
    with pytest.raises(ValueError, match="nested more than"):
        compile_filter({"n": value})
    ok = {"n": 1}
    for _ in range(MAX_FILTER_DEPTH - 1):
        ok = {"$not": ok}
    assert compile_filter(ok)({"n": 1}) is (MAX_FILTER_DEPTH % 2 == 1)


def test_the_store_applies_the_language_and_refuses_bad_filters():
    store = EvoStore(embeddings=lambda texts: np.eye(4)[[len(t) % 4 for t in texts]] + 0.1)
    store.add(["one", "three", "eleven"], ids=["1", "3", "11"], metadatas=[{"n": 1}, {"n": 3}, {"n": 11}])
    assert {h.id for h in store.search("q", k=5, filter={"n": {"$gte": 3}})} == {"3", "11"}
    assert {h.id for h in store.mmr_search("q", k=5, filter={"$not": {"n": 3}})} == {"1", "11"}
    for bad in ({"n": {"gte": 3}}, {"n": {"$gte": 3, "max": 9}}):
        with pytest.raises(ValueError, match="filter"):
            store.search("q", filter=bad)
    with pytest.raises(TypeError, match="filter"):
        store.search_by_vector([1, 0, 0, 0], filter={"n": np.arange(3)})
