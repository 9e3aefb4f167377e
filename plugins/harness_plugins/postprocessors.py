"""Built-in post-processing of predicted masks: ``(29, H, W)`` bool in, the same out.

Calling convention (the one in ``harness/components/hookspecs.py``): a numpy ``bool``
array, channel ``i`` the class ``harness.classes.CLASSES[i]``, left unchanged; a new array
comes back. ``harness select`` keeps one only for the classes where it helps on the
cross-validated folds.

- ``none``: the masks as they are.
- ``largest-component``: each class keeps its largest connected piece (a bone is one
  piece; specks elsewhere are false positives), as nnU-Net's post-processing does.
- ``fill-holes``: each class's holes filled (a bone has none).

OpenCV is imported when a post-processor runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness import hookimpl

Postprocess = Callable[[Any], Any]


def _same(masks: Any) -> Any:
    return masks.copy()


def none() -> Postprocess:
    """No post-processing: the masks as they are."""
    return _same


def largest_component(*, connectivity: int = 8) -> Postprocess:
    """Each class keeps only its largest connected component (``connectivity`` 8 or 4;
    ties go to the component found first, in row-major order); an empty class stays empty."""
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity}")

    def run(masks: Any) -> Any:
        import cv2
        import numpy as np

        out = np.zeros_like(masks, dtype=bool)
        for c, mask in enumerate(masks):
            if not mask.any():
                continue
            count, labels, stats, _ = cv2.connectedComponentsWithStats(
                mask.astype(np.uint8), connectivity=connectivity
            )
            if count <= 2:  # background and one piece
                out[c] = mask
                continue
            biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
            out[c] = labels == biggest
        return out

    return run


def fill_holes() -> Postprocess:
    """Each class's holes filled: every background pixel that the image's border cannot reach
    through background (4-connected) becomes the class's, as ``scipy.ndimage.
    binary_fill_holes`` does (OpenCV's flood fill from the border: faster)."""

    def run(masks: Any) -> Any:
        import cv2
        import numpy as np

        out = np.empty_like(masks, dtype=bool)
        height, width = masks.shape[1:]
        for c, mask in enumerate(masks):
            if not mask.any():
                out[c] = mask
                continue
            # The mask in a frame of background, so the border's background is one region.
            framed = np.zeros((height + 2, width + 2), np.uint8)
            framed[1:-1, 1:-1] = mask
            cv2.floodFill(framed, None, (0, 0), 1, flags=4)
            out[c] = mask | (framed[1:-1, 1:-1] == 0)
        return out

    return run


@hookimpl
def harness_postprocessors() -> dict[str, Any]:
    return {"none": none, "largest-component": largest_component, "fill-holes": fill_holes}
