"""Attention U-Net (Oktay et al. 2018, arXiv:1804.03999): a U-Net whose skips pass attention gates.

No library ships it, so the gates are written here; everything else is SMP's U-Net
(encoder, decoder blocks, head, initialisation, input checks), so ``attention-unet``
and ``unet`` with the same encoder differ by the gates alone. That is also why the
encoder is a parameter as for every other built-in (any SMP encoder or ``tu-`` timm
name; ``resnet34`` by default) rather than the paper's plain convolutional encoder.

Before a decoder block concatenates a skip feature map ``x`` it multiplies it by an
attention map computed from ``x`` and the coarser decoder feature ``g`` that gates it
(the paper's grid attention, eq. 1-2)::

    q     = psi(relu(W_x * x  +  W_g * g))   # W_x: 2x2 conv, stride 2, to g's grid; W_g, psi: 1x1
    alpha = upsample(sigmoid(q))             # one coefficient per pixel, back to x's size
    x_hat = W(alpha * x)                     # W: 1x1 conv + batch norm

so the decoder learns to pass only the skip features relevant to the structures the
coarse features point at (small bones among large ones, here).

This module registers itself with its own ``@hookimpl`` (entry point
``builtin-attention-unet``): adding it touched no other file. The gates themselves are in
``harness_plugins._attention_unet``, imported when the model is built (torch and SMP take
seconds to import, and naming or listing the model needs neither); ``AttentionGate`` and
``AttentionUnet`` are importable from here too.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from harness import hookimpl
from harness_plugins.models import DEFAULT_ENCODER

if TYPE_CHECKING:
    from torch import nn


def __getattr__(name: str) -> Any:
    """``AttentionGate`` and ``AttentionUnet``, from the module that needs torch, on first use."""
    if name in ("AttentionGate", "AttentionUnet"):
        return getattr(importlib.import_module("harness_plugins._attention_unet"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def attention_unet(
    *,
    num_classes: int,
    in_channels: int,
    encoder: str | None = None,
    encoder_weights: str | None = None,
    gate_reduction: int = 2,
    **params: Any,
) -> nn.Module:
    """Attention U-Net: SMP's U-Net with attention gates (Oktay et al. 2018) on its skips.

    ``encoder`` is any SMP encoder (``resnet34`` by default), as for ``unet``.
    ``gate_reduction``: a gate's inner channels are its skip's channels divided by this.
    Further parameters go to SMP's ``Unet`` (e.g. ``decoder_channels``).
    """
    if gate_reduction < 1:
        raise ValueError(f"gate_reduction must be at least 1, got {gate_reduction}")
    from harness_plugins._attention_unet import AttentionUnet
    from harness_plugins._smp import build_smp

    unet = build_smp(
        "Unet",
        num_classes=num_classes,
        in_channels=in_channels,
        encoder=encoder,
        encoder_weights=encoder_weights,
        params=params,
        default_encoder=DEFAULT_ENCODER,
    )
    return AttentionUnet(unet, gate_reduction=gate_reduction)


@hookimpl
def harness_models() -> dict[str, Any]:
    return {"attention-unet": attention_unet}
