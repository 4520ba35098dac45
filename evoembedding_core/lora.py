"""The two LoRA adapters over one frozen backbone: building them, switching them, merging them.

This is the only module that touches peft internals. peft's public switches
(``PeftModel.set_adapter``, ``disable_adapter``, ``enable_adapters``) also set ``requires_grad`` on
the adapter weights, which would undo the trainer's choice of trainable parameters on every
forward; so :meth:`LoraAdapters.activate` sets the two per-layer fields those switches set
(``_active_adapter``, ``_disable_adapters``) and restores them afterwards.

Without autograd (inference) an active adapter runs *merged*: each LoRA linear becomes one matmul
with ``W + B A * scaling`` (summed in float32, rounded once to the base weight's dtype, cached per
adapter until a weight changes), instead of the base matmul plus two thin LoRA matmuls, a scale
and an add over every token.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial

import torch
import torch.nn.functional as F
from peft import LoraConfig, PeftModel, get_peft_model
from peft.tuners.lora import Linear as LoraLinear
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn

from .backbones import quiet_loading

MEMORY_ADAPTER = "memory"
RETRIEVER_ADAPTER = "retriever"
_FLOATS = (torch.float32, torch.bfloat16, torch.float16)


class LoraAdapters:
    """Named LoRA adapters of one backbone, switched without touching ``requires_grad``.

    Not an ``nn.Module``: the wrapped :attr:`model` is registered by its owner (parameter names stay
    ``backbone.base_model.model...``), this object only keeps the LoRA layers and the merge cache.

    Args:
        base_model: The frozen transformers model to wrap.
        target_modules: Names of the linear layers that get LoRA weights.
        r: LoRA rank.
        alpha: LoRA alpha (scaling is ``alpha / r``).
        dropout: LoRA dropout.
        names: Adapter names, the first one created by ``get_peft_model``.
    """

    def __init__(
        self,
        base_model: nn.Module,
        *,
        target_modules: Sequence[str],
        r: int,
        alpha: int,
        dropout: float = 0.0,
        names: Sequence[str] = (MEMORY_ADAPTER, RETRIEVER_ADAPTER),
    ) -> None:
        lora = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules))
        first, *others = names
        with quiet_loading():  # LoRA weights stay float32 even on a bf16 backbone (peft's autocast)
            self.model: PeftModel = get_peft_model(base_model, lora, adapter_name=first)
            for name in others:
                self.model.add_adapter(name, lora)
        self.names = tuple(names)
        self.layers = [m for m in self.model.modules() if isinstance(m, BaseTunerLayer)]
        self.lock = threading.RLock()
        """Held while an adapter is active: the switch is model-wide state."""
        self._merged_cache: dict[str, tuple[tuple, list[torch.Tensor]]] = {}

    @contextmanager
    def activate(self, name: str | None, *, merged: list[torch.Tensor] | None = None) -> Iterator[None]:
        """Run the wrapped model with one adapter on (``None``: all off), restoring the previous state.

        Holds :attr:`lock` meanwhile, so concurrent users never see each other's adapter.

        Args:
            name: The adapter to activate, or ``None`` for the bare backbone.
            merged: Per LoRA layer, a merged weight from :meth:`merged_weights`; each layer then runs
                one ``F.linear`` with it instead of peft's LoRA forward. ``None``: peft's forward.

        Raises:
            ValueError: ``name`` is not one of the adapters.
        """
        if name is not None and name not in self.names:
            raise ValueError(f"unknown adapter {name!r}; have {list(self.names)}")
        with self.lock:
            previous = [
                (layer._active_adapter, layer._disable_adapters, layer.__dict__.get("forward")) for layer in self.layers
            ]
            for layer in self.layers:
                layer._disable_adapters = name is None
                if name is not None:
                    layer._active_adapter = [name]
            for layer, weight in zip(self.layers, merged or ()):
                layer.forward = partial(F.linear, weight=weight, bias=layer.base_layer.bias)
            try:
                yield
            finally:
                for layer, (active, disabled, forward) in zip(self.layers, previous):
                    layer._active_adapter, layer._disable_adapters = active, disabled
                    if forward is None:
                        layer.__dict__.pop("forward", None)
                    else:
                        layer.forward = forward

    def merged_weights(self, name: str, *, training: bool = False) -> list[torch.Tensor] | None:
        """Per LoRA layer, its base weight with adapter ``name`` merged in.

        Args:
            name: The adapter to merge.
            training: Whether the owner is in training mode (dropout would make merging inexact).

        Returns:
            The merged weights (summed in float32, stored in each base weight's dtype), cached until
            a base or LoRA weight changes in place; ``None`` when merging is not exact or not allowed
            (autograd on, training mode, a layer that is not plain LoRA over a float ``nn.Linear``).
        """
        if torch.is_grad_enabled() or training or not self.layers:
            return None
        if not all(_plain_lora(layer, name) for layer in self.layers):
            return None
        key = tuple(
            (t.data_ptr(), t._version)
            for layer in self.layers
            for t in (layer.base_layer.weight, layer.lora_A[name].weight, layer.lora_B[name].weight)
        )
        cached = self._merged_cache.get(name)
        if cached is None or cached[0] != key:
            with torch.no_grad():
                weights = [_merged_weight(layer, name) for layer in self.layers]
            cached = self._merged_cache[name] = (key, weights)
        return cached[1]


def is_lora_parameter(name: str) -> bool:
    """Whether a parameter name belongs to a LoRA adapter's weights."""
    return "lora_" in name


def _plain_lora(layer: nn.Module, name: str) -> bool:
    """A vanilla LoRA ``Linear`` over a float ``nn.Linear``: merging it changes only float rounding
    (in float32; over a bfloat16/float16 backbone, one rounding of the summed weight)."""
    return (
        isinstance(layer, LoraLinear)
        and isinstance(layer.base_layer, nn.Linear)
        and name in layer.lora_A
        and name not in layer.lora_variant
        and not layer.fan_in_fan_out
        and layer.base_layer.weight.dtype in _FLOATS
        and layer.lora_A[name].weight.dtype in _FLOATS  # peft keeps adapters in float32 over a bf16 base
    )


def _merged_weight(layer: LoraLinear, name: str) -> torch.Tensor:
    """``W + B A * scaling`` of one LoRA layer, summed in float32, in the base weight's dtype."""
    base = layer.base_layer.weight
    delta = (layer.lora_B[name].weight.float() @ layer.lora_A[name].weight.float()) * layer.scaling[name]
    return (base.float() + delta).to(base.dtype)
