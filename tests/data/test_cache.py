"""The preprocessing cache: exact contents, memory-mapped, rebuilt on change, atomic, locked."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from harness.classes import NUM_CLASSES
from harness.data import cache
from harness.data.annotations import rasterize, read_annotation
from harness.data.cache import lookup, preprocessed, unpack_masks, worker_init_fn
from harness.data.datasets import TrainDataset
from harness.data.images import read_gray
from harness.data.layout import label_path, list_images
from harness.data.sources import cache_dir
from harness.errors import HarnessError

R = 48  # not a multiple of 8: the packed rows carry padding bits


def test_contents_match_decoding_and_rasterizing_directly(data: Path) -> None:
    progress: list[tuple[int, int]] = []
    built = preprocessed(data, R, progress=lambda done, total: progress.append((done, total)))
    images, masks = built.arrays()
    assert isinstance(images, np.memmap) and isinstance(masks, np.memmap)
    assert images.shape == (10, R, R) and images.dtype == np.uint8
    assert masks.shape == (10, NUM_CLASSES, R, (R + 7) // 8) and masks.dtype == np.uint8
    assert progress[0] == (0, 10) and progress[-1] == (10, 10)
    for i, path in enumerate(list_images(data)):
        assert built.names[i] == path.relative_to(data).as_posix()
        expected = cv2.resize(read_gray(path), (R, R), interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(images[i], expected)
        truth = rasterize(read_annotation(label_path(path)), (R, R))
        np.testing.assert_array_equal(unpack_masks(masks[i], R), truth)
    assert built.path.parent == cache_dir() / "preprocessed"
    assert not [p for p in built.path.parent.iterdir() if p.name.startswith(".")]  # no temp left


def test_worker_init_fn_makes_opencv_single_threaded() -> None:
    before = cv2.getNumThreads()
    try:
        worker_init_fn(0)
        assert cv2.getNumThreads() == 1
    finally:
        cv2.setNumThreads(before)


def test_a_changed_source_file_rebuilds_and_drops_the_old_cache(data: Path) -> None:
    first = preprocessed(data, R)
    again = preprocessed(data, R)
    assert again.path == first.path
    label = label_path(list_images(data)[0])
    doc = json.loads(label.read_text())
    doc["annotations"][0]["points"] = [[1, 1], [40, 2], [3, 30]]
    label.write_text(json.dumps(doc))
    rebuilt = preprocessed(data, R)
    assert rebuilt.path != first.path and not first.path.exists()
    masks = unpack_masks(rebuilt.arrays()[1][0], R)
    np.testing.assert_array_equal(masks, rasterize(read_annotation(label), (R, R)))
    other = preprocessed(data, 32)  # another resolution lives beside it
    assert other.path != rebuilt.path and rebuilt.path.exists()


def test_a_failed_build_leaves_nothing(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = cache._preprocess_one
    calls = []

    def flaky(path: Path, resolution: int):
        calls.append(path)
        if len(calls) == 4:
            raise HarnessError(f"{path}: broken")
        return real(path, resolution)

    monkeypatch.setattr(cache, "_preprocess_one", flaky)
    with pytest.raises(HarnessError, match="broken"):
        preprocessed(data, R)
    parent = cache_dir() / "preprocessed"
    assert [p.name for p in parent.iterdir() if not p.name.endswith(".lock")] == []
    monkeypatch.setattr(cache, "_preprocess_one", real)
    assert len(preprocessed(data, R).names) == 10


def test_concurrent_builders_build_once(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = cache._build
    builds = []

    def counted(*args) -> None:
        builds.append(1)
        real(*args)

    monkeypatch.setattr(cache, "_build", counted)
    start = threading.Barrier(3)
    results: list[Path] = []

    def build() -> None:
        start.wait()
        results.append(preprocessed(data, R, progress=lambda *_: None).path)

    threads = [threading.Thread(target=build) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1 and len(set(results)) == 1 and len(results) == 3


def test_images_outside_the_training_set_are_refused(data: Path) -> None:
    with pytest.raises(HarnessError, match="not a labelled training image"):
        lookup(list_images(data, "test"), R)
    with pytest.raises(HarnessError, match="empty"):
        lookup([], R)


def test_a_broken_label_fails_the_build_naming_the_file(data: Path) -> None:
    label = label_path(list_images(data)[5])
    label.write_text("{")
    with pytest.raises(HarnessError, match=label.name):
        TrainDataset(list_images(data), R)
