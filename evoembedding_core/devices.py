"""Which backbone dtype is fastest here: CPU feature detection and the ``EVOEMBEDDING_DTYPE`` override.

On a CPU with AMX (``amx_bf16``) or AVX512-BF16 (``avx512_bf16``) the backbone computes in bfloat16
by default: such CPUs run bf16 matmuls natively (about 2x float32 end to end, measured in
``benchmarks/dtype.py``), and the vectors stay within bf16 rounding of the float32 model's (cosine
>= 0.999, tested). Other CPUs emulate bf16 (slower than float32) and keep float32; CUDA uses
bfloat16. An explicit ``dtype=`` argument always wins; otherwise ``EVOEMBEDDING_DTYPE`` (``float32``,
``bfloat16``, ``float16`` or ``auto``) overrides the automatic choice.
"""

from __future__ import annotations

import functools
import os

import torch

DTYPE_ENV = "EVOEMBEDDING_DTYPE"
"""Environment variable that overrides the default backbone dtype (``float32``, ``bfloat16``, ``auto``...)."""
FAST_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
"""``/proc/cpuinfo`` flags that make bfloat16 the CPU default."""
_NAMES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
}


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bfloat16 matmuls natively, faster than float32 (AMX or AVX512-BF16)."""
    if any(flag in cpu_flags() for flag in FAST_BF16_FLAGS):
        return True
    capability = torch.backends.cpu.get_cpu_capability().upper()
    return "AMX" in capability or "BF16" in capability


def parse_dtype(value: str | torch.dtype) -> torch.dtype | None:
    """A dtype from a name such as ``"bfloat16"`` (``"auto"``: ``None``, the automatic choice).

    Raises:
        ValueError: An unknown name.
    """
    if isinstance(value, torch.dtype):
        return value
    name = value.strip().lower().removeprefix("torch.")
    if name in ("", "auto"):
        return None
    if name not in _NAMES:
        raise ValueError(f"unknown dtype {value!r}; use one of {', '.join(sorted(_NAMES))} or 'auto'")
    return _NAMES[name]


def default_dtype(device: torch.device | str) -> torch.dtype:
    """The backbone dtype used when none is given: ``$EVOEMBEDDING_DTYPE``, else bfloat16 on CUDA
    and on CPUs with AMX / AVX512-BF16, else float32.

    Raises:
        ValueError: ``$EVOEMBEDDING_DTYPE`` names no dtype.
    """
    device = torch.device(device)
    chosen = parse_dtype(os.environ.get(DTYPE_ENV, "auto"))
    if chosen is not None:
        return chosen
    if device.type == "cuda":
        return torch.bfloat16
    if device.type == "cpu" and cpu_has_fast_bf16():
        return torch.bfloat16
    return torch.float32


def cpu_dtype_report() -> dict:
    """What the automatic choice saw: the relevant CPU flags, torch's CPU capability and the choice."""
    flags = cpu_flags()
    return {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "flags": sorted(f for f in flags if f.startswith("amx") or f in ("avx512_bf16", "avx512f", "avx2")),
        "override": os.environ.get(DTYPE_ENV),
        "cpu_default": str(default_dtype("cpu")),
    }
