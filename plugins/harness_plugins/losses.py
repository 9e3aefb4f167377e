"""Built-in losses: torch's BCE, segmentation_models_pytorch's region losses, and two mixes.

Every loss treats the 29 channels as independent (multi-label), because carpal bones
overlap: the SMP losses run in ``mode="multilabel"`` on logits. Written here are only
what no library has: the weighted ``combo`` of Dice and BCE, and ``adaptive-dice``,
whose per-class weights follow the classes the model currently gets wrong.

torch and SMP are imported when a loss is built (the modules written here are in
``harness_plugins._losses``): they take seconds to import, and naming, describing and
listing the losses needs neither. The parameters each factory declares are checked
before anything runs (``dice:smooth=abc`` is one line at once); further ones go to SMP.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from harness import hookimpl

if TYPE_CHECKING:
    from torch import nn

_MULTILABEL = "multilabel"


def __getattr__(name: str) -> Any:
    """``ComboLoss`` and ``AdaptiveDiceLoss``, from the module that needs torch, on first use."""
    if name in ("ComboLoss", "AdaptiveDiceLoss"):
        return getattr(importlib.import_module("harness_plugins._losses"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def bce(**params: Any) -> nn.Module:
    """Per-pixel binary cross-entropy on logits (``torch.nn.BCEWithLogitsLoss``)."""
    import torch

    return torch.nn.BCEWithLogitsLoss(**params)


def dice(
    *, smooth: float = 0.0, eps: float = 1e-7, log_loss: bool = False, **params: Any
) -> nn.Module:
    """Soft Dice, one channel per class (SMP ``DiceLoss(mode="multilabel")``).

    ``smooth`` is added to numerator and denominator, ``eps`` keeps the denominator off
    zero, ``log_loss`` uses ``-log(Dice)`` instead of ``1 - Dice``.
    """
    from harness_plugins._losses import smp_dice

    return smp_dice(smooth=smooth, eps=eps, log_loss=log_loss, **params)


def jaccard(
    *, smooth: float = 0.0, eps: float = 1e-7, log_loss: bool = False, **params: Any
) -> nn.Module:
    """Soft Jaccard (IoU), one channel per class (SMP ``JaccardLoss(mode="multilabel")``).

    ``smooth``, ``eps`` and ``log_loss`` as for ``dice``.
    """
    from segmentation_models_pytorch.losses import JaccardLoss

    return JaccardLoss(
        mode=_MULTILABEL, from_logits=True, smooth=smooth, eps=eps, log_loss=log_loss, **params
    )


def tversky(
    *, alpha: float = 0.3, beta: float = 0.7, gamma: float = 1.0, **params: Any
) -> nn.Module:
    """Tversky loss (SMP ``TverskyLoss(mode="multilabel")``).

    ``alpha`` weighs false positives and ``beta`` false negatives; the defaults
    (0.3, 0.7) favour recall, which helps the smallest bones. ``alpha = beta = 0.5``
    is Dice; ``gamma > 1`` makes it the focal Tversky loss.
    """
    from segmentation_models_pytorch.losses import TverskyLoss

    return TverskyLoss(
        mode=_MULTILABEL, from_logits=True, alpha=alpha, beta=beta, gamma=gamma, **params
    )


def focal(*, gamma: float = 2.0, alpha: float | None = None, **params: Any) -> nn.Module:
    """Focal loss on every pixel and class (SMP ``FocalLoss(mode="multilabel")``, gamma 2).

    Down-weights the easy pixels (most of an X-ray is background) so training
    concentrates on the hard ones; ``gamma`` and ``alpha`` pass through to SMP.
    """
    from segmentation_models_pytorch.losses import FocalLoss

    return FocalLoss(mode=_MULTILABEL, gamma=gamma, alpha=alpha, **params)


def lovasz(*, per_image: bool = False, **params: Any) -> nn.Module:
    """Lovász hinge, a convex surrogate of IoU (SMP ``LovaszLoss(mode="multilabel")``).

    As SMP implements the multi-label mode, the hinge runs over the pixels of all
    classes together (``per_image=true``: per image, then averaged).
    """
    from segmentation_models_pytorch.losses import LovaszLoss

    return LovaszLoss(mode=_MULTILABEL, from_logits=True, per_image=per_image, **params)


def combo(*, dice: float = 0.6, bce: float = 0.4) -> nn.Module:
    """Weighted sum of Dice and BCE (weights ``dice`` and ``bce``)."""
    if dice < 0 or bce < 0 or dice + bce <= 0:
        raise ValueError(
            f"weights must be non-negative and not both zero, got dice={dice}, bce={bce}"
        )
    from harness_plugins._losses import ComboLoss

    return ComboLoss(dice=dice, bce=bce)


def adaptive_dice(
    *, momentum: float = 0.9, power: float = 1.0, smooth: float = 0.0, eps: float = 1e-7
) -> nn.Module:
    """Dice with dynamic class weights: classes with a high running Dice loss weigh more.

    See :class:`AdaptiveDiceLoss` for the update rule (``momentum``), the weights
    (``power``) and their normalisation (mean 1).
    """
    from harness_plugins._losses import AdaptiveDiceLoss

    return AdaptiveDiceLoss(momentum=momentum, power=power, smooth=smooth, eps=eps)


@hookimpl
def harness_losses() -> dict[str, Any]:
    return {
        "bce": bce,
        "dice": dice,
        "combo": combo,
        "focal": focal,
        "jaccard": jaccard,
        "tversky": tversky,
        "lovasz": lovasz,
        "adaptive-dice": adaptive_dice,
    }
