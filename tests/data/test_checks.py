"""Dataset checks report every problem, each naming its file; the cached variant reads once."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from harness.data import checks as check
from harness.data.checks import check_cached, check_dataset
from harness.data.layout import label_path, list_images
from harness.data.phantom import synthesize
from harness.errors import HarnessError


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(tmp_path_factory.mktemp("check") / "data", ids=5, size=64, test_ids=1)


@pytest.fixture
def data(pristine: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(pristine, tmp_path / "data"))


def _edit_json(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def test_a_clean_dataset_passes(data: Path) -> None:
    assert check_dataset(data) == ([], 10)
    assert check_cached(data) == 10


def test_every_problem_is_reported_each_naming_its_file(data: Path) -> None:
    images = list_images(data)
    labels = [label_path(i) for i in images]

    # 0: three label problems in one file: all three are reported.
    def misspell_repeat_and_drop(doc: dict) -> None:
        doc["annotations"][3]["label"] = "trapezium"
        doc["annotations"][5]["label"] = doc["annotations"][4]["label"]
        del doc["annotations"][28]

    _edit_json(labels[0], misspell_repeat_and_drop)

    # 1: a two-point polygon and a point outside the image
    def bad_polygons(doc: dict) -> None:
        doc["annotations"][0]["points"] = [[1, 1], [2, 2]]
        doc["annotations"][1]["points"][0] = [64, 3]

    _edit_json(labels[1], bad_polygons)
    labels[2].write_text("{not json")  # 2: does not parse
    labels[3].unlink()  # 3: an image without its label file
    images[4].write_bytes(b"not a png")  # 4: an unreadable image
    _edit_json(labels[5], lambda doc: doc["metadata"].update(width=80))  # 5: size mismatch
    orphan = labels[6].parent / "image999.json"  # a label file without an image
    shutil.copy(labels[6], orphan)
    twin = data / "train" / "DCM" / images[8].parent.name / images[7].name  # same base name
    shutil.copy(images[7], twin)
    shutil.copy(labels[7], label_path(twin))
    test_image = list_images(data, "test")[0]
    test_image.write_bytes(b"")  # an unreadable test image

    problems, count = check_dataset(data)
    assert count == 11
    assert all("\n" not in p for p in problems)
    expected = [
        (labels[0], "unknown label 'trapezium'"),
        (labels[0], "appears twice"),
        (labels[0], "missing label(s)"),
        (labels[1], "at least 3"),
        (labels[1], "outside the 64x64 image"),
        (labels[2], "not a readable JSON"),
        (images[3], "no label file"),
        (images[4], "not a readable PNG"),
        (images[5], "but"),
        (orphan, "label file without an image"),
        (twin, "base name also used by"),
        (test_image, "not a readable PNG"),
    ]
    for path, needle in expected:
        assert any(p.startswith(str(path)) and needle in p for p in problems), (path, needle)
    assert len(problems) == len(expected), problems


def test_missing_layout_is_one_problem(tmp_path: Path) -> None:
    problems, count = check_dataset(tmp_path / "nowhere")
    assert count == 0 and len(problems) == 1 and "nowhere" in problems[0]


def test_cached_check_reads_only_what_changed(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []
    real_imread = cv2.imread

    def counting_imread(path: str, *args):
        reads.append(path)
        return real_imread(path, *args)

    monkeypatch.setattr(check.cv2, "imread", counting_imread)
    assert check_cached(data) == 10
    assert len(reads) == 12  # 10 training and 2 test images
    reads.clear()
    assert check_cached(data) == 10
    assert reads == []  # nothing changed: no pixel is read again

    image = list_images(data)[3]
    label = label_path(image)
    _edit_json(label, lambda doc: doc["annotations"][0].update(points=[[1, 1], [2, 2]]))
    with pytest.raises(HarnessError) as info:
        check_cached(data)
    assert reads == [str(image)]  # only the changed pair is checked again
    assert str(label) in str(info.value) and "harness data check" in str(info.value)

    # A new mtime with the same size also counts as a change.
    reads.clear()
    stamp = os.stat(image).st_mtime_ns
    os.utime(image, ns=(stamp + 10**9, stamp + 10**9))
    with pytest.raises(HarnessError, match="and 0 more|at least 3"):
        check_cached(data)
    assert reads == [str(image)]


def test_cached_check_counts_every_problem(data: Path) -> None:
    for label in [label_path(i) for i in list_images(data)][:2]:
        label.unlink()
    with pytest.raises(HarnessError, match=r"no label file; .* \(and 1 more\); `harness data"):
        check_cached(data)


def test_image_size_against_metadata(data: Path) -> None:
    image = list_images(data)[0]
    cv2.imwrite(str(image), np.zeros((64, 48), np.uint8))
    problems, _ = check_dataset(data)
    assert problems == [
        f"{image}: image is 48x64 but {label_path(image)} says 64x64 "
        "(metadata.width/height); fix the metadata or the image"
    ]


def test_cli_lists_every_problem_and_exits_2(cli, data: Path) -> None:
    labels = [label_path(i) for i in list_images(data)]
    labels[0].write_text("[]")
    labels[1].unlink()
    result = cli("data", "check", data)
    assert result.code == 2
    lines = [line for line in result.err.splitlines() if line.startswith("harness: error:")]
    assert len(lines) == 2
    assert str(labels[0]) in result.err and labels[1].stem in result.err
    assert cli("data", "check", data / "train").code == 2
