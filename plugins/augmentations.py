"""Built-in training augmentations (albumentations), one sample at a time.

Calling convention (the one in ``harness/hookspecs.py``)::

    out = transform(image=image, mask=mask)
    # image: uint8 (H, W) grayscale, already image_size x image_size
    # mask:  uint8 (H, W, 29), values {0, 1}, channel i = harness.classes.CLASSES[i]

Geometry moves image and mask together; masks are resampled nearest-neighbour and
new border pixels are 0 in both, so masks stay binary and aligned.

albumentations is imported on first use: it takes seconds to import and
`harness list` needs none of it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from harness import hookimpl

if TYPE_CHECKING:
    import albumentations as A

# albumentations otherwise checks PyPI for a newer version on import.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


def none(*, image_size: int) -> A.Compose:
    """No augmentation (an empty ``Compose``)."""
    import albumentations as A

    return A.Compose([])


def basic(
    *,
    image_size: int,
    flip_p: float = 0.5,
    rotate_limit: float = 10.0,
    rotate_p: float = 0.5,
) -> A.Compose:
    """Horizontal flip and a small rotation (±``rotate_limit`` degrees, black border)."""
    import albumentations as A
    import cv2

    return A.Compose(
        [
            A.HorizontalFlip(p=flip_p),
            A.Rotate(
                limit=rotate_limit,
                interpolation=cv2.INTER_LINEAR,
                mask_interpolation=cv2.INTER_NEAREST,
                border_mode=cv2.BORDER_CONSTANT,
                fill=0,
                fill_mask=0,
                p=rotate_p,
            ),
        ]
    )


@hookimpl
def harness_augmentations() -> dict[str, Any]:
    return {"none": none, "basic": basic}
