"""The picture the trackers show at each validation: a validation image, its truth and the
model's prediction, side by side."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from harness.data.annotations import rasterize, read_annotation
from harness.data.images import read_gray, to_input
from harness.data.layout import label_path
from harness.metric.dice import logits_to_masks
from harness.pictures.overlays import overlay

__all__ = ["Preview"]


@dataclass
class Preview:
    """One validation image, its ground truth and the model's prediction, side by side, at
    most ``side`` pixels a panel: the picture the trackers show at each validation. Several
    trackers share one rendering a validation (``at``)."""

    image_path: Path
    resolution: int
    threshold: float = 0.5
    side: int = 256
    _image: np.ndarray = field(init=False, repr=False)
    _shown: np.ndarray = field(init=False, repr=False)
    _truth: np.ndarray = field(init=False, repr=False)
    _last: tuple[int, np.ndarray] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        import cv2

        self._image = read_gray(self.image_path)
        height, width = self._image.shape
        scale = min(1.0, self.side / max(height, width))
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        self._shown = cv2.resize(self._image, size[::-1], interpolation=cv2.INTER_AREA)
        self._truth = rasterize(read_annotation(label_path(self.image_path)), size).astype(bool)

    def at(self, step: int, model: torch.nn.Module) -> np.ndarray:
        """``render``'s picture for the validation after ``step``, rendered once."""
        if self._last is None or self._last[0] != step:
            self._last = (step, self.render(model))
        return self._last[1]

    def render(self, model: torch.nn.Module) -> np.ndarray:
        """``(H, 3W, 3)`` uint8 RGB: image, truth, prediction. The model is run in ``eval``
        mode without gradients, with the random state forked, and handed back as it was."""
        import cv2

        small = cv2.resize(
            self._image, (self.resolution, self.resolution), interpolation=cv2.INTER_AREA
        )
        device = next(model.parameters()).device
        devices: Sequence[torch.device] = [device] if device.type == "cuda" else []
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=devices):
                logits = model(to_input(small)[None].to(device))[0].float()
        finally:
            model.train(was_training)
        predicted = logits_to_masks(logits, self._shown.shape, self.threshold).cpu().numpy()
        grey = np.repeat(self._shown[:, :, None], 3, axis=2)
        return np.concatenate(
            [grey, overlay(self._shown, self._truth), overlay(self._shown, predicted)], axis=1
        )
