"""EvoEmbeddingConfig: defaults, validation, JSON round trip."""

from __future__ import annotations

import json

import pytest

from evoembedding_core import EvoEmbeddingConfig


def test_capacity_is_slots_times_queries():
    assert EvoEmbeddingConfig(num_queries=3, memory_slots=5).capacity == 15
    assert EvoEmbeddingConfig().capacity == EvoEmbeddingConfig().num_queries * EvoEmbeddingConfig().memory_slots


def test_json_round_trip(tmp_path):
    config = EvoEmbeddingConfig(num_queries=2, lora_target_modules=["q_proj"], extra={"run": "a"})
    config.save(tmp_path / "config.json")
    raw = json.loads((tmp_path / "config.json").read_text())
    assert raw["format"] == "evoembedding" and raw["num_queries"] == 2
    assert EvoEmbeddingConfig.load(tmp_path / "config.json") == config


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"num_queries": 0}, "num_queries"),
        ({"memory_slots": -1}, "memory_slots"),
        ({"backbone_kind": "seq2seq"}, "backbone_kind"),
        ({"pooling": "max"}, "pooling"),
        ({"chunk_segments": 0}, "chunk_segments"),
        ({"max_segment_tokens": 0}, "max_segment_tokens"),
    ],
)
def test_bad_values_are_refused(fields, match):
    with pytest.raises(ValueError, match=match):
        EvoEmbeddingConfig(**fields)


@pytest.mark.parametrize(
    "fields, match",
    [({"num_queries": "4"}, "num_queries"), ({"lora_r": 2.5}, "lora_r"), ({"backbone": None}, "backbone")],
)
def test_wrong_types_are_refused(fields, match):
    with pytest.raises(TypeError, match=match):
        EvoEmbeddingConfig(**fields)


def test_foreign_or_newer_or_unknown_configs_are_refused():
    good = EvoEmbeddingConfig().to_dict()
    with pytest.raises(ValueError, match="not an evoembedding config"):
        EvoEmbeddingConfig.from_dict({**good, "format": "other"})
    with pytest.raises(ValueError, match="newer"):
        EvoEmbeddingConfig.from_dict({**good, "format_version": 99})
    with pytest.raises(ValueError, match="unknown config fields"):
        EvoEmbeddingConfig.from_dict({**good, "colour": "blue"})
