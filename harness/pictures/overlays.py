"""Overlays: class colours, masks tinted over an image, titled image grids.

Why here: the phantom's documentation picture, prediction previews and reports all need the
same colours for the same bones and the same way of writing a figure, and none of them should
pull in a GUI backend. Only numpy, OpenCV and matplotlib's Agg canvas are used (never pyplot,
so no global state and no display is touched).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from matplotlib.colors import hsv_to_rgb
from matplotlib.figure import Figure

from harness.classes import NUM_CLASSES
from harness.pictures.charts import save_figure


def class_colors() -> np.ndarray:
    """``(29, 3)`` uint8 RGB, one distinct colour per class, the same on every call.

    Hues step by the golden angle so neighbouring classes (the bones of one finger) differ
    strongly; saturation and value alternate so that hues that come close stay apart.
    """
    i = np.arange(NUM_CLASSES)
    hue = (i * 0.618033988749895) % 1.0
    sat = np.where(i % 2 == 0, 0.85, 0.6)
    val = np.where(i % 3 == 0, 1.0, np.where(i % 3 == 1, 0.85, 0.95))
    rgb = hsv_to_rgb(np.stack([hue, sat, val], axis=1))
    return np.rint(rgb * 255).astype(np.uint8)


def overlay(image: np.ndarray, masks: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Tint each class's mask over a grey image and draw its outline.

    ``image`` is ``(H, W)`` uint8 grey (``(H, W, 3)`` RGB is accepted too); ``masks`` is
    ``(29, H, W)`` bool or 0/1, multi-label (overlapping classes get both tints). Returns
    ``(H, W, 3)`` uint8 RGB.
    """
    image = np.asarray(image)
    masks = np.asarray(masks)
    if image.ndim == 2:
        rgb = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 3:
        rgb = image
    else:
        raise ValueError(f"overlay: image must be (H, W) or (H, W, 3), got {image.shape}")
    if masks.ndim != 3 or masks.shape[1:] != rgb.shape[:2]:
        raise ValueError(
            f"overlay: masks must be (C, {rgb.shape[0]}, {rgb.shape[1]}), got {masks.shape}"
        )
    colors = class_colors()
    if masks.shape[0] > len(colors):
        raise ValueError(f"overlay: at most {len(colors)} classes, got {masks.shape[0]}")
    out = rgb.astype(np.float32)
    thickness = max(1, round(max(rgb.shape[:2]) / 512))
    outlines = []
    for c in range(masks.shape[0]):
        m = masks[c].astype(bool)
        if not m.any():
            continue
        color = colors[c].astype(np.float32)
        out[m] = (1.0 - alpha) * out[m] + alpha * color
        contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        outlines.append((contours, tuple(int(v) for v in colors[c])))
    result = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    for contours, color in outlines:
        cv2.drawContours(result, contours, -1, color, thickness)
    return result


def save_grid(path: Path, panels: Sequence[tuple[str, np.ndarray]], columns: int = 3) -> None:
    """Write a PNG of titled panels (grey ``(H, W)`` or RGB ``(H, W, 3)`` uint8), atomically.

    Panels are shown at roughly their pixel size (capped at 512 px a side), ``columns`` a row.
    The PNG is RGB without metadata, so the same panels give the same bytes.
    """
    path = Path(path)
    if not panels:
        raise ValueError("save_grid: no panels")
    columns = max(1, min(columns, len(panels)))
    rows = math.ceil(len(panels) / columns)
    # Lay the panels out in pixels so each is drawn 1:1 (no resampling blur) up to 512 px.
    side = min(512, max(max(np.asarray(img).shape[:2]) for _, img in panels))
    pad, title = 6, 22
    width, height = columns * (side + pad) + pad, rows * (side + title + pad) + pad
    dpi = 100
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor="white")
    for k, (name, img) in enumerate(panels):
        row, col = divmod(k, columns)
        left = pad + col * (side + pad)
        top = pad + row * (side + title + pad) + title
        ax = fig.add_axes((left / width, 1 - (top + side) / height, side / width, side / height))
        img = np.asarray(img)
        if img.ndim == 2:
            ax.imshow(img, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        else:
            ax.imshow(img, interpolation="nearest")
        ax.set_title(name, fontsize=9, pad=4)
        ax.set_axis_off()
    save_figure(fig, path)


def prediction_panel(
    image: np.ndarray, truth: np.ndarray, predicted: np.ndarray, path: Path, name: str
) -> Path:
    """A validation image, its ground truth and the predicted masks, overlaid side by side."""
    save_grid(
        path,
        [
            (name, image),
            ("ground truth", overlay(image, truth)),
            ("prediction", overlay(image, predicted)),
        ],
        columns=3,
    )
    return path
