"""The shipped default model on held-out synthetic context questions (never seen in training)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from evoembedding_core import EvoEmbeddingModel
from evoembedding_core.eval import build_systems, evaluate
from evoembedding_core.eval.loaders import samples_to_conversations
from evoembedding_core.model import DEFAULT_MODEL_DIR

HELDOUT = Path(__file__).resolve().parents[2] / "training_runs" / "data" / "heldout24.jsonl.gz"


def test_shipped_model_files_and_card():
    assert (DEFAULT_MODEL_DIR / "model.safetensors").stat().st_size < 10_000_000  # trained parts only
    assert "REALTALK" in (DEFAULT_MODEL_DIR / "MODEL_CARD.md").read_text()
    assert EvoEmbeddingModel.default().config.query_prefix == ""  # MiniLM reads plain questions


def test_default_model_uses_context_that_static_minilm_and_its_own_ablation_miss():
    with gzip.open(HELDOUT, "rt") as f:
        samples = [json.loads(line) for line in f][:30]
    systems = build_systems(["evo", "evo-zero-memory", "minilm"], model=EvoEmbeddingModel.default())
    result = evaluate(samples_to_conversations(samples), systems, progress=False)["systems"]
    evo, zero, static = (result[name]["overall"] for name in ("evo", "evo-zero-memory", "minilm"))
    assert evo["R@1"] >= static["R@1"] + 20
    assert evo["R@1"] > zero["R@1"] and evo["NDCG@10"] > zero["NDCG@10"]


def test_the_turn_stating_an_earlier_fact_ranks_first():
    """A later turn carries the earlier context, yet the turn that states a fact wins its question."""
    stream = EvoEmbeddingModel.default().stream()
    vectors = stream.add(
        [
            "Ana: I grew up in Porto, by the river.",
            "Bob: My dog Rex hates the rain.",
            "Ana: Last spring I moved to Oslo for work.",
        ]
    )
    for memory in (True, False):
        assert (vectors @ stream.encode_query("Which city did Ana grow up in?", memory=memory)).argmax() == 0
        assert (vectors @ stream.encode_query("Where does Ana live now?", memory=memory)).argmax() == 2
