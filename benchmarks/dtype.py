"""Backbone precision on this CPU: float32 vs bfloat16 vs int8 dynamic quantization, same turns, one run.

Each variant of the default model reads the same chat turns through one ``EvoStream`` and encodes
the same queries; the variants alternate ``--repeats`` times so that all see the same machine load.
Fidelity is the cosine of each turn and query vector to the float32 model's.

int8 is ``torch.ao`` dynamic quantization (int8 weights, activations quantized per batch): every
LoRA layer runs its adapter merged into the frozen weight (as inference always does), and that
merged weight is quantized once per adapter; the other linear layers are quantized as they are.

    .venv/bin/python benchmarks/dtype.py --turns 300

Writes ``benchmarks/results/dtype.json``.
"""

from __future__ import annotations

import argparse
import statistics
from contextlib import contextmanager

import numpy as np
import torch
from common import chat_turns, parse_args, print_table, timed, write_results
from torch import nn

from evoembedding_core import EvoEmbeddingModel
from evoembedding_core.devices import cpu_dtype_report

QUERIES = ["Where does she live now?", "What did they talk about last week?", "Who has a cat?", "When is the trip?"]


def quantize_int8(model: EvoEmbeddingModel) -> EvoEmbeddingModel:
    """Make ``model`` run every backbone linear layer as int8 dynamic quantization (in place)."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
    from torch.ao.quantization import default_dynamic_qconfig

    adapters = model.adapters
    layers = adapters.layers
    lora_bases = {id(layer.base_layer) for layer in layers}
    # Plain linear layers outside LoRA: replaced in place.
    for parent in list(model.backbone.modules()):
        for child_name, child in list(parent.named_children()):
            if (
                type(child) is nn.Linear
                and id(child) not in lora_bases
                and child not in [m for layer in layers for m in (*layer.lora_A.values(), *layer.lora_B.values())]
            ):
                child.qconfig = default_dynamic_qconfig
                setattr(parent, child_name, DynamicLinear.from_float(child))
    cache: dict[tuple[int, str | None], nn.Module] = {}

    def quantized(layer, name, weight):
        key = (id(layer), name)
        if key not in cache:
            plain = nn.Linear(weight.shape[1], weight.shape[0], bias=layer.base_layer.bias is not None)
            with torch.no_grad():
                plain.weight.copy_(weight.float())
                if layer.base_layer.bias is not None:
                    plain.bias.copy_(layer.base_layer.bias.float())
            plain.qconfig = default_dynamic_qconfig
            cache[key] = DynamicLinear.from_float(plain)
        return cache[key]

    original = adapters.activate

    @contextmanager
    def activate(name, *, merged=None):
        with original(name, merged=None):
            weights = (
                adapters.merged_weights(name) if name is not None else [layer.base_layer.weight for layer in layers]
            )
            for layer, weight in zip(layers, weights):
                layer.forward = quantized(layer, name, weight).forward  # a method: not registered as a submodule
            try:
                yield
            finally:
                for layer in layers:
                    layer.__dict__.pop("forward", None)

    adapters.activate = activate
    return model


def run(model: EvoEmbeddingModel, turns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    stream = model.stream()
    vectors = np.concatenate([stream.add(turns[i : i + 100]) for i in range(0, len(turns), 100)])
    return vectors, stream.encode_queries(QUERIES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=2)
    args = parse_args(parser)
    variants = {
        "float32": EvoEmbeddingModel.default(device="cpu", dtype=torch.float32),
        "bfloat16": EvoEmbeddingModel.default(device="cpu", dtype=torch.bfloat16),
        "int8-dynamic": quantize_int8(EvoEmbeddingModel.default(device="cpu", dtype=torch.float32)),
    }
    turns = chat_turns(args.turns, variants["float32"].tokenizer, seed=args.seed)
    out, times = {}, {name: [] for name in variants}
    for model in variants.values():
        run(model, turns[:32])  # warm-up
    for _ in range(args.repeats):
        for name, model in variants.items():
            seconds, out[name] = timed(run, model, turns)
            times[name].append(seconds)
    ref_turns, ref_queries = out["float32"]
    rows, result = [], {"args": vars(args) | {"out": str(args.out)}, "cpu": cpu_dtype_report(), "variants": {}}
    base = statistics.median(times["float32"])
    for name in variants:
        turn_vectors, query_vectors = out[name]
        cos = (turn_vectors * ref_turns).sum(1)
        qcos = (query_vectors * ref_queries).sum(1)
        median = statistics.median(times[name])
        entry = {
            "seconds": [round(s, 3) for s in times[name]],
            "turns_per_s": round(len(turns) / median, 1),
            "speedup_vs_float32": round(base / median, 3),
            "turn_cosine_min": round(float(cos.min()), 5),
            "turn_cosine_mean": round(float(cos.mean()), 5),
            "query_cosine_min": round(float(qcos.min()), 5),
        }
        result["variants"][name] = entry
        rows.append([name, median, entry["turns_per_s"], entry["speedup_vs_float32"], entry["turn_cosine_min"]])
    print_table(["variant", "seconds", "turns/s", "speed-up", "min cosine vs f32"], rows)
    write_results("dtype", result, args.out)


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
