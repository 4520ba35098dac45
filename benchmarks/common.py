"""Shared pieces of the benchmarks: realistic chat turns, machine facts, timing, results files."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import time
from pathlib import Path

import torch

RESULTS_DIR = Path(__file__).parent / "results"
MIN_TOKENS, MAX_TOKENS = 10, 120
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def chat_turns(
    n: int, tokenizer, *, seed: int = 0, min_tokens: int = MIN_TOKENS, max_tokens: int = MAX_TOKENS
) -> list[str]:
    """``n`` chat turns of realistic, varied length (``min_tokens``..``max_tokens`` backbone tokens).

    Synthetic conversations (``evoembedding_core.training.synth``, seeded) are read in order; each
    turn joins consecutive messages until it reaches a length drawn log-uniformly from the range
    (people send one-liners and paragraphs), then is cut back to ``max_tokens`` tokens.
    """
    from evoembedding_core.training.synth import generate

    rng = random.Random(seed)
    turns: list[str] = []
    pending: list[str] = []
    target = _draw(rng, min_tokens, max_tokens)
    for sample in generate(10**9, seed=seed, min_turns=32, max_turns=128):
        for message in sample["meta"]["turns"][:-1]:  # the last one is the sample's query
            pending.append(message)
            text = "\n".join(pending)
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(ids) < target:
                continue
            turns.append(tokenizer.decode(ids[:max_tokens]) if len(ids) > max_tokens else text)
            pending, target = [], _draw(rng, min_tokens, max_tokens)
            if len(turns) == n:
                return turns
    raise AssertionError("unreachable: generate() is unbounded")


def _draw(rng: random.Random, low: int, high: int) -> int:
    return int(math.exp(rng.uniform(math.log(low), math.log(high + 1))))


def parse_args(parser) -> "argparse.Namespace":
    """Add the options every benchmark shares (--seed, --threads, --out), parse, apply --threads."""
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch (and FAISS) threads; default: torch's choice. On a CPU shared with "
        "other jobs, 1 avoids threads waiting on each other (see the README's Performance)",
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--device", choices=["cpu", "cuda"], default="cpu", help="where every model of the run runs (default: cpu)"
    )
    parser.add_argument(
        "--dtype",
        choices=["auto", *sorted(DTYPES)],
        default="auto",
        help="backbone dtype of every model in the run (default: the library's automatic choice, "
        "bfloat16 on CPUs with AMX, see evoembedding_core.devices; the same for every system)",
    )
    args = parser.parse_args()
    apply_threads(args.threads)
    if args.dtype == "auto":
        from evoembedding_core.devices import default_dtype

        args.torch_dtype = default_dtype(args.device)
        args.dtype = str(args.torch_dtype).removeprefix("torch.")
    else:
        args.torch_dtype = DTYPES[args.dtype]
    return args


def apply_threads(threads: int | None) -> None:
    if threads is not None:
        import faiss

        torch.set_num_threads(threads)
        faiss.omp_set_num_threads(threads)


def machine() -> dict:
    """Facts that make a figure interpretable: device, threads and how loaded the CPU was."""
    info = {
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if info["device"] == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    """Seconds a call took (``perf_counter``) and its result."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def write_results(name: str, result: dict, out: Path | None = None) -> Path:
    """Write ``result`` (with the machine facts) as ``benchmarks/results/<name>.json``; returns the path."""
    path = out or RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), **result}, indent=2, default=str) + "\n")
    print(f"wrote {path}")
    return path


def print_table(headers: list[str], rows: list[list]) -> None:
    """A plain fixed-width table on stdout."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths)))
    for row in cells:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def profile_top_ops(fn, *args, top: int = 15) -> list[dict]:
    """Run ``fn(*args)`` under ``torch.profiler``; print and return its top operators by self CPU time."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn(*args)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top))
    return [
        {
            "op": e.key,
            "calls": e.count,
            "self_cpu_ms": round(e.self_cpu_time_total / 1000, 1),
            "share": round(e.self_cpu_time_total / total, 3),
        }
        for e in events[:top]
    ]
