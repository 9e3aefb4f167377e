"""Built-in losses: BCE, Dice and their weighted sum.

The two terms come straight from torch and segmentation_models_pytorch; only the
combination is written here. Every loss treats the 29 channels as independent
(multi-label), because carpal bones overlap.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from harness import hookimpl


def bce(**params: Any) -> nn.Module:
    """Per-pixel binary cross-entropy on logits (``torch.nn.BCEWithLogitsLoss``)."""
    return nn.BCEWithLogitsLoss(**params)


def _smp_dice(**params: Any) -> nn.Module:
    # Imported on first use: SMP takes seconds to import and `harness list` needs none of it.
    from segmentation_models_pytorch.losses import DiceLoss

    return DiceLoss(mode="multilabel", from_logits=True, **params)


def dice(**params: Any) -> nn.Module:
    """Soft Dice, one channel per class (SMP ``DiceLoss(mode="multilabel")``)."""
    return _smp_dice(**params)


class ComboLoss(nn.Module):
    """``dice * DiceLoss + bce * BCEWithLogitsLoss``: Dice for overlap, BCE for stable gradients."""

    def __init__(self, dice: float, bce: float) -> None:
        super().__init__()
        self.dice_weight = float(dice)
        self.bce_weight = float(bce)
        self.dice = _smp_dice()
        self.bce = nn.BCEWithLogitsLoss()

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.dice_weight * self.dice(logits, target) + self.bce_weight * self.bce(
            logits, target
        )


def combo(*, dice: float = 0.6, bce: float = 0.4) -> nn.Module:
    """Weighted sum of Dice and BCE (weights ``dice`` and ``bce``)."""
    if dice < 0 or bce < 0 or dice + bce <= 0:
        raise ValueError(
            f"weights must be non-negative and not both zero, got dice={dice}, bce={bce}"
        )
    return ComboLoss(dice=dice, bce=bce)


@hookimpl
def harness_losses() -> dict[str, Any]:
    return {"bce": bce, "dice": dice, "combo": combo}
