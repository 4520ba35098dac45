"""Reading a checkpoint's tensors lazily and without unpickling.

Safetensors files (one, or shards listed in ``model.safetensors.index.json``) are opened with
``safe_open``; legacy torch files are read with ``torch.load(weights_only=True)``, which refuses
anything but tensors and plain containers.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open

SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_INDEX = "pytorch_model.bin.index.json"


class CheckpointReader:
    """Names, shapes and tensors of a checkpoint directory, read one tensor at a time.

    Args:
        directory: A directory with ``*.safetensors`` (single or sharded) or ``pytorch_model*.bin``.

    Raises:
        FileNotFoundError: No weight files, or listed shards are missing.
        ValueError: A torch file is not a flat state dict, or the checkpoint holds no tensors.
    """

    def __init__(self, directory: str | Path) -> None:
        directory = Path(directory)
        self._where: dict[str, Path] = {}
        self._torch: dict[str, torch.Tensor] = {}
        files = _weight_files(directory)
        for path in files:
            if path.suffix == ".safetensors":
                with safe_open(str(path), framework="pt") as handle:
                    self._where.update({name: path for name in handle.keys()})
            else:
                state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
                if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
                    raise ValueError(f"{path}: not a flat state dict of tensors")
                self._torch.update(state)
        if not self._where and not self._torch:
            raise ValueError(f"{directory}: checkpoint holds no tensors")

    def keys(self) -> list[str]:
        """All tensor names, sorted."""
        return sorted(set(self._where) | set(self._torch))

    def __contains__(self, name: str) -> bool:
        return name in self._where or name in self._torch

    def shape(self, name: str) -> tuple[int, ...]:
        """Shape of one tensor, without reading it."""
        if name in self._torch:
            return tuple(self._torch[name].shape)
        with safe_open(str(self._where[name]), framework="pt") as handle:
            return tuple(handle.get_slice(name).get_shape())

    def get(self, name: str) -> torch.Tensor:
        """One tensor, read from disk."""
        if name in self._torch:
            return self._torch[name]
        with safe_open(str(self._where[name]), framework="pt") as handle:
            return handle.get_tensor(name)


def _weight_files(directory: Path) -> list[Path]:
    """The checkpoint's weight files: sharded or single safetensors first, torch files otherwise."""
    for index_name in (SAFETENSORS_INDEX, TORCH_INDEX):
        index = directory / index_name
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            missing = [s for s in shards if not (directory / s).is_file()]
            if missing:
                raise FileNotFoundError(f"{directory}: shards listed in {index_name} are missing: {missing[:3]}")
            return [directory / s for s in shards]
    for pattern in ("*.safetensors", "pytorch_model*.bin"):
        found = sorted(directory.glob(pattern))
        if found:
            return found
    raise FileNotFoundError(f"{directory} has no weights (*.safetensors or pytorch_model*.bin)")
