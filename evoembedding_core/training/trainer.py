"""The trainer: L = L_con + mem_weight * L_mem + anchor_weight * L_anchor over EvoTrain samples, resumable exactly.

One sample is one micro-batch: its history is read with :func:`~evoembedding_core.recurrence.advance`
(the inference code, dynamic segment batching, autograd on), the query with
:func:`~evoembedding_core.recurrence.represent_queries` over the final state. ``grad_accum``
micro-batches make one optimizer step (AdamW on the model's trainable parameters only; linear
warmup then cosine decay to 0; gradient clipping). bf16 autocast on CUDA, float32 on CPU.

The data order depends only on ``(seed, epoch)`` and the data position is the number of samples
consumed, so a checkpoint (weights, optimizer, scheduler, RNG, position) resumes the exact run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import random
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.optim import AdamW
from torch.optim.lr_scheduler import LambdaLR
from tqdm.auto import tqdm

from ..model import EvoEmbeddingModel
from ..recurrence import StreamState, advance, represent_queries
from . import checkpoint as ckpt
from .data import MAX_SEGMENTS, MAX_TOKENS, TokenizedSample, sample_at
from .losses import (
    anchor_loss,
    answer_ids,
    causal_memory_loss,
    causal_prompt,
    contrastive_loss,
    encoder_memory_loss,
    evidence_rank,
    static_embedding,
)

LOG_NAME = "log.jsonl"


@dataclass
class TrainConfig:
    """Training hyper-parameters (saved with every checkpoint)."""

    steps: int = 1000
    """Optimizer steps."""
    lr: float = 1e-4
    """Learning rate of the LoRA adapters and memory queries."""
    head_lr_scale: float = 0.01
    """The heads' learning rate is ``lr * head_lr_scale``: their inputs carry the ``init_shift`` offset
    (model.py), so an Adam step on a head moves its outputs ~hidden*shift times more than on LoRA."""
    warmup_steps: int = 50
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    grad_accum: int = 1
    """Samples per optimizer step."""
    temperature: float = 0.1
    mem_weight: float = 1.0
    """Weight of L_mem (0 = ablation: contrastive loss only)."""
    anchor_weight: float = 0.0
    """Weight of L_anchor (0 = off): vectors kept near the frozen backbone's static vectors."""
    seed: int = 0
    checkpoint_every: int = 100
    eval_every: int = 0
    """Held-out evaluation every this many steps (0: only at the end)."""
    keep_checkpoints: int = 2
    bf16: bool = True
    """bf16 autocast when training on CUDA (ignored on CPU)."""
    gradient_checkpointing: bool = False
    max_tokens: int = MAX_TOKENS
    max_segments: int = MAX_SEGMENTS
    progress: bool = True

    def __post_init__(self) -> None:
        if self.steps < 1 or self.grad_accum < 1 or self.checkpoint_every < 1 or self.keep_checkpoints < 1:
            raise ValueError("steps, grad_accum, checkpoint_every and keep_checkpoints must be >= 1")
        if self.lr <= 0 or self.head_lr_scale < 0 or self.temperature <= 0 or self.warmup_steps < 0:
            raise ValueError("lr and temperature must be > 0; head_lr_scale and warmup_steps >= 0")
        if self.mem_weight < 0 or self.anchor_weight < 0:
            raise ValueError("mem_weight and anchor_weight must be >= 0")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def warmup_cosine(warmup: int, total: int):
    """LR multiplier: linear warmup over ``warmup`` steps, then cosine decay to 0 at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def parameter_groups(model: EvoEmbeddingModel, config: TrainConfig) -> list[dict]:
    """AdamW groups over the model's trainable parameters: LoRA + memory queries, and the heads."""
    heads = {"latent_to_mem", "mem_to_latent", "mem_to_emb"}
    named = model.trainable_named_parameters()
    return [
        {"params": [p for n, p in named if n.split(".")[0] not in heads], "lr": config.lr},
        {"params": [p for n, p in named if n.split(".")[0] in heads], "lr": config.lr * config.head_lr_scale},
    ]


def data_fingerprint(samples: list[TokenizedSample]) -> str:
    digest = hashlib.sha256()
    for s in samples:
        record = [s.history, s.query, s.evidence, s.answer]
        if s.queries:  # samples without further questions keep the fingerprint they always had
            record.append([[q.query, q.evidence, q.answer] for q in s.queries])
        digest.update(json.dumps(record).encode())
    return digest.hexdigest()


def set_training_mode(model: EvoEmbeddingModel, training: bool) -> None:
    """Train mode for LoRA dropout and checkpointed layers only: the frozen backbone keeps eval-mode dropout."""
    model.eval()
    if not training:
        return
    for name, module in model.named_modules():
        if name.endswith("lora_dropout") or getattr(module, "gradient_checkpointing", False) is True:
            module.train()


