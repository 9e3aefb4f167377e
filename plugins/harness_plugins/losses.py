"""Built-in losses: torch's BCE, segmentation_models_pytorch's region losses, and two mixes.

Every loss treats the 29 channels as independent (multi-label), because carpal bones
overlap: the SMP losses run in ``mode="multilabel"`` on logits. Written here are only
what no library has: the weighted ``combo`` of Dice and BCE, and ``adaptive-dice``,
whose per-class weights follow the classes the model currently gets wrong.

SMP is imported on first use: it takes seconds to import and `harness list` needs
none of it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from harness import hookimpl

_MULTILABEL = "multilabel"


def bce(**params: Any) -> nn.Module:
    """Per-pixel binary cross-entropy on logits (``torch.nn.BCEWithLogitsLoss``)."""
    return nn.BCEWithLogitsLoss(**params)


def _smp_dice(**params: Any) -> nn.Module:
    from segmentation_models_pytorch.losses import DiceLoss

    return DiceLoss(mode=_MULTILABEL, from_logits=True, **params)


def dice(**params: Any) -> nn.Module:
    """Soft Dice, one channel per class (SMP ``DiceLoss(mode="multilabel")``)."""
    return _smp_dice(**params)


def jaccard(**params: Any) -> nn.Module:
    """Soft Jaccard (IoU), one channel per class (SMP ``JaccardLoss(mode="multilabel")``)."""
    from segmentation_models_pytorch.losses import JaccardLoss

    return JaccardLoss(mode=_MULTILABEL, from_logits=True, **params)


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


def focal(**params: Any) -> nn.Module:
    """Focal loss on every pixel and class (SMP ``FocalLoss(mode="multilabel")``, gamma 2).

    Down-weights the easy pixels (most of an X-ray is background) so training
    concentrates on the hard ones; ``gamma`` and ``alpha`` pass through to SMP.
    """
    from segmentation_models_pytorch.losses import FocalLoss

    return FocalLoss(mode=_MULTILABEL, **params)


def lovasz(**params: Any) -> nn.Module:
    """Lovász hinge, a convex surrogate of IoU (SMP ``LovaszLoss(mode="multilabel")``).

    As SMP implements the multi-label mode, the hinge runs over the pixels of all
    classes together (``per_image=true``: per image, then averaged).
    """
    from segmentation_models_pytorch.losses import LovaszLoss

    return LovaszLoss(mode=_MULTILABEL, from_logits=True, **params)


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


class AdaptiveDiceLoss(nn.Module):
    """Soft Dice whose per-class weights follow each class's running Dice loss.

    Per batch, SMP's soft Dice gives each class ``c`` a loss ``l_c = 1 - Dice_c``
    (probabilities from a sigmoid; Dice over the batch's pixels, as the ``dice`` loss).
    Then, in training mode:

    1. **Running loss.** ``r_c <- momentum * r_c + (1 - momentum) * l_c`` for each class
       present in the batch's ground truth (``r_c`` starts at 1: an untrained model gets
       every class wrong; absent classes keep their ``r_c``, as their Dice is undefined).
       Under ``--nproc`` the ``l_c`` are averaged over the processes first, so every
       process holds the same weights.
    2. **Weights.** ``w_c = r_c ** power``, normalised to mean 1 over the classes and
       detached (weights are not learned): classes the model currently gets wrong weigh
       more, ``power`` sets how much more (0 is plain Dice), and the normalisation keeps
       the loss on the scale of plain Dice whatever the weights.
    3. **Loss.** ``mean_c(w_c * l_c)`` over all classes (absent ones add 0, as in SMP's
       ``DiceLoss``), with the weights from before this batch's update, so a batch never
       re-weights itself.

    ``running_loss`` is a buffer: it is in the loss's ``state_dict``.
    """

    running_loss: torch.Tensor

    def __init__(
        self, *, momentum: float = 0.9, power: float = 1.0, smooth: float = 0.0, eps: float = 1e-7
    ) -> None:
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if power < 0:
            raise ValueError(f"power must be non-negative, got {power}")
        self.momentum = float(momentum)
        self.power = float(power)
        # SMP's Dice scores the classes; only the weighting is written here.
        self.dice = _smp_dice(smooth=smooth, eps=eps)
        self.register_buffer("running_loss", torch.empty(0))

    def weights(self) -> torch.Tensor:
        """The current per-class weights (mean 1); empty before the first batch."""
        scaled = self.running_loss.pow(self.power)
        return scaled / scaled.mean().clamp_min(1e-12)

    def per_class_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``1 - Dice_c`` per class (0 for classes absent from ``target``), shape ``(C,)``."""
        n, c = logits.shape[:2]
        probs = torch.sigmoid(logits).reshape(n, c, -1)
        truth = target.reshape(n, c, -1).type_as(probs)
        scores = self.dice.compute_score(
            probs, truth, smooth=self.dice.smooth, eps=self.dice.eps, dims=(0, 2)
        )
        present = truth.sum(dim=(0, 2)) > 0
        return (1.0 - scores) * present.to(scores.dtype)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        num_classes = logits.shape[1]
        if self.running_loss.numel() != num_classes or self.running_loss.device != logits.device:
            if self.running_loss.numel() == num_classes:
                self.running_loss = self.running_loss.to(logits.device)
            else:
                self.running_loss = torch.ones(num_classes, device=logits.device)
        losses = self.per_class_loss(logits, target)
        weighted = (self.weights().detach() * losses).mean()
        if self.training and torch.is_grad_enabled():
            self._update(losses.detach(), (target.sum(dim=(0, 2, 3)) > 0).to(losses.dtype))
        return weighted

    @torch.no_grad()
    def _update(self, losses: torch.Tensor, present: torch.Tensor) -> None:
        if dist.is_available() and dist.is_initialized():
            both = torch.stack([losses * present, present])
            dist.all_reduce(both)
            present = both[1]
            losses = both[0] / present.clamp_min(1)
        seen = present > 0
        moved = self.momentum * self.running_loss + (1 - self.momentum) * losses
        self.running_loss = torch.where(seen, moved, self.running_loss)


def adaptive_dice(
    *, momentum: float = 0.9, power: float = 1.0, smooth: float = 0.0, eps: float = 1e-7
) -> nn.Module:
    """Dice with dynamic class weights: classes with a high running Dice loss weigh more.

    See :class:`AdaptiveDiceLoss` for the update rule (``momentum``), the weights
    (``power``) and their normalisation (mean 1).
    """
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
