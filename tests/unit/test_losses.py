"""The training objectives: L_con against its formula, ranks, and where L_mem's gradients go."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from evoembedding_core import EvoEmbeddingModel
from evoembedding_core.recurrence import StreamState, advance
from evoembedding_core.static import StaticEmbedder
from evoembedding_core.training.losses import (
    anchor_loss,
    answer_ids,
    causal_memory_loss,
    causal_prompt,
    contrastive_loss,
    encoder_memory_loss,
    evidence_rank,
    static_embedding,
)

HISTORY = ["Maya: I grew up in Porto.", "Leo: Nice. Where do you live now?", "Maya: In Oslo, since last spring."]


def test_contrastive_loss_matches_the_formula():
    torch.manual_seed(0)
    vectors = F.normalize(torch.randn(7, 16), dim=-1)
    query = F.normalize(torch.randn(16), dim=0)
    positives, tau = [1, 4], 0.1
    s = [float(v @ query) / tau for v in vectors]
    negatives = [s[j] for j in range(7) if j not in positives]
    expected = sum(-math.log(math.exp(s[i]) / (math.exp(s[i]) + sum(map(math.exp, negatives)))) for i in positives)
    expected = expected / len(positives) * math.log(len(negatives) + 1)
    assert contrastive_loss(vectors, query, positives, tau).item() == pytest.approx(expected, rel=1e-5)


def test_contrastive_loss_prefers_the_positive_and_needs_one():
    query = torch.tensor([1.0, 0.0])
    near, far = torch.tensor([0.9, 0.1]), torch.tensor([0.0, 1.0])
    good = contrastive_loss(F.normalize(torch.stack([near, far]), dim=-1), query, [0])
    bad = contrastive_loss(F.normalize(torch.stack([near, far]), dim=-1), query, [1])
    assert good < bad
    assert contrastive_loss(F.normalize(torch.stack([near, far]), dim=-1), query, [0, 1]).item() == 0.0  # no negative
    with pytest.raises(ValueError):
        contrastive_loss(torch.stack([near, far]), query, [])


def test_evidence_rank_counts_ties_against_the_evidence():
    query = torch.tensor([1.0, 0.0])
    vectors = torch.tensor([[0.5, 0.5], [1.0, 0.0], [0.2, 0.9], [1.0, 0.0]])
    assert evidence_rank(vectors, query, [1]) == 2  # tied with segment 3
    assert evidence_rank(vectors, query, [1, 3]) == 1
    assert evidence_rank(vectors, query, [2]) == 4


@pytest.fixture(scope="module")
def causal_model(tiny_causal_model) -> EvoEmbeddingModel:
    return EvoEmbeddingModel(tiny_causal_model.config, device="cpu")


def _grads(model) -> dict[str, float]:
    return {n: (0.0 if p.grad is None else p.grad.abs().sum().item()) for n, p in model.trainable_named_parameters()}


def test_causal_memory_loss_trains_the_memory_path_only(causal_model):
    model = causal_model
    _, state = advance(model, StreamState.empty(model), model.tokenize(HISTORY))
    answer = answer_ids(model, "In Oslo.")
    loss = causal_memory_loss(model, state.memory, causal_prompt(model, "Where does Maya live now?"), answer)
    assert answer[-1] == model.tokenizer.eos_token_id
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    grads = _grads(model)
    model.zero_grad(set_to_none=True)
    assert sum(v for n, v in grads.items() if "lora_" in n and ".retriever" in n) == 0.0
    assert sum(v for n, v in grads.items() if n.startswith("mem_to_emb")) == 0.0
    for part in ("memory_queries", "mem_to_latent", "latent_to_mem"):
        assert sum(v for n, v in grads.items() if n.startswith(part)) > 0, part
    assert sum(v for n, v in grads.items() if "lora_B" in n and ".memory" in n) > 0


def test_causal_memory_loss_is_the_frozen_lm_cross_entropy(causal_model):
    """With an empty memory, L_mem is exactly the base LM's answer cross-entropy (adapters off)."""
    model = causal_model
    prompt, answer = causal_prompt(model, "Where does Maya live?"), answer_ids(model, "In Oslo.")
    with torch.no_grad():
        ours = causal_memory_loss(model, model.empty_memory(), prompt, answer)
        with model.adapter(None):
            logits = model.backbone.get_base_model()(input_ids=torch.tensor([prompt + answer])).logits[0]
        reference = F.cross_entropy(logits[len(prompt) - 1 : -1], torch.tensor(answer))
    assert ours.item() == pytest.approx(reference.item(), rel=1e-5)


def test_encoder_memory_loss_reads_the_frozen_backbone(minilm_model):
    model = minilm_model
    target = static_embedding(model, answer_ids(model, "She lives in Oslo."))
    # The frozen reader with an empty memory on the answer text itself gives the target exactly.
    same = encoder_memory_loss(model, model.empty_memory(), answer_ids(model, "She lives in Oslo."), target)
    assert same.item() == pytest.approx(0.0, abs=1e-5)
    query = model.tokenize(["Where does Maya live now?"])[0]
    _, state = advance(model, StreamState.empty(model), model.tokenize(HISTORY))
    loss = encoder_memory_loss(model, state.memory, query, target)
    assert 0 < loss.item() < 2
    (grad,) = torch.autograd.grad(loss, model.mem_to_latent[0].weight)
    assert grad.abs().sum() > 0
    empty = encoder_memory_loss(model, model.empty_memory(), query, target)
    assert empty.item() != pytest.approx(loss.item())  # the memory changes what the frozen backbone reads


def test_static_vectors_are_the_static_embedder_and_anchor_loss_measures_drift(minilm_model):
    model = minilm_model
    tokens = model.tokenize(HISTORY)
    static = model.static_vectors(tokens)
    np_static = StaticEmbedder().encode(HISTORY)
    assert static.shape == (3, model.hidden_size) and not static.requires_grad
    assert torch.allclose(static, torch.from_numpy(np_static), atol=1e-5)
    # Untrained model over an empty memory: exactly the static vectors, so no drift.
    empty = model.represent([model.empty_memory()] * 3, tokens)
    assert anchor_loss(empty, static).item() == pytest.approx(0.0, abs=1e-5)
    # Over the stream's memory the vectors move away; the loss is 1 - cos, differentiable in the model.
    vectors, _ = advance(model, StreamState.empty(model), tokens)
    loss = anchor_loss(vectors, static)
    expected = float((1 - (vectors.detach() * static).sum(-1)).mean())
    assert 0 < loss.item() == pytest.approx(expected, rel=1e-6)
    (grad,) = torch.autograd.grad(loss, model.mem_to_latent[0].weight)
    assert grad.abs().sum() > 0
    with pytest.raises(ValueError, match="do not match"):
        anchor_loss(vectors, static[:2])
