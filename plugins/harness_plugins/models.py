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

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness import hookimpl

if TYPE_CHECKING:
    from torch import nn

#: The encoder used when neither the protocol nor the entry names one.
DEFAULT_ENCODER = "resnet34"

#: The smallest input side SMP's PAN accepts: its feature pyramid attention pools the
#: 1/16 features three more times, so anything under 128 px pools to nothing.
PAN_MIN_SIZE = 128

#: What builds the models (``harness_plugins._smp``), importable from here as before; it
#: imports torch and SMP, so it loads on first use (``harness list`` needs none of it).
_BUILDERS = ("build_smp", "drop_unused_stages", "weights_or_none", "DroppedStage", "MinSizePad")


def __getattr__(name: str) -> Any:
    if name in _BUILDERS:
        return getattr(importlib.import_module("harness_plugins._smp"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
        from harness_plugins._smp import build_smp

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
    from harness_plugins._smp import MinSizePad, build_smp

    model = build_smp(
        "PAN",
        num_classes=num_classes,
        in_channels=in_channels,
        encoder=encoder,
        encoder_weights=encoder_weights,
        params=params,
        default_encoder=DEFAULT_ENCODER,
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
