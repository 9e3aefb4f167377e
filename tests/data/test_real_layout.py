"""The competition's real layout at full size: 2048x2048 PNGs and label JSON with every real key.

``data check``, a ``tiny`` run, ``predict`` (test and validation) and ``evaluate`` go end to
end through the command line on one dataset built once for the module; ground truth
submitted as predictions scores exactly 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import pytest

from harness.classes import CLASSES
from harness.data.annotations import rasterize, read_annotation
from harness.data.checks import check_cached, check_dataset
from harness.data.layout import label_path, list_images, split
from harness.metric.rle import decode, encode
from harness.metric.submission import read_submission, write_submission

SIZE = 2048
REAL_KEYS = {
    "annotations",
    "attributes",
    "file_id",
    "filename",
    "parent_path",
    "last_modifier_id",
    "metadata",
    "last_workers",
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from harness.data.phantom import synthesize

    return synthesize(tmp_path_factory.mktemp("real") / "hands", ids=5, size=SIZE, test_ids=1)


@pytest.fixture(scope="module")
def state() -> dict[str, Any]:
    return {}


@pytest.fixture
def run_dir(cli, data: Path, state: dict[str, Any], tmp_path_factory) -> Path:
    """One `harness run` under the tiny protocol on the 2048 dataset, shared by the module."""
    if "run_dir" not in state:
        root = tmp_path_factory.mktemp("real-runs")
        result = cli(
            "run", "--model", "unet", "--loss", "dice", "--protocol", "tiny",
            "--data", data, "--runs-dir", root / "runs",
            "--leaderboards-dir", root / "boards", "--device", "cpu",
        )  # fmt: skip
        assert result.code == 0, result.err[-3000:]
        (record,) = (root / "runs").rglob("record.json")
        state["run_dir"] = record.parent
    return state["run_dir"]


def test_the_files_look_like_the_competitions(data: Path) -> None:
    images = list_images(data)
    assert len(images) == 10 and len(list_images(data, "test")) == 2
    doc = json.loads(label_path(images[0]).read_text())
    assert set(doc) == REAL_KEYS
    assert doc["filename"].endswith(".jpg") and doc["metadata"] == {"height": SIZE, "width": SIZE}
    first = doc["annotations"][0]
    assert set(first) == {"id", "type", "attributes", "points", "label"}
    assert first["type"] == "poly_seg"
    assert [a["label"] for a in doc["annotations"]] == list(CLASSES)
    assert cv2.imread(str(images[0]), cv2.IMREAD_UNCHANGED).shape == (SIZE, SIZE)


def test_data_check_passes(cli, data: Path) -> None:
    result = cli("data", "check", data)
    assert result.code == 0, result.err
    assert "10 labelled images" in result.out
    assert check_dataset(data) == ([], 10)
    assert check_cached(data) == 10


def test_tiny_run_leaves_a_record_and_weights(run_dir: Path) -> None:
    record = json.loads((run_dir / "record.json").read_text())
    assert record["status"] == "succeeded"
    assert record["benchmark"]["protocol"]["name"] == "tiny"
    assert len(record["val_images"]) == 2
    assert (run_dir / "weights-final.safetensors").is_file()
    assert not (run_dir / "checkpoints" / "last.pt").exists(), (
        "a succeeded run keeps no resume state"
    )


def test_predict_test_split_writes_a_valid_submission(run_dir: Path, data: Path) -> None:
    from harness.inference.predict import PredictOptions, predict_submission

    out = predict_submission(
        run_dir, data, run_dir.parent / "test.csv", PredictOptions(device="cpu")
    )
    rows = read_submission(out)
    assert list(rows) == [p.name for p in list_images(data, "test")]
    for masks in rows.values():
        assert list(masks) == list(CLASSES)
        for rle in masks.values():
            assert decode(rle, SIZE, SIZE).shape == (SIZE, SIZE)


def test_predict_val_split_scores_what_the_run_recorded(
    cli, run_dir: Path, data: Path, tmp_path: Path
) -> None:
    from harness.inference.predict import PredictOptions, predict_submission

    out = predict_submission(
        run_dir, data, tmp_path / "val.csv", PredictOptions(split="val", device="cpu")
    )
    assert list(read_submission(out)) == [p.name for p in split(list_images(data), 5, 0)[1]]
    score = tmp_path / "score.json"
    result = cli("evaluate", "--data", data, "--submission", out, "--json", score)
    assert result.code == 0, result.err
    record = json.loads((run_dir / "record.json").read_text())
    assert json.loads(score.read_text())["mean_dice"] == pytest.approx(
        record["mean_dice"], abs=1e-9
    )


def test_ground_truth_as_predictions_scores_exactly_one(cli, data: Path, tmp_path: Path) -> None:
    rows = []
    for image in list_images(data):
        masks = rasterize(read_annotation(label_path(image)))
        rows += [(image.name, c, encode(m)) for c, m in zip(CLASSES, masks, strict=True)]
        del masks
    write_submission(tmp_path / "truth.csv", rows)
    score = tmp_path / "score.json"
    result = cli(
        "evaluate", "--data", data, "--submission", tmp_path / "truth.csv", "--json", score
    )
    assert result.code == 0, result.err
    scored = json.loads(score.read_text())
    assert scored["mean_dice"] == 1.0 and scored["images"] == 10
    assert set(scored["per_class_dice"].values()) == {1.0}
