"""The losses written here, as torch modules (``harness_plugins.losses`` describes and
registers them; this module, which needs torch and SMP, is imported when one is built)."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn

MULTILABEL = "multilabel"


def smp_dice(**params: Any) -> nn.Module:
    """SMP's soft Dice, one channel per class, on logits."""
    from segmentation_models_pytorch.losses import DiceLoss

    return DiceLoss(mode=MULTILABEL, from_logits=True, **params)


class ComboLoss(nn.Module):
    """``dice * DiceLoss + bce * BCEWithLogitsLoss``: Dice for overlap, BCE for stable gradients."""

    def __init__(self, dice: float, bce: float) -> None:
        super().__init__()
        self.dice_weight = float(dice)
        self.bce_weight = float(bce)
        self.dice = smp_dice()
        self.bce = nn.BCEWithLogitsLoss()

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.dice_weight * self.dice(logits, target) + self.bce_weight * self.bce(
            logits, target
        )


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
        self.dice = smp_dice(smooth=smooth, eps=eps)
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
