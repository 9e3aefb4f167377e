"""Scoring a submission CSV against a labelled dataset (``harness evaluate``).

The same metric code as training-time validation (``harness.metric.dice``), fed decoded
masks instead of logits, so a run's reported Dice and the Dice of its submission
agree.  Ground truth is rasterized at original resolution one image at a time and
dropped after scoring: memory stays at one image's 29 masks whatever the dataset size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from harness.classes import CLASSES, NUM_CLASSES
from harness.data.annotations import rasterize, read_annotation
from harness.data.layout import label_path, list_images
from harness.errors import HarnessError
from harness.metric.dice import DiceAccumulator
from harness.metric.rle import decode
from harness.metric.submission import read_submission_rows


@dataclass(frozen=True, eq=False)
class DiceResult:
    """The score of one submission; ``per_image`` rows follow ``images``."""

    mean_dice: float
    per_class_dice: dict[str, float]
    per_image: np.ndarray  # (len(images), NUM_CLASSES) float64
    images: tuple[str, ...]

    def to_json(self) -> dict:
        """What ``harness evaluate --json`` writes."""
        return {
            "mean_dice": self.mean_dice,
            "per_class_dice": dict(self.per_class_dice),
            "images": len(self.images),
        }


def evaluate_submission(
    data: Path, submission: Path, *, split: str = "train", device: str = "cpu"
) -> DiceResult:
    """Score every image the submission names against ``data/<split>``'s labels."""
    data, submission = Path(data), Path(submission)
    rows, lines = read_submission_rows(submission)
    if not rows:
        raise HarnessError(f"{submission}: no rows after the header; nothing to evaluate")

    by_name: dict[str, list[Path]] = {}
    for image in list_images(data, split):
        by_name.setdefault(image.name, []).append(image)
    chosen: list[Path] = []
    for name in rows:
        paths = by_name.get(name)
        if paths is None:
            row = min(n for (image, _), n in lines.items() if image == name)
            raise HarnessError(
                f"{submission}: row {row}: image {name!r} is not in {data / split}; "
                "score a submission against the dataset it was predicted on"
            )
        if len(paths) > 1:
            raise HarnessError(
                f"{submission}: image {name!r} is ambiguous in {data / split} "
                f"({paths[0]} and {paths[1]}); base names must be unique to be scored"
            )
        chosen.append(paths[0])
    chosen.sort()

    torch_device = torch.device(device)
    acc = DiceAccumulator(CLASSES)
    for image in chosen:
        _score_one(acc, image, rows[image.name], lines, submission, torch_device)
    return DiceResult(
        mean_dice=acc.mean(),
        per_class_dice=acc.per_class(),
        per_image=acc.per_image(),
        images=tuple(image.name for image in chosen),
    )


def _score_one(
    acc: DiceAccumulator,
    image: Path,
    rles: dict[str, str],
    lines: dict[tuple[str, str], int],
    submission: Path,
    device: torch.device,
) -> None:
    """Decode one image's 29 rows and score them; its masks are freed on return."""
    label = label_path(image)
    if not label.is_file():
        raise HarnessError(
            f"{label}: missing label file for {image.name}; only labelled images can be scored"
        )
    ann = read_annotation(label)
    pred = np.empty((NUM_CLASSES, ann.height, ann.width), dtype=bool)
    for c, cls in enumerate(CLASSES):
        try:
            pred[c] = decode(rles[cls], ann.height, ann.width)
        except ValueError as exc:
            row = lines.get((image.name, cls))
            where = f"row {row}: " if row is not None else ""
            raise HarnessError(
                f"{submission}: {where}image {image.name!r}, class {cls!r}: bad RLE for a "
                f"{ann.width}x{ann.height} image ({exc})"
            ) from None
    truth = torch.from_numpy(rasterize(ann))
    acc.add_masks(torch.from_numpy(pred).to(device), truth.to(device), name=image.name)
