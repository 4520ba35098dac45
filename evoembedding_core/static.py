"""StaticEmbedder: the context-free baseline (mean-pooled backbone, every text on its own)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .backbones import MINILM, load_backbone
from .validation import check_int, check_positive_int, validate_texts


class StaticEmbedder:
    """Encode texts independently: mean pooling over the backbone's last hidden states, L2-normalised.

    With the default backbone this is sentence-transformers' all-MiniLM-L6-v2 (256 tokens max).

    >>> embedder = StaticEmbedder()                                  # doctest: +SKIP
    >>> embedder.encode(["Alice: I moved to Lyon."]).shape            # doctest: +SKIP
    (1, 384)
    """

    def __init__(
        self,
        backbone: str = MINILM,
        *,
        batch_size: int = 64,
        max_tokens: int = 256,
        device: torch.device | str | None = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        """Load the backbone.

        Args:
            backbone: An encoder backbone (a packaged name, a directory or a Hugging Face id).
            batch_size: Texts per forward call.
            max_tokens: Longer texts are truncated to this many tokens.
            device: Where to run.
            dtype: ``torch.bfloat16`` computes in bf16 (faster on CPUs with AMX / AVX512-BF16);
                vectors stay float32.

        Raises:
            ValueError: ``batch_size`` < 1, ``max_tokens`` < 2, or the backbone is not an encoder.
        """
        check_positive_int(batch_size, "batch_size")
        check_int(max_tokens, "max_tokens", minimum=2)
        loaded = load_backbone(backbone, device=device, dtype=dtype)
        if loaded.kind != "encoder":
            raise ValueError(f"StaticEmbedder needs an encoder backbone; {backbone!r} is {loaded.kind}")
        self.model, self.tokenizer = loaded.model, loaded.tokenizer
        self.batch_size, self.max_tokens = batch_size, max_tokens

    @property
    def dim(self) -> int:
        """Size of the vectors."""
        return self.model.config.hidden_size

    def encode(self, texts, *, progress: bool = False) -> np.ndarray:
        """Encode texts, each on its own.

        Args:
            texts: The texts (a single string is one text).
            progress: Show a progress bar.

        Returns:
            Normalised vectors (n, dim) float32, in input order (batches are formed by length).

        Raises:
            TypeError, ValueError: Invalid texts.
        """
        texts = validate_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        starts = range(0, len(order), self.batch_size)
        for start in tqdm(starts, desc="static encode", unit="batch", disable=not progress, leave=False):
            batch = order[start : start + self.batch_size]
            enc = self.tokenizer(
                [texts[i] for i in batch],
                padding=True,
                truncation=True,
                max_length=self.max_tokens,
                return_tensors="pt",
            ).to(self.model.device)
            with torch.inference_mode():
                hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1)
            out[batch] = F.normalize(pooled.float(), dim=-1).cpu().numpy()
        return out
