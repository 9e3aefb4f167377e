"""Built-in models: the segmentation_models_pytorch architectures behind one signature.

SMP already gives every architecture the same constructor with the encoder as a
parameter, so each factory here only maps the harness's contract onto it: grayscale
input, one logit channel per bone, a default encoder, and no download unless asked.
Every factory honours ``encoder`` (``--encoder`` or the protocol's): any SMP encoder
name, or a timm model as ``tu-NAME`` (e.g. ``tu-convnext_atto``). Not every
architecture accepts every encoder (SMP refuses e.g. UNet++ on a ``mit_b*``
transformer); SMP's refusal becomes a one-line error naming the model.

``segformer`` is the transformer option: SMP's SegFormer decoder, and with
``--encoder mit_b0`` ... ``mit_b5`` its Mix Transformer encoder. A protocol always
names an encoder (e.g. ``resnet18``), so ask for the transformer explicitly:
``harness run --model segformer --encoder mit_b0``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from harness import hookimpl
from harness.errors import HarnessError

#: The encoder used when neither the protocol nor the entry names one.
DEFAULT_ENCODER = "resnet34"

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
    default_encoder: str = DEFAULT_ENCODER,
) -> nn.Module:
    """Build an SMP architecture (a ``smp.create_model`` name, or a constructor taking
    SMP's keywords) on the harness's terms; weights that cannot load are a ``HarnessError``.
    """
    for key in _FORBIDDEN:
        if key in params:
            raise ValueError(f"'{key}' is not allowed: harness models return plain logits")
    # Imported on first use: SMP takes seconds to import and `harness list` needs none of it.
    import segmentation_models_pytorch as smp

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


def _smp_factory(arch: str, doc: str, default_encoder: str = DEFAULT_ENCODER) -> Callable[..., Any]:
    """A factory for one ``smp.create_model`` architecture, with the harness's signature."""

    def factory(
        *,
        num_classes: int,
        in_channels: int,
        encoder: str | None = None,
        encoder_weights: str | None = None,
        **params: Any,
    ) -> nn.Module:
        return build_smp(
            arch,
            num_classes=num_classes,
            in_channels=in_channels,
            encoder=encoder,
            encoder_weights=encoder_weights,
            params=params,
            default_encoder=default_encoder,
        )

    factory.__name__ = factory.__qualname__ = arch.lower()
    factory.__doc__ = (
        f"{doc}\n\nSMP ``{arch}``; the encoder defaults to ``{default_encoder}``. Further "
        f"parameters go to its constructor (e.g. ``decoder_channels``)."
    )
    return factory


unet = _smp_factory("Unet", "U-Net: encoder-decoder with skip connections at every scale.")
unetpp = _smp_factory("UnetPlusPlus", "U-Net++: U-Net with nested, densely connected skips.")
fpn = _smp_factory("FPN", "Feature Pyramid Network: multi-scale features merged top-down.")
deeplabv3plus = _smp_factory(
    "DeepLabV3Plus", "DeepLabV3+: atrous spatial pyramid pooling with a light decoder."
)
manet = _smp_factory("MAnet", "MA-Net: position- and channel-attention blocks in a U-Net decoder.")
linknet = _smp_factory("Linknet", "LinkNet: a light decoder that adds (not concatenates) skips.")
pspnet = _smp_factory("PSPNet", "PSPNet: pyramid pooling over the encoder's 1/8 features.")
upernet = _smp_factory("UPerNet", "UPerNet: pyramid pooling head on a feature pyramid.")
segformer = _smp_factory(
    "Segformer",
    "SegFormer: an all-MLP decoder; with a ``mit_b0``-``mit_b5`` encoder, a transformer.",
)

#: The smallest input side SMP's PAN accepts: its feature pyramid attention pools the
#: 1/16 features three more times, so anything under 128 px pools to nothing.
PAN_MIN_SIZE = 128


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


def pan(
    *,
    num_classes: int,
    in_channels: int,
    encoder: str | None = None,
    encoder_weights: str | None = None,
    **params: Any,
) -> nn.Module:
    """Pyramid Attention Network: feature pyramid attention plus global attention upsampling.

    SMP ``PAN``; the encoder defaults to ``resnet34``. SMP's PAN needs inputs of at least
    128 px, so smaller inputs (the ``tiny`` protocol trains at 64) are zero-padded at the
    bottom and right to 128 and the logits cropped back: the output always matches the input.
    """
    model = build_smp(
        "PAN",
        num_classes=num_classes,
        in_channels=in_channels,
        encoder=encoder,
        encoder_weights=encoder_weights,
        params=params,
    )
    return MinSizePad(model, PAN_MIN_SIZE)


@hookimpl
def harness_models() -> dict[str, Any]:
    return {
        "unet": unet,
        "unetpp": unetpp,
        "fpn": fpn,
        "deeplabv3plus": deeplabv3plus,
        "manet": manet,
        "linknet": linknet,
        "pspnet": pspnet,
        "pan": pan,
        "upernet": upernet,
        "segformer": segformer,
    }
