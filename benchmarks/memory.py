"""Memory: RSS while one stream ingests many turns, against the bytes actually kept, and state size.

The stream reads ``--turns`` chat turns in ``add`` calls of ``--call-size``; like a store, the
script keeps every returned vector (float32) and text. RSS is sampled after each call. What must
hold: RSS grows by no more than what is kept (vectors + texts): the stream itself is bounded.
Also reports the bytes of one stream's state (``state_dict`` tensors and its saved file).

    .venv/bin/python benchmarks/memory.py --turns 10000
    .venv/bin/python benchmarks/memory.py --turns 2000        # what ``make bench`` runs
    MALLOC_MMAP_THRESHOLD_=65536 .venv/bin/python benchmarks/memory.py --turns 2000 --out ...
    .venv/bin/python benchmarks/memory.py --turns 2000 --malloc-trim --out ...

The glibc allocator settings in the environment (``MALLOC_*``) are recorded with the results;
``--malloc-trim`` calls glibc's ``malloc_trim(0)`` after every call (returns freed heap pages).

Prints a table and writes ``benchmarks/results/memory.json``.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import chat_turns, parse_args, print_table, write_results
from tqdm.auto import tqdm

from evoembedding_core import EvoEmbeddingModel

MB = 1024 * 1024


def rss_bytes() -> int:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize()


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=10_000)
    parser.add_argument("--call-size", type=int, default=100)
    parser.add_argument("--malloc-trim", action="store_true", help="glibc malloc_trim(0) after every call")
    args = parse_args(parser)
    trim = ctypes.CDLL("libc.so.6").malloc_trim if args.malloc_trim else None
    trim_s = 0.0

    model = EvoEmbeddingModel.default(device="cpu", dtype=args.torch_dtype)
    turns = chat_turns(args.turns, model.tokenizer, seed=args.seed)
    stream = model.stream()
    stream.add(turns[: args.call_size])  # warm-up: thread pools, allocator, merged adapter weights
    stream.reset()

    baseline = rss_bytes()
    kept_vectors, kept_texts, samples = [], [], []
    for start in tqdm(range(0, len(turns), args.call_size), desc="ingest", unit="call"):
        batch = turns[start : start + args.call_size]
        kept_vectors.append(stream.add(batch))
        kept_texts += batch
        if trim is not None:
            start_trim = time.perf_counter()
            trim(0)
            trim_s += time.perf_counter() - start_trim
        kept = sum(v.nbytes for v in kept_vectors) + sum(len(t.encode()) for t in kept_texts)
        samples.append({"turns": len(kept_texts), "rss_mb": round(rss_bytes() / MB, 1), "kept_mb": round(kept / MB, 2)})
    kept = sum(v.nbytes for v in kept_vectors) + sum(len(t.encode()) for t in kept_texts)
    # From the first call on (activation buffers and allocator arenas sized), RSS may grow only by what is kept.
    first, last = samples[0], samples[-1]
    growth = (last["rss_mb"] - first["rss_mb"]) * MB
    kept_growth = (last["kept_mb"] - first["kept_mb"]) * MB
    state = stream.state_dict()
    tensor_bytes = sum(state[k].numel() * state[k].element_size() for k in ("memory", "chunk_memory"))
    with tempfile.TemporaryDirectory() as tmp:
        stream.save(Path(tmp) / "stream.safetensors")
        file_bytes = (Path(tmp) / "stream.safetensors").stat().st_size

    later = samples[1:]
    slope = np.polyfit([s["turns"] for s in later], [s["rss_mb"] * MB for s in later], 1)[0] if len(later) > 1 else 0.0
    kept_per_turn = kept / len(turns)
    step = max(1, len(samples) // 8)
    print_table(
        ["turns read", "RSS MB", "kept vectors+texts MB"],
        [[s["turns"], s["rss_mb"], s["kept_mb"]] for s in samples[::step] + samples[-1:]],
    )
    within = growth <= kept_growth * 1.5 + 16 * MB  # allocator slack: arenas grow in blocks
    print(
        f"RSS after the first call {first['rss_mb']:.0f} MB (model loaded: {baseline / MB:.0f} MB); then grew "
        f"{growth / MB:.1f} MB while {kept_growth / MB:.2f} MB more was kept ({'bounded' if within else 'GROWS'}); "
        f"slope {slope:.0f} B/turn vs {kept_per_turn:.0f} B/turn kept; peak RSS {peak_rss_bytes() / MB:.0f} MB"
    )
    print(
        f"stream state: {tensor_bytes} bytes of tensors ({state['memory'].shape[0]} + {state['chunk_memory'].shape[0]} "
        f"latents x {model.hidden_size}), {file_bytes} bytes saved"
    )
    write_results(
        "memory",
        {
            "args": vars(args) | {"out": str(args.out)},
            "malloc_env": {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")},
            "malloc_trim_seconds": round(trim_s, 3),
            "rss_baseline_mb": round(baseline / MB, 1),
            "rss_after_first_call_mb": first["rss_mb"],
            "rss_growth_after_first_call_mb": round(growth / MB, 1),
            "kept_growth_after_first_call_mb": round(kept_growth / MB, 2),
            "kept_mb": round(kept / MB, 2),
            "peak_rss_mb": round(peak_rss_bytes() / MB, 1),
            "rss_slope_bytes_per_turn_after_first_call": round(float(slope), 1),
            "kept_bytes_per_turn": round(kept_per_turn, 1),
            "growth_bounded_by_kept": bool(within),
            "state_tensor_bytes": tensor_bytes,
            "state_file_bytes": file_bytes,
            "samples": samples,
        },
        args.out,
    )


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
