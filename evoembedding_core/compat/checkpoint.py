"""Reading a checkpoint's tensors lazily and without unpickling.

Safetensors files (one, or shards listed in ``model.safetensors.index.json``) are opened with
``safe_open``; legacy torch files are read with ``torch.load(weights_only=True)``, which refuses
anything but tensors and plain containers.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

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
        ValueError: A shard index is malformed or names a file outside ``directory``, a torch file
            is not a flat state dict, or the checkpoint holds no tensors.
    """

    def __init__(self, directory: str | Path) -> None:
        directory = Path(directory)
        self.directory = directory
        self._where: dict[str, Path] = {}
        self._torch: dict[str, torch.Tensor] = {}
        files, weight_map = _weight_files(directory)
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
        absent = sorted(name for name in weight_map if name not in self)
        if absent:
            raise ValueError(f"{directory}: tensors listed in the shard index are in no shard: {absent[:3]}")

    def keys(self) -> list[str]:
        """All tensor names, sorted."""
        return sorted(set(self._where) | set(self._torch))

    def __contains__(self, name: str) -> bool:
        return name in self._where or name in self._torch

    def shape(self, name: str) -> tuple[int, ...]:
        """Shape of one tensor, without reading it.

        Raises:
            ValueError: The checkpoint has no tensor ``name``.
        """
        if name in self._torch:
            return tuple(self._torch[name].shape)
        with safe_open(str(self._file(name)), framework="pt") as handle:
            return tuple(handle.get_slice(name).get_shape())

    def get(self, name: str) -> torch.Tensor:
        """One tensor, read from disk.

        Raises:
            ValueError: The checkpoint has no tensor ``name``.
        """
        if name in self._torch:
            return self._torch[name]
        with safe_open(str(self._file(name)), framework="pt") as handle:
            return handle.get_tensor(name)

    def _file(self, name: str) -> Path:
        if name not in self._where:
            raise ValueError(f"{self.directory}: checkpoint has no tensor {name!r}")
        return self._where[name]


def _weight_files(directory: Path) -> tuple[list[Path], dict[str, str]]:
    """The checkpoint's weight files (sharded or single safetensors first, torch files otherwise)
    and the shard index's ``weight_map`` (empty without an index)."""
    for index_name in (SAFETENSORS_INDEX, TORCH_INDEX):
        index = directory / index_name
        if index.is_file():
            weight_map = _weight_map(index)
            shards = sorted(set(weight_map.values()))
            paths = [_shard_path(directory, shard, index_name) for shard in shards]
            missing = [s for s, path in zip(shards, paths) if not path.is_file()]
            if missing:
                raise FileNotFoundError(f"{directory}: shards listed in {index_name} are missing: {missing[:3]}")
            return paths, weight_map
    for pattern in ("*.safetensors", "pytorch_model*.bin"):
        found = sorted(directory.glob(pattern))
        if found:
            return found, {}
    raise FileNotFoundError(f"{directory} has no weights (*.safetensors or pytorch_model*.bin)")


def _weight_map(index: Path) -> dict[str, str]:
    """The ``weight_map`` of a shard index (tensor name -> shard file name), checked."""
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"{index}: not valid JSON ({exc})") from None
    except (KeyError, TypeError):
        raise ValueError(f"{index}: has no 'weight_map' object") from None
    if not isinstance(weight_map, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()
    ):
        raise ValueError(f"{index}: 'weight_map' must map tensor names to shard file names")
    return weight_map


def _shard_path(directory: Path, shard: str, index_name: str) -> Path:
    """The file of one shard entry, strictly inside the model directory.

    Refused: absolute paths, ``..`` components, backslashes, and entries resolving (through
    symbolic links) outside the directory; a Hugging Face cache snapshot may link to its repository's
    ``blobs`` folder, as ``huggingface_hub`` lays it out.
    """
    parts = PurePosixPath(shard).parts
    lexical_ok = shard and "\\" not in shard and ":" not in shard and ".." not in parts and not shard.startswith("/")
    root = directory.resolve()
    allowed = [root]
    if directory.parent.name == "snapshots":
        allowed.append((directory.parent.parent / "blobs").resolve())
    resolved = (root / shard).resolve() if lexical_ok else None
    if resolved is None or resolved == root or not any(resolved.is_relative_to(a) for a in allowed):
        raise ValueError(f"{directory / index_name}: weight_map entry {shard!r} points outside the model directory")
    return directory / shard