class Trainer:
    """Trains ``model`` on tokenised samples, writing checkpoints, a model dir and a JSONL log to ``out_dir``.

    >>> trainer = Trainer(model, tokenize_samples(model, load_samples("train.jsonl").samples).samples,
    ...                   "runs/a", TrainConfig(steps=500))        # doctest: +SKIP
    >>> trainer.resume()                                          # doctest: +SKIP
    >>> trainer.train()                                           # doctest: +SKIP
    """

    def __init__(
        self,
        model: EvoEmbeddingModel,
        samples: list[TokenizedSample],
        out_dir: str | Path,
        config: TrainConfig,
        *,
        eval_samples: list[TokenizedSample] | None = None,
    ) -> None:
        if not samples:
            raise ValueError("no training samples")
        self.model, self.samples, self.config = model, samples, config
        self.eval_samples = eval_samples or []
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        seed_everything(config.seed)
        self.optimizer = AdamW(parameter_groups(model, config), weight_decay=config.weight_decay)
        self.scheduler = LambdaLR(self.optimizer, warmup_cosine(config.warmup_steps, config.steps))
        self.step = 0
        self.position = 0
        self._fingerprint = data_fingerprint(samples)
        self._stop = threading.Event()
        if config.gradient_checkpointing:
            model.backbone.get_base_model().gradient_checkpointing_enable({"use_reentrant": False})
        self._autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if model.device.type == "cuda" and config.bf16
            else contextlib.nullcontext()
        )

    # ------------------------------------------------------------------ losses
    def sample_losses(self, sample: TokenizedSample) -> dict[str, torch.Tensor]:
        """``{"con", "mem", "anchor", "loss"}`` for one sample, with autograd (a term whose weight is 0 is 0).

        A sample with further questions (``meta.queries``) reads its history once; L_con and L_mem
        are averaged over its questions, L_anchor covers the segments and every question.
        """
        model, cfg = self.model, self.config
        queries = sample.all_queries()
        with self._autocast:
            vectors, state = advance(model, StreamState.empty(model), sample.history)
            query_vectors = represent_queries(model, state, [q.query for q in queries])
            con = torch.stack(
                [
                    contrastive_loss(vectors, query_vectors[i], q.evidence, cfg.temperature)
                    for i, q in enumerate(queries)
                ]
            ).mean()
            mem = con.new_zeros(())
            if cfg.mem_weight:
                mem = torch.stack([self._memory_loss(q.query_text, q.answer, state.memory) for q in queries]).mean()
            anchor = con.new_zeros(())
            if cfg.anchor_weight:
                texts = sample.history + [model.tokenize([q.query_text])[0] for q in queries]
                anchor = anchor_loss(torch.cat([vectors, query_vectors]), model.static_vectors(texts))
        return {
            "con": con,
            "mem": mem,
            "anchor": anchor,
            "loss": con + cfg.mem_weight * mem + cfg.anchor_weight * anchor,
        }

    def _memory_loss(self, question: str, answer: str, memory: torch.Tensor) -> torch.Tensor:
        model = self.model
        if model.kind == "causal":
            return causal_memory_loss(model, memory, causal_prompt(model, question), answer_ids(model, answer))
        target = static_embedding(model, answer_ids(model, answer))
        return encoder_memory_loss(model, memory, model.tokenize([question])[0], target)

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, samples: list[TokenizedSample] | None = None) -> dict[str, float]:
        """Mean rank and R@1 of the best-ranked evidence segment over the questions of ``samples``
        (default: the eval set); ``n`` counts the questions (a sample's query and its ``meta.queries``)."""
        samples = self.eval_samples if samples is None else samples
        ranks = []
        set_training_mode(self.model, False)
        with self._autocast:
            for sample in samples:
                vectors, state = advance(self.model, StreamState.empty(self.model), sample.history)
                queries = sample.all_queries()
                query_vectors = represent_queries(self.model, state, [q.query for q in queries])
                ranks.extend(evidence_rank(vectors, query_vectors[i], q.evidence) for i, q in enumerate(queries))
        return {"mean_rank": float(np.mean(ranks)), "r_at_1": float(np.mean([r == 1 for r in ranks])), "n": len(ranks)}

    # ------------------------------------------------------------------ the loop
    def train(self, *, stop_after: int | None = None) -> dict:
        """Train up to ``config.steps``; returns a summary. Stops early (with a checkpoint) on SIGTERM
        or after step ``stop_after``, so that :meth:`resume` can continue the same run."""
        cfg = self.config
        previous = self._install_sigterm()
        bar = tqdm(total=cfg.steps, initial=self.step, desc="train", disable=not cfg.progress, dynamic_ncols=True)
        last = {}
        try:
            while self.step < cfg.steps:
                last = self._train_step()
                bar.update(1)
                bar.set_postfix(
                    loss=f"{last['loss']:.4f}", lr=f"{last['lr']:.2e}", seg_s=f"{last['segments_per_s']:.1f}"
                )
                if cfg.eval_every and self.eval_samples and self.step % cfg.eval_every == 0 and self.step < cfg.steps:
                    self._log({"step": self.step, **{f"eval_{k}": v for k, v in self.evaluate().items()}})
                stopping = self._stop.is_set() or (stop_after is not None and self.step >= stop_after)
                if self.step % cfg.checkpoint_every == 0 or stopping or self.step == cfg.steps:
                    self.save_checkpoint()
                if stopping:
                    return {"status": "stopped", "step": self.step, **last}
        finally:
            bar.close()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        summary = {"status": "done", "step": self.step, **last}
        if self.eval_samples:
            summary.update({f"eval_{k}": v for k, v in self.evaluate().items()})
            self._log({"step": self.step, **{k: v for k, v in summary.items() if k.startswith("eval_")}})
        ckpt.replace_dir(self.model.save_pretrained(self.out_dir / ".tmp-model"), self.out_dir / "model")
        return summary

    def _train_step(self) -> dict:
        cfg, model = self.config, self.model
        set_training_mode(model, True)
        start, segments, totals = time.perf_counter(), 0, {"loss": 0.0, "con": 0.0, "mem": 0.0, "anchor": 0.0}
        for _ in range(cfg.grad_accum):
            sample = sample_at(self.samples, cfg.seed, self.position)
            self.position += 1
            losses = self.sample_losses(sample)
            (losses["loss"] / cfg.grad_accum).backward()
            segments += len(sample.history) + 1 + len(sample.queries)
            for key in totals:
                totals[key] += losses[key].item() / cfg.grad_accum
        grad_norm = torch.nn.utils.clip_grad_norm_(model.trainable_parameters(), cfg.grad_clip)
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        elapsed = time.perf_counter() - start
        record = {
            "step": self.step,
            **totals,
            "lr": lr,
            "grad_norm": float(grad_norm),
            "segments": segments,
            "seconds": elapsed,
            "segments_per_s": segments / elapsed,
            "position": self.position,
        }
        self._log(record)
        return record

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> Path:
        rng_json, rng_tensors = ckpt.capture_rng()
        skeleton, opt_tensors = ckpt.flatten_optimizer(self.optimizer.state_dict())
        state = {
            "step": self.step,
            "position": self.position,
            "train_config": dataclasses.asdict(self.config),
            "optimizer": skeleton,
            "scheduler": self.scheduler.state_dict(),
            "rng": rng_json,
            "data": {"samples": len(self.samples), "fingerprint": self._fingerprint},
        }
        return ckpt.save_checkpoint(
            self.out_dir, self.step, self.model, state, {**opt_tensors, **rng_tensors}, self.config.keep_checkpoints
        )

    def resume(self) -> bool:
        """Continue from the newest checkpoint in ``out_dir``; returns False when there is none."""
        path = ckpt.latest_checkpoint(self.out_dir)
        if path is None:
            return False
        state, tensors, weights = ckpt.read_checkpoint(path)
        if state["data"] != {"samples": len(self.samples), "fingerprint": self._fingerprint}:
            raise ValueError(f"{path}: the training data differ from the data this run was started with")
        if TrainConfig(**state["train_config"]) != self.config:  # fields added later take their defaults
            raise ValueError(f"{path}: the training config differs from this run's (use TrainConfig(**saved))")
        self.model.load_trained_weights(weights)
        self.optimizer.load_state_dict(ckpt.unflatten_optimizer(state["optimizer"], tensors))
        self.scheduler.load_state_dict(state["scheduler"])
        ckpt.restore_rng(state["rng"], tensors)
        self.step, self.position = state["step"], state["position"]
        self._truncate_log(self.step)
        return True

    # ------------------------------------------------------------------ signals and log
    def _install_sigterm(self):
        if threading.current_thread() is not threading.main_thread():
            return None
        return signal.signal(signal.SIGTERM, lambda *_: self._stop.set())

    def _log(self, record: dict) -> None:
        with open(self.out_dir / LOG_NAME, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def _truncate_log(self, step: int) -> None:
        """Drop log lines of steps after ``step`` (they are redone after a resume)."""
        log = self.out_dir / LOG_NAME
        if not log.is_file():
            return
        kept = [line for line in log.read_text().splitlines() if line and json.loads(line).get("step", 0) <= step]
        tmp = log.with_name(log.name + ".tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        tmp.replace(log)


def read_log(out_dir: str | Path) -> list[dict]:
    """The JSONL log of a run directory, one dict per line."""
    path = Path(out_dir) / LOG_NAME
    return [json.loads(line) for line in path.read_text().splitlines() if line]
