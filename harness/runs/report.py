"""What a finished run leaves beside its record to look at: its training curves, per-class
Dice and a validation image with its predicted masks.

The charts are drawn by ``harness.pictures``; the prediction needs the model, so it is
made here, where a run's model and validation images are at hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import torch

from harness.data.annotations import rasterize, read_annotation
from harness.data.images import read_gray, to_input
from harness.data.layout import label_path
from harness.metric.dice import logits_to_masks
from harness.pictures.charts import CURVES, PER_CLASS, per_class_bars, training_curves
from harness.pictures.overlays import prediction_panel

PREDICTION = "prediction.png"


def run_pictures(
    run_dir: Path,
    history: Sequence[dict[str, float]],
    per_class: dict[str, float],
    model: torch.nn.Module | None = None,
    image_path: Path | None = None,
    resolution: int = 0,
    threshold: float = 0.5,
) -> list[Path]:
    """A run's three pictures; the prediction panel only when a model and an image are given."""
    written = [
        training_curves(history, Path(run_dir) / CURVES),
        per_class_bars(per_class, Path(run_dir) / PER_CLASS),
    ]
    if model is not None and image_path is not None and resolution:
        image = read_gray(image_path)
        truth = rasterize(read_annotation(label_path(image_path))).astype(bool)
        small = cv2.resize(image, (resolution, resolution), interpolation=cv2.INTER_AREA)
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        with torch.no_grad():
            logits = model(to_input(small)[None].to(device))[0].float()
        model.train(was_training)
        predicted = logits_to_masks(logits, image.shape, threshold).cpu().numpy()
        written.append(
            prediction_panel(image, truth, predicted, Path(run_dir) / PREDICTION, image_path.name)
        )
    return written
