"""Model files: weights load from safetensors (or ``torch.load(weights_only=True)``) only, so a planted
pickle never runs; a backbone that asks for its own Python code (``auto_map``) is refused unless the
caller opts in with ``trust_remote_code=True`` (a saved config cannot opt in on the user's behalf)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from test_reliability_hostile import pickle_bytes, torch_bytes

from evoembedding_core import EvoEmbeddingConfig, EvoEmbeddingModel
from evoembedding_core.backbones import load_backbone
from evoembedding_core.compat.checkpoint import CheckpointReader


@pytest.fixture
def evo_dir(tmp_path, tiny_causal_model) -> Path:
    return tiny_causal_model.save_pretrained(tmp_path / "evo-model")


def test_saved_model_round_trips(evo_dir, tiny_causal_model):
    assert EvoEmbeddingModel.from_pretrained(evo_dir, device="cpu").fingerprint() == tiny_causal_model.fingerprint()


@pytest.mark.parametrize("planted", ["pickle", "torch"])
def test_planted_weights_in_a_saved_model_are_never_executed(evo_dir, tmp_path, planted):
    sentinel = tmp_path / "pwned"
    data = pickle_bytes(sentinel) if planted == "pickle" else torch_bytes(tmp_path, sentinel)
    (evo_dir / "model.safetensors").write_bytes(data)
    with pytest.raises(ValueError, match="model.safetensors"):
        EvoEmbeddingModel.from_pretrained(evo_dir, device="cpu")
    assert not sentinel.exists(), "a planted payload was executed"


def test_a_pickle_beside_a_saved_model_is_ignored(evo_dir, tmp_path):
    sentinel = tmp_path / "pwned"
    (evo_dir / "model.safetensors").unlink()
    (evo_dir / "pytorch_model.bin").write_bytes(torch_bytes(tmp_path, sentinel))
    with pytest.raises((FileNotFoundError, ValueError), match="model.safetensors"):
        EvoEmbeddingModel.from_pretrained(evo_dir, device="cpu")
    assert not sentinel.exists()


def test_legacy_torch_checkpoints_are_read_weights_only(tmp_path):
    sentinel = tmp_path / "pwned"
    checkpoint = tmp_path / "released"
    checkpoint.mkdir()
    (checkpoint / "pytorch_model.bin").write_bytes(torch_bytes(tmp_path, sentinel))
    with pytest.raises(Exception, match="[Ww]eights only load failed|Unsupported global"):
        CheckpointReader(checkpoint)
    assert not sentinel.exists()
    # Plain tensors in a torch file still load.
    torch.save({"w": torch.ones(2)}, checkpoint / "pytorch_model.bin")
    assert CheckpointReader(checkpoint).keys() == ["w"]


def test_backbone_with_a_pickled_checkpoint_is_never_executed(tmp_path, tiny_causal_dir):
    sentinel = tmp_path / "pwned"
    backbone = Path(shutil.copytree(tiny_causal_dir, tmp_path / "backbone"))
    (backbone / "model.safetensors").unlink()
    (backbone / "pytorch_model.bin").write_bytes(torch_bytes(tmp_path, sentinel))
    with pytest.raises(Exception, match="[Ww]eights only load failed|Unsupported global|weights_only"):
        load_backbone(str(backbone), device="cpu")
    assert not sentinel.exists()


REMOTE_CODE = """
open({sentinel!r}, "w").write("remote code ran")
from transformers import Qwen3Config


class EvilConfig(Qwen3Config):
    pass
"""


@pytest.fixture
def remote_code_backbone(tmp_path, tiny_causal_dir) -> tuple[Path, Path]:
    """A copy of the tiny backbone whose config.json asks for its own Python code (which creates a file)."""
    sentinel = tmp_path / "remote-code-ran"
    backbone = Path(shutil.copytree(tiny_causal_dir, tmp_path / "remote-backbone"))
    (backbone / "evil.py").write_text(REMOTE_CODE.format(sentinel=str(sentinel)))
    config = json.loads((backbone / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig"}
    (backbone / "config.json").write_text(json.dumps(config))
    return backbone, sentinel


def test_remote_code_backbone_is_refused_by_default(remote_code_backbone):
    backbone, sentinel = remote_code_backbone
    with pytest.raises(ValueError, match="auto_map.*refused"):
        load_backbone(str(backbone), device="cpu")
    with pytest.raises(ValueError, match="auto_map.*refused"):
        EvoEmbeddingModel(EvoEmbeddingConfig(backbone=str(backbone)), device="cpu")
    assert not sentinel.exists()


def test_a_saved_config_cannot_opt_in_to_remote_code(remote_code_backbone, evo_dir):
    backbone, sentinel = remote_code_backbone
    config = json.loads((evo_dir / "config.json").read_text())
    config.update(backbone=str(backbone), trust_remote_code=True)  # a downloaded model trying to opt itself in
    (evo_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="auto_map.*refused"):
        EvoEmbeddingModel.from_pretrained(evo_dir, device="cpu")
    assert not sentinel.exists()


def test_explicit_opt_in_runs_the_remote_code(remote_code_backbone):
    backbone, sentinel = remote_code_backbone
    try:
        load_backbone(str(backbone), device="cpu", trust_remote_code=True)
    except Exception:  # the toy remote code need not make a working model: only the gate is tested
        pass
    assert sentinel.exists(), "trust_remote_code=True should let the backbone's own code run"
