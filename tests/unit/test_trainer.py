"""The trainer on real MiniLM weights and a tiny causal LM: overfit, exact resume, SIGTERM, CLI."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
import torch

from evoembedding_core import EvoEmbeddingConfig, EvoEmbeddingModel
from evoembedding_core.cli import main as cli_main
from evoembedding_core.config import INSTRUCTION_QUERY_PREFIX
from evoembedding_core.training import TrainConfig, Trainer, load_samples, read_log, tokenize_samples
from evoembedding_core.training.trainer import seed_everything, set_training_mode

# Context-dependent samples: the evidence is found through coreference, state updates, session
# dates or speaker attribution, never by the query's words alone.
SAMPLES = [
    (
        [
            "Anna: I met Tom at the bakery this morning.",
            "Tom: She bought a loaf of rye bread.",
            "Anna: Then we walked to the park.",
            "Tom: It started raining there.",
            "What did Anna buy?",
        ],
        [1],
        "rye bread",
    ),
    (
        [
            "Lea: My first job was in Paris.",
            "Lea: Later I moved to Rome for work.",
            "Lea: These days I work in Vienna.",
            "Max: Nice city.",
            "Where does Lea work now?",
        ],
        [2],
        "Vienna",
    ),
    (
        [
            "Session date: 4 March 2021",
            "Bob: I adopted a cat today.",
            "Eve: The weather is nice.",
            "Bob: I also painted the fence.",
            "When did Bob adopt the cat?",
        ],
        [0],
        "4 March 2021",
    ),
    (
        [
            "Kim: I like tea.",
            "Joe: I prefer coffee.",
            "Kim: Green tea mostly.",
            "Joe: Black, no sugar.",
            "What does Joe drink?",
        ],
        [1, 3],
        "black coffee",
    ),
]


def to_row(turns, evidence, answer):
    messages = [{"role": "user", "content": turns[-1]}, {"role": "assistant", "content": answer}]
    return {"messages": messages, "meta": {"turns": turns, "evidence_turns": evidence, "answer": answer}}


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "train.jsonl"
    path.write_text("".join(json.dumps(to_row(*s)) + "\n" for s in SAMPLES))
    return path


def minilm(**overrides) -> EvoEmbeddingModel:
    seed_everything(0)  # the same initial weights (LoRA A, memory queries) for every run
    return EvoEmbeddingModel(EvoEmbeddingConfig(**overrides), device="cpu")


def tokenized(model, data_file):
    return tokenize_samples(model, load_samples(data_file).samples).samples


def test_overfit_reaches_evidence_rank_one_for_every_sample(data_file, tmp_path):
    model = minilm()
    samples = tokenized(model, data_file)
    trainer = Trainer(
        model,
        samples,
        tmp_path,
        TrainConfig(steps=24, lr=1e-3, warmup_steps=2, progress=False, checkpoint_every=100),
        eval_samples=samples,
    )
    before = trainer.evaluate()
    assert before["r_at_1"] < 1.0  # the untrained model misses some evidence
    summary = trainer.train()
    assert summary["status"] == "done" and summary["eval_r_at_1"] == 1.0 and summary["eval_mean_rank"] == 1.0
    log = read_log(tmp_path)
    assert {"con", "mem", "lr", "segments_per_s", "grad_norm"} <= set(log[0])
    assert log[-1]["eval_r_at_1"] == 1.0
    reloaded = EvoEmbeddingModel.from_pretrained(tmp_path / "model", device="cpu")
    assert reloaded.fingerprint() == model.fingerprint()


def losses_by_step(out_dir) -> dict[int, tuple[float, float]]:
    return {r["step"]: (r["con"], r["mem"]) for r in read_log(out_dir) if "con" in r}


def test_stopped_and_resumed_run_follows_the_unbroken_loss_curve(data_file, tmp_path):
    # LoRA dropout makes the run consume torch RNG: the resumed RNG state matters too.
    config = TrainConfig(steps=4, lr=5e-4, warmup_steps=1, grad_accum=2, checkpoint_every=100, progress=False)
    model = minilm(lora_dropout=0.1)
    Trainer(model, tokenized(model, data_file), tmp_path / "a", config).train()
    unbroken = losses_by_step(tmp_path / "a")

    model = minilm(lora_dropout=0.1)
    assert (
        Trainer(model, tokenized(model, data_file), tmp_path / "b", config).train(stop_after=2)["status"] == "stopped"
    )
    model = minilm(lora_dropout=0.1)  # a fresh process would start from a new model too
    trainer = Trainer(model, tokenized(model, data_file), tmp_path / "b", config)
    assert trainer.resume() and trainer.step == 2 and trainer.position == 4
    trainer.train()
    resumed = losses_by_step(tmp_path / "b")
    assert sorted(resumed) == sorted(unbroken) == list(range(1, 5))
    np.testing.assert_allclose(
        np.array([resumed[s] for s in range(1, 5)]), np.array([unbroken[s] for s in range(1, 5)]), atol=1e-6, rtol=0
    )
    ckpt_files = {p.name for p in (tmp_path / "b" / "checkpoints").rglob("*") if p.is_file()}
    assert ckpt_files == {"config.json", "model.safetensors", "optimizer.safetensors", "trainer_state.json"}


def test_resume_refuses_different_data_or_config(data_file, tmp_path):
    config = TrainConfig(steps=1, progress=False, mem_weight=0)
    model = minilm()
    samples = tokenized(model, data_file)
    Trainer(model, samples, tmp_path, config).train()
    with pytest.raises(ValueError, match="training data differ"):
        Trainer(model, samples[:2], tmp_path, config).resume()
    with pytest.raises(ValueError, match="training config differs"):
        Trainer(model, samples, tmp_path, TrainConfig(steps=2, progress=False, mem_weight=0)).resume()


def test_resume_accepts_a_checkpoint_written_before_a_config_field_existed(data_file, tmp_path):
    config = TrainConfig(steps=2, progress=False, mem_weight=0)
    model = minilm()
    samples = tokenized(model, data_file)
    Trainer(model, samples, tmp_path, config).train(stop_after=1)
    state_file = next((tmp_path / "checkpoints").glob("step-*/trainer_state.json"))
    state = json.loads(state_file.read_text())
    del state["train_config"]["anchor_weight"]  # as saved by a version without L_anchor
    state_file.write_text(json.dumps(state))
    trainer = Trainer(minilm(), samples, tmp_path, config)
    assert trainer.resume() and trainer.step == 1


def test_anchor_weight_keeps_vectors_near_the_static_ones(data_file, tmp_path):
    """Same run with and without L_anchor: the anchored model drifts less from static MiniLM."""
    drift = {}
    for weight in (0.0, 10.0):
        model = minilm(query_prefix="")
        samples = tokenized(model, data_file)
        config = TrainConfig(steps=8, lr=1e-3, warmup_steps=1, progress=False, mem_weight=0, anchor_weight=weight)
        Trainer(model, samples, tmp_path / str(weight), config).train()
        assert {"anchor", "con"} <= set(read_log(tmp_path / str(weight))[0])
        meter = Trainer(model, samples, tmp_path / "meter", TrainConfig(progress=False, mem_weight=0, anchor_weight=1))
        with torch.no_grad():
            drift[weight] = float(np.mean([meter.sample_losses(s)["anchor"].item() for s in samples]))
    assert drift[10.0] < drift[0.0]


def test_sigterm_stops_with_a_checkpoint(data_file, tmp_path, monkeypatch):
    model = minilm()
    trainer = Trainer(model, tokenized(model, data_file), tmp_path, TrainConfig(steps=50, progress=False, mem_weight=0))
    log = trainer._log

    def log_then_sigterm(record):
        log(record)
        if record.get("step") == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(trainer, "_log", log_then_sigterm)
    handler = signal.getsignal(signal.SIGTERM)
    summary = trainer.train()
    assert summary["status"] == "stopped" and summary["step"] == 2
    assert signal.getsignal(signal.SIGTERM) is handler  # the previous handler is back
    assert json.loads((tmp_path / "latest.json").read_text())["step"] == 2


def test_cli_trains_refuses_to_overwrite_and_resumes(data_file, tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", "--data", str(data_file), "--out", str(out), "--steps", "2", "--no-progress", "--warmup", "1"]
    assert cli_main(base + ["--eval-data", str(data_file), "--memory-slots", "4"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "done" and summary["step"] == 2 and "eval_mean_rank" in summary
    assert EvoEmbeddingModel.from_pretrained(out / "model", device="cpu").config.memory_slots == 4
    with pytest.raises(SystemExit, match="--resume"):
        cli_main(base)
    assert cli_main(base + ["--resume"]) == 0  # already complete: resumes at step 2 and finishes
    assert "resumed from step 2" in capsys.readouterr().err


def test_tiny_causal_both_losses_finite_and_decreasing(tiny_causal_dir, tmp_path, data_file):
    config = EvoEmbeddingConfig(
        backbone=str(tiny_causal_dir),
        num_queries=2,
        memory_slots=4,
        lora_r=4,
        lora_alpha=8,
        chunk_segments=3,
        chunk_tokens=64,
        max_segment_tokens=48,
        query_prefix=INSTRUCTION_QUERY_PREFIX,
    )  # as a causal embedder would use
    model = EvoEmbeddingModel(config, device="cpu")
    samples = tokenized(model, data_file)
    trainer = Trainer(
        model,
        samples,
        tmp_path,
        TrainConfig(
            steps=16, lr=2e-3, head_lr_scale=0.1, warmup_steps=2, grad_accum=2, progress=False, checkpoint_every=100
        ),
    )
    set_training_mode(model, False)
    with torch.no_grad():
        before = [trainer.sample_losses(s) for s in samples]
    trainer.train()
    with torch.no_grad():
        after = [trainer.sample_losses(s) for s in samples]
    # L_mem starts near the random LM's entropy and moves slowly (only the memory prefix adapts).
    for key, margin in (("con", 0.5), ("mem", 0.995)):
        first, last = sum(x[key].item() for x in before), sum(x[key].item() for x in after)
        assert np.isfinite(first) and np.isfinite(last) and last < margin * first, (key, first, last)
    assert all(np.isfinite(r["loss"]) for r in read_log(tmp_path) if "loss" in r)


def test_further_queries_share_one_pass_and_average_their_losses(tmp_path):
    """A sample with meta.queries gives the mean of the losses of the same history asked each question alone."""
    history = SAMPLES[1][0][:-1]
    single = [to_row(history + ["Where does Lea work now?"], [2], "Vienna"),
              to_row(history + ["Where was Lea's first job?"], [0], "Paris")]  # fmt: skip
    multi = to_row(history + ["Where does Lea work now?"], [2], "Vienna")
    multi["meta"]["queries"] = [{"query": "Where was Lea's first job?", "evidence_turns": [0], "answer": "Paris"}]
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [*single, multi]))
    model = minilm(query_prefix="")
    a, b, both = tokenized(model, path)
    assert len(both.queries) == 1
    trainer = Trainer(model, [a, b, both], tmp_path / "run", TrainConfig(progress=False, anchor_weight=1))
    with torch.no_grad():
        la, lb, lboth = (trainer.sample_losses(s) for s in (a, b, both))
    for key in ("con", "mem"):
        assert lboth[key].item() == pytest.approx((la[key].item() + lb[key].item()) / 2, rel=1e-4, abs=1e-5)
    assert lboth["anchor"].item() > 0
    assert trainer.evaluate([both])["n"] == 2 and trainer.evaluate([a])["n"] == 1
    # one training step on the multi-question sample runs and logs the extra query as a segment
    Trainer(model, [both], tmp_path / "train", TrainConfig(steps=1, warmup_steps=0, progress=False)).train()
    assert read_log(tmp_path / "train")[0]["segments"] == len(history) + 2
