"""Built-in test-time augmentations: each a list of ``(apply, invert)`` transforms.

Calling convention (the one in ``harness/components/hookspecs.py``): ``apply`` takes the
model's float input ``(N, C, H, W)``, ``invert`` brings the model's logits for it back to
the input's frame, ``(N, 29, H, W)``; the harness averages the inverted logits (float32).
The model runs once per transform.

- ``none``: the image as it is (one pass).
- ``hflip``: the image and its mirror, mirrored back (two passes): a left hand seen as a
  right one. ``harness predict --tta flip`` is this, by its older name.
- ``multiscale``: the image at ``low``, 1 and ``high`` times its side (three passes), each
  side rounded to a multiple of 32, the logits resized back bilinearly.

torch is imported when a transform runs, so ``harness list`` needs none of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness import hookimpl

#: A transform: ``(apply, invert)``.
Transform = tuple[Callable[[Any], Any], Callable[[Any], Any]]
#: Model inputs are resized to sides that are multiples of this (what encoders need).
STRIDE = 32


def _same(tensor: Any) -> Any:
    return tensor


def _mirror(tensor: Any) -> Any:
    import torch

    return torch.flip(tensor, dims=(-1,))


def none() -> list[Transform]:
    """No test-time augmentation: one pass over the image as it is."""
    return [(_same, _same)]


def hflip() -> list[Transform]:
    """Horizontal flip: the mean of the logits of the image and of its mirror, mirrored back."""
    return [(_same, _same), (_mirror, _mirror)]


class _Rescale:
    """One scale of ``multiscale``: ``apply`` resizes the input (sides multiples of 32),
    ``invert`` resizes the logits back to the size the input had."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self.size: tuple[int, int] | None = None

    def apply(self, images: Any) -> Any:
        import torch.nn.functional as F

        height, width = images.shape[-2:]
        self.size = (height, width)
        side = (max(STRIDE, round(s * self.scale / STRIDE) * STRIDE) for s in (height, width))
        target = tuple(side)
        if target == (height, width):
            return images
        return F.interpolate(images, size=target, mode="bilinear", align_corners=False)

    def invert(self, logits: Any) -> Any:
        import torch.nn.functional as F

        assert self.size is not None, "invert before apply"
        if tuple(logits.shape[-2:]) == self.size:
            return logits
        return F.interpolate(logits.float(), size=self.size, mode="bilinear", align_corners=False)


def multiscale(*, low: float = 0.75, high: float = 1.25) -> list[Transform]:
    """The image at ``low``, 1 and ``high`` times its side (sides rounded to multiples of
    32), the logits of each resized back bilinearly and averaged: three passes."""
    if not 0 < low <= 1 <= high:
        raise ValueError(f"need 0 < low <= 1 <= high, got low={low}, high={high}")
    scales = [_Rescale(low), _Rescale(high)]
    return [(_same, _same), *((s.apply, s.invert) for s in scales)]


@hookimpl
def harness_tta() -> dict[str, Any]:
    return {"none": none, "hflip": hflip, "multiscale": multiscale}
