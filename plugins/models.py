"""Built-in models: four segmentation_models_pytorch architectures behind one signature.

SMP already gives every architecture the same constructor with the encoder as a
parameter, so each factory here only maps the harness's contract onto it: grayscale
input, one logit channel per bone, a default encoder, and no download unless asked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness import hookimpl
from harness.errors import HarnessError

if TYPE_CHECKING:
    from torch import nn

#: The encoder used when neither the protocol nor the entry names one.
DEFAULT_ENCODER = "resnet34"

#: Parameters that would break the contract (logits out, one tensor out).
_FORBIDDEN = ("activation", "aux_params")


def _smp_model(
    arch: str,
    *,
    num_classes: int,
    in_channels: int,
    encoder: str | None,
    encoder_weights: str | None,
    params: dict[str, Any],
) -> nn.Module:
    for key in _FORBIDDEN:
        if key in params:
            raise ValueError(f"'{key}' is not allowed: harness models return plain logits")
    # Imported on first use: SMP takes seconds to import and `harness list` needs none of it.
    import segmentation_models_pytorch as smp

    encoder = encoder or DEFAULT_ENCODER
    # A protocol (TOML has no null) spells "no pretrained weights" as "none".
    weights = None if str(encoder_weights).lower() in ("none", "") else encoder_weights
    try:
        return smp.create_model(
            arch,
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


def unet(
    *,
    num_classes: int,
    in_channels: int,
    encoder: str | None = None,
    encoder_weights: str | None = None,
    **params: Any,
) -> nn.Module:
    """U-Net: encoder-decoder with skip connections at every scale."""
    return _smp_model(
        "unet",
        num_classes=num_classes,
        in_channels=in_channels,
        encoder=encoder,
        encoder_weights=encoder_weights,
        params=params,
    )


def unetpp(
    *,
    num_classes: int,
    in_channels: int,
    encoder: str | None = None,
    encoder_weights: str | None = None,
    **params: Any,
) -> nn.Module:
    """U-Net++: U-Net with nested, densely connected skip pathways."""
    return _smp_model(
        "unetplusplus",
        num_classes=num_classes,
        in_channels=in_channels,
        encoder=encoder,
        encoder_weights=encoder_weights,
        params=params,
    )


def fpn(
    *,
    num_classes: int,
    in_channels: int,
    encoder: str | None = None,
    encoder_weights: str | None = None,
    **params: Any,
) -> nn.Module:
    """Feature Pyramid Network: multi-scale features merged top-down."""
    return _smp_model(
        "fpn",
        num_classes=num_classes,
        in_channels=in_channels,
        encoder=encoder,
        encoder_weights=encoder_weights,
        params=params,
    )


def deeplabv3plus(
    *,
    num_classes: int,
    in_channels: int,
    encoder: str | None = None,
    encoder_weights: str | None = None,
    **params: Any,
) -> nn.Module:
    """DeepLabV3+: atrous spatial pyramid pooling with a light decoder."""
    return _smp_model(
        "deeplabv3plus",
        num_classes=num_classes,
        in_channels=in_channels,
        encoder=encoder,
        encoder_weights=encoder_weights,
        params=params,
    )


@hookimpl
def harness_models() -> dict[str, Any]:
    return {"unet": unet, "unetpp": unetpp, "fpn": fpn, "deeplabv3plus": deeplabv3plus}
