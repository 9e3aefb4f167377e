"""Built-in training augmentations (albumentations), one sample at a time.

Calling convention (the one in ``harness/components/hookspecs.py``)::

    out = transform(image=image, mask=mask)
    # image: uint8 (H, W) grayscale, already image_size x image_size
    # mask:  uint8 (H, W, 29), values {0, 1}, channel i = harness.classes.CLASSES[i]

Geometry moves image and mask together; masks are resampled nearest-neighbour and
new border pixels are 0 in both, so masks stay binary and aligned. Intensity
transforms (CLAHE, brightness/contrast) touch the image only.

The pieces the inspiring study used are offered one by one (``flip``, ``rotate`` for
the wrist angle, ``clahe`` for contrast) and together as its recipe (``study``), so a
leaderboard can show what each contributes.

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


def _rotate(limit: float, p: float) -> A.Rotate:
    """Rotation by up to ±``limit`` degrees: linear for the image, nearest for masks, 0 fill."""
    import albumentations as A
    import cv2

    return A.Rotate(
        limit=limit,
        interpolation=cv2.INTER_LINEAR,
        mask_interpolation=cv2.INTER_NEAREST,
        border_mode=cv2.BORDER_CONSTANT,
        fill=0,
        fill_mask=0,
        p=p,
    )


def basic(
    *,
    image_size: int,
    flip_p: float = 0.5,
    rotate_limit: float = 10.0,
    rotate_p: float = 0.5,
) -> A.Compose:
    """Horizontal flip and a small rotation (±``rotate_limit`` degrees, black border)."""
    import albumentations as A

    return A.Compose([A.HorizontalFlip(p=flip_p), _rotate(rotate_limit, rotate_p)])


def flip(*, image_size: int, p: float = 0.5) -> A.Compose:
    """Horizontal flip: a left hand becomes a right hand (the phantom mirrors one per ID too)."""
    import albumentations as A

    return A.Compose([A.HorizontalFlip(p=p)])


def rotate(*, image_size: int, limit: float = 20.0, p: float = 0.5) -> A.Compose:
    """Rotation by up to ±``limit`` degrees (20 by default): the spread of wrist angles."""
    import albumentations as A

    return A.Compose([_rotate(limit, p)])


def clahe(
    *, image_size: int, clip_limit: float = 2.0, tile_grid_size: int = 8, p: float = 0.5
) -> A.Compose:
    """Contrast-limited adaptive histogram equalisation of the grey image (albumentations CLAHE).

    Lifts the faint bone edges against soft tissue. Like every augmentation it is applied
    in training only, with probability ``p`` (0.5), so the model learns from both the
    enhanced and the plain images it meets at evaluation. ``clip_limit`` is the contrast
    cap; the image is equalised in ``tile_grid_size`` x ``tile_grid_size`` tiles.
    """
    import albumentations as A

    return A.Compose(
        [A.CLAHE(clip_limit=(1.0, clip_limit), tile_grid_size=(tile_grid_size,) * 2, p=p)]
    )


def study(
    *,
    image_size: int,
    flip_p: float = 0.5,
    rotate_limit: float = 20.0,
    rotate_p: float = 0.5,
    clahe_p: float = 0.5,
    brightness_contrast: float = 0.2,
    brightness_contrast_p: float = 0.5,
) -> A.Compose:
    """The inspiring study's recipe in one name: flip, rotation, CLAHE, brightness/contrast.

    Each step is independently random, in this order:

    1. horizontal flip (``flip_p`` 0.5);
    2. rotation by up to ±``rotate_limit`` degrees (20; ``rotate_p`` 0.5), as ``rotate``;
    3. CLAHE, clip limit up to 2 on 8x8 tiles (``clahe_p`` 0.5), as ``clahe``;
    4. random brightness and contrast, each by up to ±``brightness_contrast`` (0.2)
       of the full range (``brightness_contrast_p`` 0.5).
    """
    import albumentations as A

    return A.Compose(
        [
            A.HorizontalFlip(p=flip_p),
            _rotate(rotate_limit, rotate_p),
            A.CLAHE(clip_limit=(1.0, 2.0), tile_grid_size=(8, 8), p=clahe_p),
            A.RandomBrightnessContrast(
                brightness_limit=brightness_contrast,
                contrast_limit=brightness_contrast,
                p=brightness_contrast_p,
            ),
        ]
    )


@hookimpl
def harness_augmentations() -> dict[str, Any]:
    return {
        "none": none,
        "basic": basic,
        "flip": flip,
        "rotate": rotate,
        "clahe": clahe,
        "study": study,
    }
