"""Training checkpoints as safetensors + JSON only (no pickle), written atomically.

A checkpoint directory holds:

* ``model/``: a loadable model (``EvoEmbeddingModel.save_pretrained``: config + trained weights);
* ``optimizer.safetensors``: every tensor of the optimizer state, flattened (``state.<param>.<key>``),
  plus the torch (and CUDA) RNG states (``rng.torch``, ``rng.cuda.<i>``);
* ``trainer_state.json``: step, data position, training config, optimizer skeleton (param groups,
  non-tensor state), scheduler state, Python and NumPy RNG states, data fingerprint.

Writes go to a temporary sibling directory renamed into place with ``os.replace``; ``latest.json``
(itself replaced atomically) names the newest complete checkpoint, so a kill at any moment leaves
the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

LATEST = "latest.json"
STATE = "trainer_state.json"
TENSORS = "optimizer.safetensors"
MODEL_DIR = "model"


def capture_rng() -> tuple[dict, dict[str, torch.Tensor]]:
    """Python/NumPy RNG states as JSON, torch/CUDA RNG states as tensors."""
    version, state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    as_json = {"python": [version, list(state), gauss], "numpy": [kind, keys.tolist(), pos, has_gauss, cached]}
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors.update({f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    return as_json, tensors


def restore_rng(as_json: dict, tensors: dict[str, torch.Tensor]) -> None:
    version, state, gauss = as_json["python"]
    random.setstate((version, tuple(state), gauss))
    kind, keys, pos, has_gauss, cached = as_json["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k[9:]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def flatten_optimizer(state_dict: dict) -> tuple[dict, dict[str, torch.Tensor]]:
    """Split an optimizer ``state_dict`` into a JSON skeleton and named tensors."""
    tensors, skeleton_state = {}, {}
    for param_id, entries in state_dict["state"].items():
        skeleton_state[str(param_id)] = {}
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{param_id}.{key}"] = value.detach().contiguous().cpu()
                skeleton_state[str(param_id)][key] = {"tensor": f"state.{param_id}.{key}"}
            else:
                skeleton_state[str(param_id)][key] = {"value": value}
    return {"state": skeleton_state, "param_groups": state_dict["param_groups"]}, tensors


def unflatten_optimizer(skeleton: dict, tensors: dict[str, torch.Tensor]) -> dict:
    state = {
        int(param_id): {
            key: tensors[ref["tensor"]] if "tensor" in ref else ref["value"] for key, ref in entries.items()
        }
        for param_id, entries in skeleton["state"].items()
    }
    groups = [{k: tuple(v) if k == "betas" else v for k, v in group.items()} for group in skeleton["param_groups"]]
    return {"state": state, "param_groups": groups}


def replace_dir(tmp: Path, target: Path) -> None:
    """Move a finished directory ``tmp`` to ``target``, replacing an older one."""
    old = target.with_name(target.name + ".old")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def save_checkpoint(out_dir: Path, step: int, model, state: dict, tensors: dict[str, torch.Tensor], keep: int) -> Path:
    """Write ``checkpoints/step-XXXXXXXX`` (model dir, tensors, JSON state), point ``latest.json`` at it."""
    root = out_dir / "checkpoints"
    target = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp / MODEL_DIR)
    save_file(tensors, tmp / TENSORS, metadata={"format": "evoembedding-trainer"})
    (tmp / STATE).write_text(json.dumps(state, indent=1))
    replace_dir(tmp, target)
    write_json_atomic(out_dir / LATEST, {"checkpoint": str(target.relative_to(out_dir)), "step": step})
    for stale in sorted(root.glob("step-*"))[:-keep]:
        shutil.rmtree(stale, ignore_errors=True)
    return target


def latest_checkpoint(out_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run directory, or ``None``."""
    pointer = out_dir / LATEST
    if not pointer.is_file():
        return None
    path = out_dir / json.loads(pointer.read_text())["checkpoint"]
    if not (path / STATE).is_file():
        raise ValueError(f"{pointer} names {path}, which is not a complete checkpoint")
    return path


def read_checkpoint(path: Path) -> tuple[dict, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``(json_state, optimizer_and_rng_tensors, model_weights)`` of a checkpoint directory."""
    from ..model import WEIGHTS_NAME

    return json.loads((path / STATE).read_text()), load_file(path / TENSORS), load_file(path / MODEL_DIR / WEIGHTS_NAME)
