"""``harness evaluate`` (``harness.cli.evaluate``): a submission scored as the competition
does, the per-class table and the mean printed, ``--json`` written; a perfect submission
scores 1. (The metric itself: tests/metric/.)"""

from __future__ import annotations

import json
from pathlib import Path

from harness.classes import CLASSES
from harness.data.annotations import rasterize, read_annotation
from harness.data.layout import label_path, list_images
from harness.data.sources import synthetic_dataset
from harness.metric.rle import encode
from harness.metric.submission import write_submission


def test_a_perfect_submission_scores_1(cli, tmp_path: Path) -> None:
    data = synthetic_dataset(5, 64, 0)
    rows = []
    for image in list_images(data, "train"):
        masks = rasterize(read_annotation(label_path(image)))
        rows += [(image.name, c, encode(m)) for c, m in zip(CLASSES, masks, strict=True)]
    write_submission(tmp_path / "sub.csv", rows)
    out_json = tmp_path / "score.json"
    result = cli(
        "evaluate", "--data", data, "--submission", tmp_path / "sub.csv", "--json", out_json
    )
    assert result.code == 0, result.err
    score = json.loads(out_json.read_text())
    assert score["mean_dice"] == 1.0 and set(score["per_class_dice"]) == set(CLASSES)
    assert result.out.strip().endswith("mean Dice 1.0000 over 10 images")
    assert ": per-class Dice" in result.out  # the table's title, after the path (wrapped)
    for name in ("finger-1", "Ulna", "Pisiform"):
        assert f"│ {name} " in result.out
