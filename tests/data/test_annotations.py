"""Label files: parsing with the real files' extra keys, one-line errors naming the file, masks."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from harness.classes import CLASSES, NUM_CLASSES
from harness.data.annotations import Annotation, rasterize, read_annotation
from harness.errors import HarnessError


def polygon_for(i: int, size: int) -> list[list[int]]:
    """A distinct, irregular convex-ish polygon per class inside a ``size`` square image."""
    rng = np.random.default_rng(i)
    cx, cy = rng.integers(size // 4, 3 * size // 4, 2)
    r = size // 6 + i % 5
    angles = np.sort(rng.uniform(0, 2 * np.pi, 9))
    xs = np.clip(cx + r * np.cos(angles), 0, size - 1)
    ys = np.clip(cy + 0.7 * r * np.sin(angles), 0, size - 1)
    return [[int(x), int(y)] for x, y in zip(xs, ys, strict=True)]


def label_doc(size: int = 64) -> dict:
    """A label document with the keys the competition's files carry."""
    return {
        "annotations": [
            {
                "id": f"id-{i}",
                "type": "poly_seg",
                "attributes": {},
                "points": polygon_for(i, size),
                "label": name,
            }
            for i, name in enumerate(CLASSES)
        ],
        "attributes": {},
        "file_id": "abc",
        "filename": "image1.png",
        "parent_path": "/ID001",
        "last_modifier_id": "someone",
        "metadata": {"height": size, "width": size, "camera": "x"},
        "last_workers": {},
    }


def write_json(path: Path, doc: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def test_parse_tolerates_extra_keys_and_orders_by_class(tmp_path: Path) -> None:
    doc = label_doc()
    doc["annotations"].reverse()  # file order must not matter
    ann = read_annotation(write_json(tmp_path / "a.json", doc))
    assert isinstance(ann, Annotation)
    assert (ann.height, ann.width) == (64, 64)
    assert len(ann.polygons) == NUM_CLASSES
    for i, poly in enumerate(ann.polygons):
        assert poly.dtype == np.int32 and poly.shape == (9, 2)
        assert poly.tolist() == polygon_for(i, 64)


def _mutate(doc: dict, how: str) -> object:
    doc = copy.deepcopy(doc)
    if how == "no_annotations":
        del doc["annotations"]
    elif how == "no_metadata":
        del doc["metadata"]
    elif how == "no_height":
        del doc["metadata"]["height"]
    elif how == "bad_width":
        doc["metadata"]["width"] = "wide"
    elif how == "unknown_label":
        doc["annotations"][3]["label"] = "trapezium"
    elif how == "duplicate_label":
        doc["annotations"][4]["label"] = CLASSES[3]
    elif how == "missing_label":
        del doc["annotations"][28]
    elif how == "two_points":
        doc["annotations"][0]["points"] = [[1, 1], [5, 5]]
    elif how == "x_at_width":
        doc["annotations"][0]["points"][0] = [64, 10]
    elif how == "negative_y":
        doc["annotations"][0]["points"][0] = [10, -1]
    elif how == "text_points":
        doc["annotations"][0]["points"][0] = ["1", "2"]
    elif how == "no_points":
        del doc["annotations"][0]["points"]
    elif how == "not_object":
        return [1, 2, 3]
    return doc


@pytest.mark.parametrize(
    ("how", "needle"),
    [
        ("no_annotations", "annotations"),
        ("no_metadata", "metadata"),
        ("no_height", "metadata.height"),
        ("bad_width", "metadata.width"),
        ("unknown_label", "'trapezium'"),
        ("duplicate_label", "appears twice"),
        ("missing_label", "Ulna"),
        ("two_points", "at least 3"),
        ("x_at_width", "outside"),
        ("negative_y", "outside"),
        ("text_points", "points"),
        ("no_points", "points"),
        ("not_object", "object"),
    ],
)
def test_validation_errors_name_the_file(tmp_path: Path, how: str, needle: str) -> None:
    path = write_json(tmp_path / "bad.json", _mutate(label_doc(), how))
    with pytest.raises(HarnessError) as info:
        read_annotation(path)
    message = str(info.value)
    assert str(path) in message and needle in message
    assert "\n" not in message


def test_unknown_label_suggests_the_spelling(tmp_path: Path) -> None:
    path = write_json(tmp_path / "bad.json", _mutate(label_doc(), "unknown_label"))
    with pytest.raises(HarnessError, match="did you mean 'Trapezium'"):
        read_annotation(path)


@pytest.mark.parametrize("content", ["{not json", "", "\xff\xfe"])
def test_broken_or_missing_file_names_the_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "broken.json"
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(HarnessError, match="broken.json"):
        read_annotation(path)
    with pytest.raises(HarnessError, match="nowhere.json"):
        read_annotation(tmp_path / "nowhere.json")


def test_rasterize_matches_fillpoly_at_original_size(tmp_path: Path) -> None:
    doc = label_doc(64)
    doc["metadata"] = {"height": 48, "width": 64}
    for entry in doc["annotations"]:
        entry["points"] = [[x, min(y, 47)] for x, y in entry["points"]]
    ann = read_annotation(write_json(tmp_path / "a.json", doc))
    masks = rasterize(ann)
    assert masks.shape == (NUM_CLASSES, 48, 64) and masks.dtype == np.uint8
    assert set(np.unique(masks)) <= {0, 1}
    for i, entry in enumerate(doc["annotations"]):
        expected = np.zeros((48, 64), np.uint8)
        cv2.fillPoly(expected, [np.array(entry["points"], np.int32)], 1)
        np.testing.assert_array_equal(masks[i], expected)
    # Overlapping classes keep their own channel: some pixel belongs to two classes.
    assert (masks.sum(axis=0) > 1).any()


@pytest.mark.parametrize("size", [(128, 128), (96, 160), (64, 64)])
def test_scaled_rasterization_approximates_nearest_resize(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    # Downscaling, the training case.  fillPoly always sets the pixels its outline crosses, so
    # the scaled mask runs up to about half a target pixel fatter: differences are boundary-only.
    ann = read_annotation(write_json(tmp_path / "a.json", label_doc(256)))
    full = rasterize(ann)
    scaled = rasterize(ann, size)
    assert scaled.shape == (NUM_CLASSES, *size)
    for c in range(NUM_CLASSES):
        resized = cv2.resize(full[c], (size[1], size[0]), interpolation=cv2.INTER_NEAREST_EXACT)
        union = np.logical_or(resized, scaled[c]).sum()
        iou = np.logical_and(resized, scaled[c]).sum() / union
        assert iou > 0.8, (CLASSES[c], iou)  # some shapes are only ~10 px across at 64²
        # Disagreements sit on the boundary only: within one pixel of the resized mask's edge.
        kernel = np.ones((3, 3), np.uint8)
        edge = cv2.dilate(resized, kernel) != cv2.erode(resized, kernel)
        assert not ((resized != scaled[c]) & ~edge).any()


def test_float_points_are_rounded(tmp_path: Path) -> None:
    doc = label_doc()
    doc["annotations"][0]["points"] = [[1.4, 1.6], [20.0, 2], [10, 30.2]]
    ann = read_annotation(write_json(tmp_path / "a.json", doc))
    assert ann.polygons[0].tolist() == [[1, 2], [20, 2], [10, 30]]
