"""Run pictures: curves, per-class bars and a prediction panel are real PNGs."""

from __future__ import annotations

from pathlib import Path

import torch

from harness.classes import CLASSES
from harness.data.layout import list_images
from harness.data.phantom import synthesize
from harness.runs.report import run_pictures


def test_run_pictures(tmp_path: Path) -> None:
    data = synthesize(tmp_path / "data", ids=5, size=64, test_ids=0)
    model = torch.nn.Conv2d(1, len(CLASSES), 3, padding=1)
    history = [{"epoch": 1, "loss": 0.9}, {"epoch": 2, "loss": 0.5, "val_mean_dice": 0.4}]
    written = run_pictures(
        tmp_path / "run",
        history,
        {c: i / 29 for i, c in enumerate(CLASSES)},
        model=model,
        image_path=list_images(data)[0],
        resolution=32,
    )
    assert [p.name for p in written] == ["curves.png", "per-class-dice.png", "prediction.png"]
    for path in written:
        assert path.read_bytes()[:4] == b"\x89PNG"
