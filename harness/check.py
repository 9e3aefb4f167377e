"""Dataset checks: every problem of a dataset folder, each naming its file, before any training."""

from __future__ import annotations

from pathlib import Path

import cv2

from harness.annotations import read_annotation
from harness.errors import HarnessError
from harness.layout import LABEL_DIR, label_path, list_images


def check_dataset(root: Path) -> tuple[list[str], int]:
    """All problems found under ``root`` (not only the first) and the number of labelled images."""
    root = Path(root)
    problems: list[str] = []
    try:
        images = list_images(root, "train")
    except HarnessError as exc:
        return [str(exc)], 0
    expected = set()
    for image in images:
        labels = label_path(image)
        expected.add(labels)
        if not labels.is_file():
            problems.append(f"{image}: no label file; expected {labels}")
            continue
        try:
            ann = read_annotation(labels)
        except HarnessError as exc:
            problems.append(str(exc))
            continue
        pixels = cv2.imread(str(image), cv2.IMREAD_UNCHANGED)
        if pixels is None:
            problems.append(f"{image}: not a readable PNG; replace or remove it")
        elif pixels.shape[:2] != (ann.height, ann.width):
            problems.append(
                f"{image}: image is {pixels.shape[1]}x{pixels.shape[0]} but {labels.name} says "
                f"{ann.width}x{ann.height}"
            )
    for labels in sorted((root / "train" / LABEL_DIR).glob("*/*.json")):
        if labels not in expected:
            problems.append(f"{labels}: label file without an image")
    return problems, len(images)
