"""Scoring a submission end to end on a hand-written dataset in the competition layout."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from harness.classes import CLASSES, NUM_CLASSES
from harness.data.annotations import rasterize, read_annotation
from harness.data.layout import label_path, list_images
from harness.errors import HarnessError
from harness.metric.dice import EPS
from harness.metric.evaluate import DiceResult, evaluate_submission
from harness.metric.rle import encode
from harness.metric.submission import write_submission

H, W = 40, 48


def make_dataset(root: Path) -> list[Path]:
    """Two ID folders, two hands each; class ``c`` is a small triangle placed per image."""
    images = []
    for n, (group, stem) in enumerate(
        [("ID001", "image100"), ("ID001", "image101"), ("ID002", "image200"), ("ID002", "image201")]
    ):
        image = root / "train" / "DCM" / group / f"{stem}.png"
        image.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(image), np.full((H, W), 30 * n, np.uint8))
        annotations = []
        for c, name in enumerate(CLASSES):
            x, y = (3 * c + n) % (W - 12), (5 * c + 2 * n) % (H - 10)
            points = [[x, y], [x + 10 + n, y + 2], [x + 4, y + 8]]
            annotations.append(
                {
                    "id": str(c),
                    "type": "poly_seg",
                    "attributes": {},
                    "points": points,
                    "label": name,
                }
            )
        doc = {
            "annotations": annotations,
            "attributes": {},
            "file_id": str(n),
            "filename": image.name,
            "parent_path": group,
            "last_modifier_id": "x",
            "metadata": {"height": H, "width": W},
            "last_workers": {},
        }
        label = label_path(image)
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text(json.dumps(doc))
        images.append(image)
    return images


def truth_of(image: Path) -> np.ndarray:
    return rasterize(read_annotation(label_path(image)))


def perfect_rows(images: list[Path]) -> list[tuple[str, str, str]]:
    return [
        (image.name, cls, encode(mask))
        for image in images
        for cls, mask in zip(CLASSES, truth_of(image), strict=True)
    ]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    make_dataset(tmp_path / "data")
    return tmp_path / "data"


def test_perfect_submission_scores_one(data: Path, tmp_path: Path) -> None:
    images = list_images(data)
    sub = tmp_path / "sub.csv"
    write_submission(sub, perfect_rows(images[::-1]))  # row order does not matter
    result = evaluate_submission(data, sub)
    assert isinstance(result, DiceResult)
    assert result.mean_dice == 1.0
    assert set(result.per_class_dice.values()) == {1.0}
    assert result.images == tuple(i.name for i in images)
    assert result.per_image.shape == (4, NUM_CLASSES)
    assert result.to_json() == {
        "mean_dice": 1.0,
        "per_class_dice": dict.fromkeys(CLASSES, 1.0),
        "images": 4,
    }
    json.dumps(result.to_json())


def test_empty_submission_scores_as_the_formula_says(data: Path, tmp_path: Path) -> None:
    images = list_images(data)[:3]  # a subset of the split is fine
    sub = tmp_path / "sub.csv"
    write_submission(sub, [(i.name, cls, "") for i in images for cls in CLASSES])
    result = evaluate_submission(data, sub)
    sizes = np.stack([truth_of(i).sum(axis=(1, 2)) for i in images])  # (3, 29)
    expected = (EPS / (sizes + EPS)).mean(axis=0)
    assert list(result.per_class_dice.values()) == pytest.approx(expected.tolist(), rel=1e-12)
    assert result.mean_dice == pytest.approx(expected.mean(), rel=1e-12)
    assert result.images == tuple(i.name for i in images)


def test_one_class_missed_on_one_image(data: Path, tmp_path: Path) -> None:
    images = list_images(data)
    rows = perfect_rows(images)
    rows[NUM_CLASSES + 28] = (images[1].name, "Ulna", "")  # second image, last class
    sub = tmp_path / "sub.csv"
    write_submission(sub, rows)
    result = evaluate_submission(data, sub)
    ulna = truth_of(images[1])[28].sum()
    miss = EPS / (ulna + EPS)
    assert result.per_class_dice["Ulna"] == pytest.approx((3 + miss) / 4, rel=1e-12)
    assert result.mean_dice == pytest.approx((28 + (3 + miss) / 4) / 29, rel=1e-12)


def test_unknown_image_is_named(data: Path, tmp_path: Path) -> None:
    sub = tmp_path / "sub.csv"
    write_submission(sub, [("image999.png", cls, "") for cls in CLASSES])
    with pytest.raises(HarnessError, match="image999.png"):
        evaluate_submission(data, sub)


def test_bad_rle_names_image_and_class(data: Path, tmp_path: Path) -> None:
    images = list_images(data)
    rows = perfect_rows(images)
    rows[3] = (images[0].name, CLASSES[3], "5 2 1 1")
    sub = tmp_path / "sub.csv"
    write_submission(sub, rows)
    with pytest.raises(HarnessError) as info:
        evaluate_submission(data, sub)
    message = str(info.value)
    assert images[0].name in message and "'finger-4'" in message and "sorted" in message
    rows[3] = (images[0].name, CLASSES[3], f"{H * W} 2")
    write_submission(sub, rows)
    with pytest.raises(HarnessError, match="past"):
        evaluate_submission(data, sub)


def test_unlabelled_image_is_named(data: Path, tmp_path: Path) -> None:
    images = list_images(data)
    label_path(images[2]).unlink()
    sub = tmp_path / "sub.csv"
    write_submission(sub, perfect_rows(images[:2]) + [(images[2].name, c, "") for c in CLASSES])
    with pytest.raises(HarnessError, match=images[2].stem):
        evaluate_submission(data, sub)


def test_header_only_submission_is_an_error(data: Path, tmp_path: Path) -> None:
    sub = tmp_path / "sub.csv"
    write_submission(sub, [])
    with pytest.raises(HarnessError, match="no rows"):
        evaluate_submission(data, sub)


def test_bad_rle_names_the_row(data: Path, tmp_path: Path) -> None:
    images = list_images(data)
    rows = perfect_rows(images)
    rows[NUM_CLASSES + 5] = (images[1].name, CLASSES[5], "3 x")
    sub = tmp_path / "sub.csv"
    write_submission(sub, rows)
    with pytest.raises(HarnessError) as info:
        evaluate_submission(data, sub)
    # header is row 1, so the 35th data row is row 36
    assert f"row {NUM_CLASSES + 5 + 2}:" in str(info.value) and "'x'" in str(info.value)


@pytest.mark.parametrize(
    ("mutate", "needles"),
    [
        (
            lambda text: text.replace("image_name,class,rle", "name,class,rle", 1),
            ["row 1", "header"],
        ),
        (lambda text: "\n".join(text.splitlines()[:-1]) + "\n", ["28 of 29", "'Ulna'"]),
        (lambda text: text.replace(",finger-7,", ",finger-77,", 1), ["row 8", "finger-77"]),
        (lambda text: text.replace("image100.png", "image999.png"), ["row 2", "image999.png"]),
        (lambda text: text.replace(",Ulna,", ",Ulna,1 ", 1), ["row 30", "odd number"]),
        (lambda text: text + "image100.png,Ulna,\n", ["duplicate", "Ulna"]),
        (lambda text: text.replace(",finger-3,", ",finger-3,,", 1), ["row 4", "columns"]),
    ],
)
def test_each_malformed_submission_is_one_exit_2_line(
    cli, data: Path, tmp_path: Path, mutate, needles: list[str]
) -> None:
    sub = tmp_path / "sub.csv"
    write_submission(sub, perfect_rows(list_images(data)[:2]))
    sub.write_text(mutate(sub.read_text()))
    with pytest.raises(HarnessError) as info:
        evaluate_submission(data, sub)
    for needle in needles:
        assert needle in str(info.value)
    result = cli("evaluate", "--data", data, "--submission", sub)
    assert result.code == 2
    assert result.err.startswith("harness: error:") and "Traceback" not in result.err
