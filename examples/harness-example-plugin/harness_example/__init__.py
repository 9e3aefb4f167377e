"""An example third-party harness plugin: one model and one loss, in plain torch.

The harness finds this module through the entry point in ``pyproject.toml``
(group ``harness``) and calls the two ``@hookimpl`` functions below; each returns
a mapping from a public name to a factory with the signature that
``harness/components/hookspecs.py`` documents.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from harness import hookimpl

__version__ = "0.1.0"


def _block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 convolutions, each followed by batch norm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class MiniUNet(nn.Module):
    """A two-level U-Net of plain convolutions: small enough to train in seconds on a CPU."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 16) -> None:
        super().__init__()
        self.down1 = _block(in_channels, width)
        self.down2 = _block(width, 2 * width)
        self.bottom = _block(2 * width, 4 * width)
        self.up2 = nn.ConvTranspose2d(4 * width, 2 * width, 2, stride=2)
        self.dec2 = _block(4 * width, 2 * width)
        self.up1 = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.dec1 = _block(2 * width, width)
        self.head = nn.Conv2d(width, num_classes, 1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.down1(x)
        x2 = self.down2(self.pool(x1))
        bottom = self.bottom(self.pool(x2))
        d2 = self.dec2(torch.cat([self.up2(bottom), x2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), x1], dim=1))
        return self.head(d1)  # logits: no sigmoid, the harness applies it


def mini_unet(
    *, num_classes: int, in_channels: int, encoder: str | None = None, width: int = 16
) -> nn.Module:
    """``mini-unet``: a tiny U-Net. It has no pluggable encoder, so ``encoder`` is ignored."""
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}")
    return MiniUNet(in_channels, num_classes, width=width)


def soft_dice(*, smooth: float = 1.0) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``soft-dice``: 1 - mean over classes of the batch's soft Dice, smoothed by ``smooth``."""
    if smooth < 0:
        raise ValueError(f"smooth must be non-negative, got {smooth}")

    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        probs = torch.sigmoid(logits)
        dims = (0, 2, 3)  # per class (channel), over the batch and the pixels
        overlap = (probs * target).sum(dims)
        total = probs.sum(dims) + target.sum(dims)
        return 1 - ((2 * overlap + smooth) / (total + smooth)).mean()

    return loss


@hookimpl
def harness_models() -> dict[str, Any]:
    return {"mini-unet": mini_unet}


@hookimpl
def harness_losses() -> dict[str, Any]:
    return {"soft-dice": soft_dice}
