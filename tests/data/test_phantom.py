"""The synthetic phantom: layout, labels, anatomy, determinism, safety."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest

from harness.classes import CLASSES
from harness.data.layout import label_path, list_images
from harness.data.phantom import SMALLEST_BONE_FRACTION, synthesize
from harness.errors import HarnessError

SIZE = 256
IDS = 4


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(tmp_path_factory.mktemp("phantom") / "data", ids=IDS, size=SIZE, test_ids=1)


def _label(image: Path) -> dict:
    return json.loads(label_path(image).read_text())


def _masks(label: dict, size: int) -> dict[str, np.ndarray]:
    masks = {}
    for ann in label["annotations"]:
        m = np.zeros((size, size), np.uint8)
        cv2.fillPoly(m, [np.array(ann["points"], np.int32)], 1)
        masks[ann["label"]] = m.astype(bool)
    return masks


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_layout_and_names(dataset: Path) -> None:
    train = list_images(dataset, "train")
    test = list_images(dataset, "test")
    assert sorted(p.parent.name for p in train) == sorted([f"ID{i:03d}" for i in range(IDS)] * 2)
    assert [p.parent.name for p in test] == [f"ID{IDS:03d}"] * 2
    names = [p.name for p in train + test]
    assert all(re.fullmatch(r"image\d{13}\.png", n) for n in names), names
    assert len(set(names)) == len(names)
    for image in train + test:
        pixels = cv2.imread(str(image), cv2.IMREAD_UNCHANGED)
        assert pixels.shape == (SIZE, SIZE) and pixels.dtype == np.uint8
    assert all(label_path(p).is_file() for p in train)
    assert not (dataset / "test" / "outputs_json").exists()
    assert not list(dataset.parent.glob(".*tmp*"))


def test_json_keys(dataset: Path) -> None:
    for image in list_images(dataset, "train"):
        label = _label(image)
        assert list(label) == [
            "annotations",
            "attributes",
            "file_id",
            "filename",
            "parent_path",
            "last_modifier_id",
            "metadata",
            "last_workers",
        ]
        assert label["metadata"] == {"height": SIZE, "width": SIZE}
        assert label["filename"] == f"{image.stem}.jpg"
        assert label["parent_path"] == f"/{image.parent.name}"
        uuid.UUID(label["file_id"])
        for ann in label["annotations"]:
            assert set(ann) == {"id", "type", "attributes", "points", "label"}
            assert ann["type"] == "poly_seg"
            uuid.UUID(ann["id"])


def test_every_class_once_with_valid_polygons(dataset: Path) -> None:
    for image in list_images(dataset, "train"):
        anns = _label(image)["annotations"]
        assert sorted(a["label"] for a in anns) == sorted(CLASSES)
        for ann in anns:
            pts = ann["points"]
            assert len(pts) >= 3, ann["label"]
            assert all(isinstance(v, int) for p in pts for v in p)
            arr = np.array(pts)
            assert arr.shape[1] == 2
            assert arr.min() >= 0 and arr.max() <= SIZE - 1, ann["label"]
        masks = _masks(_label(image), SIZE)
        assert all(m.any() for m in masks.values())


def test_radius_and_ulna_enter_from_the_bottom(dataset: Path) -> None:
    for image in list_images(dataset, "train"):
        masks = _masks(_label(image), SIZE)
        for name in ("Radius", "Ulna"):
            assert masks[name][-1].any(), f"{image.name}: {name} does not reach the bottom edge"


def test_bones_are_brighter_than_soft_tissue(dataset: Path) -> None:
    for image in list_images(dataset, "train"):
        pixels = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE).astype(float)
        masks = _masks(_label(image), SIZE)
        bone = np.any(list(masks.values()), axis=0)
        near = cv2.dilate(bone.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool) & ~bone
        contrast = pixels[bone].mean() - pixels[near].mean()
        assert 10 < contrast < 80, (image.name, contrast)


def test_deterministic(tmp_path: Path) -> None:
    a = synthesize(tmp_path / "a", ids=2, size=64, seed=3, test_ids=1)
    b = synthesize(tmp_path / "b", ids=2, size=64, seed=3, test_ids=1)
    c = synthesize(tmp_path / "c", ids=2, size=64, seed=4, test_ids=1)
    assert _files(a) == _files(b)
    assert _files(a) != _files(c)
    assert len(_files(a)) == 2 * 2 * 2 + 2


def test_left_hand_is_mirrored(dataset: Path) -> None:
    def cx(mask: np.ndarray) -> float:
        return float(np.nonzero(mask)[1].mean())

    for folder in sorted({p.parent for p in list_images(dataset, "train")}):
        right, left = sorted(folder.glob("*.png"))
        for image, thumb_on_left in ((right, True), (left, False)):
            m = _masks(_label(image), SIZE)
            assert (cx(m["finger-1"]) < cx(m["finger-16"])) == thumb_on_left, image
            assert (cx(m["Radius"]) < cx(m["Ulna"])) == thumb_on_left, image
            assert (cx(m["Scaphoid"]) < cx(m["Triquetrum"])) == thumb_on_left, image


def test_carpals_overlap_by_design(dataset: Path) -> None:
    for image in list_images(dataset, "train"):
        m = _masks(_label(image), SIZE)
        for big, small in (("Triquetrum", "Pisiform"), ("Trapezium", "Trapezoid")):
            share = (m[big] & m[small]).sum() / m[small].sum()
            assert 0.1 < share < 0.6, (image.name, small, share)


def test_bone_sizes(dataset: Path) -> None:
    low, high = SMALLEST_BONE_FRACTION
    for image in list_images(dataset, "train"):
        fractions = {k: v.mean() for k, v in _masks(_label(image), SIZE).items()}
        smallest = min(fractions.values())
        assert low <= smallest <= high, (image.name, min(fractions, key=fractions.get), smallest)
        assert max(fractions.values()) < 0.06


def test_progress_and_empty_existing_folder(tmp_path: Path) -> None:
    calls = []
    (tmp_path / "out").mkdir()
    out = synthesize(
        tmp_path / "out", ids=1, size=64, test_ids=1, progress=lambda *a: calls.append(a)
    )
    assert out == tmp_path / "out"
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_existing_non_empty_folder_is_never_touched(tmp_path: Path) -> None:
    out = tmp_path / "data"
    out.mkdir()
    (out / "mine.txt").write_text("precious")
    before = _files(out)
    with pytest.raises(HarnessError, match="already exists and is not empty"):
        synthesize(out, ids=1, size=64)
    assert _files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(HarnessError):
        synthesize(tmp_path / "file", ids=1, size=64)


def test_interrupted_generation_leaves_nothing(tmp_path: Path) -> None:
    def stop(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        synthesize(tmp_path / "data", ids=2, size=64, progress=stop)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "kwargs",
    [{"ids": 0}, {"size": 32}, {"test_ids": -1}, {"seed": -1}, {"ids": 2.5}, {"size": True}],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(HarnessError, match=next(iter(kwargs))):
        synthesize(tmp_path / "data", **kwargs)
    assert not (tmp_path / "data").exists()
