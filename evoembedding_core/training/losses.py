"""The training objectives: L_con (retrieval), L_mem (memory readable by the frozen backbone), L_anchor.

* :func:`contrastive_loss` (L_con): length-weighted multi-positive InfoNCE of the query against
  the sample's segment vectors; for each positive i,
  ``-log(exp(s_i/tau) / (exp(s_i/tau) + sum_neg exp(s_j/tau)))``, averaged over the positives and
  multiplied by ``log(N + 1)`` (N negatives), so long streams weigh more; cosine similarities.
* :func:`causal_memory_loss` (L_mem, causal backbones): cross-entropy of the answer tokens predicted
  by the frozen backbone (both adapters off, its own LM head) from
  ``[mem_to_latent(final memory); query prompt]``; only the memory path gets gradients.
* :func:`encoder_memory_loss` (L_mem, encoder backbones, no LM head): the frozen backbone (adapters
  off) reads ``[mem_to_latent(final memory); query]``; its mean-pooled query state must point
  (cosine) to the frozen static embedding of the answer. The query alone does not contain the
  answer, so the latents must carry content the frozen backbone can read.
* :func:`anchor_loss` (L_anchor, optional): keeps each segment's and the query's vector near the
  frozen backbone's static vector of the same text (the query without its instruction prefix), so
  that fine-tuning on narrow synthetic data does not unlearn the backbone's general retrieval.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

ANSWER_TOKENS = 64
"""At most this many answer tokens are scored (causal L_mem) or embedded (encoder target)."""


def contrastive_loss(
    segment_vectors: torch.Tensor, query_vector: torch.Tensor, positives: list[int], temperature: float = 0.1
) -> torch.Tensor:
    """L_con for one sample: ``segment_vectors`` (n, E) and ``query_vector`` (E,), both L2-normalised."""
    if not positives:
        raise ValueError("contrastive_loss needs at least one positive")
    logits = (segment_vectors.float() @ query_vector.float()) / temperature  # (n,)
    is_positive = torch.zeros_like(logits, dtype=torch.bool)
    is_positive[positives] = True
    negatives = logits[~is_positive]
    pos = logits[is_positive]
    neg_lse = torch.logsumexp(negatives, 0) if negatives.numel() else logits.new_tensor(-math.inf)
    # -log(e^{s_i} / (e^{s_i} + sum e^{s_j})) = logaddexp(s_i, lse_neg) - s_i
    per_positive = torch.logaddexp(pos, neg_lse.expand_as(pos)) - pos
    return per_positive.mean() * math.log(negatives.numel() + 1)


def evidence_rank(segment_vectors: torch.Tensor, query_vector: torch.Tensor, positives: list[int]) -> int:
    """1-based rank of the best-scored positive: 1 + the negatives scored at least as high (ties count against)."""
    scores = segment_vectors.float() @ query_vector.float()
    is_positive = torch.zeros_like(scores, dtype=torch.bool)
    is_positive[positives] = True
    return int((scores[~is_positive] >= scores[is_positive].max()).sum().item()) + 1


def causal_prompt(model, query: str) -> list[int]:
    """Token ids of the query as a prompt to the backbone (its chat template when it has one)."""
    tok = model.tokenizer
    if getattr(tok, "chat_template", None):
        return list(
            tok.apply_chat_template(
                [{"role": "user", "content": query}], add_generation_prompt=True, tokenize=True, return_dict=False
            )
        )
    return tok(f"User: {query}\nAssistant: ", add_special_tokens=False)["input_ids"]


def answer_ids(model, answer: str) -> list[int]:
    """Token ids of the answer (causal: followed by EOS), at most ``ANSWER_TOKENS``."""
    tok = model.tokenizer
    if model.kind == "causal":
        return (tok(answer, add_special_tokens=False)["input_ids"] + [tok.eos_token_id])[:ANSWER_TOKENS]
    return model.tokenize([answer])[0][:ANSWER_TOKENS]


def causal_memory_loss(model, memory: torch.Tensor, prompt: list[int], answer: list[int]) -> torch.Tensor:
    """Cross-entropy (mean over answer tokens) of the frozen LM reading ``[latents; prompt; answer]``."""
    hidden, segment_mask = model._encode_rows(None, [memory], [prompt + answer], with_queries=False)
    positions = segment_mask[0].nonzero().squeeze(1)[len(prompt) - 1 : -1]  # states that predict the answer
    head = model.backbone.get_base_model().get_output_embeddings()
    logits = head(hidden[0, positions])
    target = torch.tensor(answer, device=logits.device)
    return F.cross_entropy(logits.float(), target)


def static_embedding(model, token_ids: list[int]) -> torch.Tensor:
    """The frozen backbone's pooled, normalised vector of one token sequence, detached: (D,)."""
    return model.static_vectors([token_ids])[0]


def encoder_memory_loss(model, memory: torch.Tensor, query: list[int], target: torch.Tensor) -> torch.Tensor:
    """``1 - cos`` between the frozen backbone's pooled query state over the memory and ``target``."""
    hidden, mask = model._encode_rows(None, [memory], [query], with_queries=False)
    return 1.0 - F.cosine_similarity(model.pool(hidden, mask)[0].float(), target, dim=0)


def anchor_loss(vectors: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """L_anchor: mean ``1 - cos`` of the model's vectors (n, E) to the static vectors of the same
    texts (n, E). It keeps what the backbone already retrieves well while L_con teaches context."""
    if vectors.shape != targets.shape:
        raise ValueError(f"anchor targets {tuple(targets.shape)} do not match the vectors {tuple(vectors.shape)}")
    return (1.0 - (vectors.float() * targets.float()).sum(-1)).mean()
