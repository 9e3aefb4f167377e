"""Images: decoding a grey X-ray, resizing it to the model's view, turning it into input.

One place decides how pixels become a model's input, so training, validation, the
preprocessing cache and predictions all see exactly the same numbers.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from harness.data.annotations import Annotation
from harness.errors import HarnessError


def read_gray(path: Path) -> np.ndarray:
    """An 8-bit grey image (H, W); colour PNGs are converted."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise HarnessError(f"{path}: not a readable image; replace or remove it")
    return image


def to_input(image: np.ndarray) -> torch.Tensor:
    """(H, W) uint8 -> (1, H, W) float32 in [0, 1], the models' input."""
    return torch.from_numpy(image).float().div_(255.0).unsqueeze(0)


def check_size(path: Path, image: np.ndarray, ann: Annotation) -> None:
    """An image whose size differs from its label file's metadata is an error naming both."""
    if image.shape != (ann.height, ann.width):
        raise HarnessError(
            f"{path}: image is {image.shape[1]}x{image.shape[0]} but its label file says "
            f"{ann.width}x{ann.height}; fix the metadata or the image"
        )


def resize_image(image: np.ndarray, resolution: int) -> np.ndarray:
    """The model's view of an image: area-averaged down (or up) to ``resolution`` square."""
    if image.shape == (resolution, resolution):
        return image
    return cv2.resize(image, (resolution, resolution), interpolation=cv2.INTER_AREA)
