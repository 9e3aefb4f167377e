"""What the built-in models build with: SMP's architectures on the harness's terms.

Imported only when a model is built (``harness_plugins.models`` and ``attention_unet``
name, describe and register their factories without torch or SMP, so that
``harness list`` and ``harness show`` answer at once).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import HarnessError

#: Parameters that would break the contract (logits out, one tensor out).
_FORBIDDEN = ("activation", "aux_params")


def weights_or_none(encoder_weights: str | None) -> str | None:
    """A protocol (TOML has no null) spells "no pretrained weights" as ``"none"``."""
    return None if str(encoder_weights).lower() in ("none", "") else encoder_weights


def build_smp(
    build: str | Callable[..., nn.Module],
    *,
    num_classes: int,
    in_channels: int,
    encoder: str | None,
    encoder_weights: str | None,
    params: dict[str, Any],
    default_encoder: str,
) -> nn.Module:
    """Build an SMP architecture (a ``smp.create_model`` name, or a constructor taking
    SMP's keywords) on the harness's terms; weights that cannot load are a ``HarnessError``.
    """
    for key in _FORBIDDEN:
        if key in params:
            raise ValueError(f"'{key}' is not allowed: harness models return plain logits")
    import segmentation_models_pytorch as smp  # seconds to import: only when a model is built

    encoder = encoder or default_encoder
    weights = weights_or_none(encoder_weights)
    constructor = (lambda **kw: smp.create_model(build, **kw)) if isinstance(build, str) else build
    try:
        model = constructor(
            encoder_name=encoder,
            encoder_weights=weights,
            in_channels=in_channels,
            classes=num_classes,
            **params,
        )
    except (OSError, RuntimeError) as exc:
        if weights is None:
            raise
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise HarnessError(
            f"pretrained weights '{weights}' for encoder '{encoder}' could not be loaded "
            f'({reason}); set encoder_weights = "none" in the protocol or put the weights '
            f"in the Hugging Face / torch hub cache"
        ) from exc
    if getattr(model.encoder, "_depth", 5) < 5:
        drop_unused_stages(model.encoder, in_channels)
    return model


def drop_unused_stages(encoder: nn.Module, in_channels: int) -> None:
    """Replace the encoder stages that no output depends on by a pass-through.

    SMP builds an encoder's every stage even when the architecture uses fewer
    (``encoder_depth``: PSPNet uses 3 of 5), and some encoders even run them and drop
    the result. Those stages would count in the parameter cost, be saved, and get no
    gradient (which stops data-parallel training), so they go: a probe backward from the
    features marks what the outputs depend on, and each largest subtree with parameters
    of which none got a gradient is replaced by a pass-through.
    """
    if any(t.is_meta for t in [*encoder.parameters(), *encoder.buffers()]):
        return  # a shape-only model has no values to follow: nothing can be told unused
    device = next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.enable_grad():
            features = encoder(torch.zeros(1, in_channels, 64, 64, device=device))
            total = sum(f.sum() for f in features if f.requires_grad)
            if isinstance(total, torch.Tensor):
                total.backward()
        reached = {id(p) for p in encoder.parameters() if p.grad is not None}
    finally:
        encoder.zero_grad(set_to_none=True)
        encoder.train(was_training)
    named = dict(encoder.named_modules())
    dead = {
        name
        for name, module in named.items()
        if name
        and any(True for _ in module.parameters())
        and not any(id(p) in reached for p in module.parameters())
    }
    for name in sorted(dead):
        parent, _, child = name.rpartition(".")
        if parent not in dead:
            setattr(named[parent], child, DroppedStage())


class DroppedStage(nn.Module):
    """Stands in for an encoder stage nothing depends on: passes its input through."""

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return x


class MinSizePad(torch.nn.Module):
    """Zero-pads inputs smaller than ``min_size`` (bottom and right) and crops the logits back."""

    def __init__(self, model: nn.Module, min_size: int) -> None:
        super().__init__()
        self.model = model
        self.min_size = min_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_h, pad_w = max(0, self.min_size - h), max(0, self.min_size - w)
        if pad_h == 0 and pad_w == 0:
            return self.model(x)
        return self.model(F.pad(x, (0, pad_w, 0, pad_h)))[..., :h, :w]
