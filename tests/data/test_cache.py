"""The preprocessing cache: exact contents, memory-mapped, rebuilt on change, atomic, locked."""

from __future__ import annotations

import json
import pickle
import shutil
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from harness.classes import NUM_CLASSES
from harness.data import cache
from harness.data.annotations import rasterize, read_annotation
from harness.data.cache import lookup, preprocessed, unpack_masks, worker_init_fn
from harness.data.datasets import EvalDataset, TrainDataset
from harness.data.images import read_gray
from harness.data.layout import label_path, list_images
from harness.data.phantom import synthesize
from harness.data.sources import cache_dir
from harness.errors import HarnessError

R = 48  # not a multiple of 8: the packed rows carry padding bits


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(tmp_path_factory.mktemp("cache") / "data", ids=5, size=96, test_ids=1)


@pytest.fixture
def data(pristine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))  # a fresh cache per test
    return Path(shutil.copytree(pristine, tmp_path / "data"))


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


def test_train_dataset_reads_the_cache(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images = list_images(data)[2:7]
    dataset = TrainDataset(images, R)
    assert len(dataset) == 5
    x, y = dataset[1]
    assert x.shape == (1, R, R) and x.dtype == torch.float32
    assert y.shape == (NUM_CLASSES, R, R) and y.dtype == torch.float32
    expected = cv2.resize(read_gray(images[1]), (R, R), interpolation=cv2.INTER_AREA)
    assert torch.equal(x, torch.from_numpy(expected).float().div(255)[None])
    truth = rasterize(read_annotation(label_path(images[1])), (R, R))
    assert torch.equal(y, torch.from_numpy(truth).float())

    # Built once: later datasets (and validation) open the same files without rebuilding.
    monkeypatch.setattr(cache, "_build", lambda *a: pytest.fail("rebuilt an unchanged cache"))
    evaluation = EvalDataset(list_images(data)[:2], R)
    x0, index = evaluation[0]
    assert index == 0 and x0.shape == (1, R, R)
    assert TrainDataset(images, R)[1][0].equal(x)


def test_augmentation_gets_hwc_masks(data: Path) -> None:
    seen = {}

    def augment(*, image: np.ndarray, mask: np.ndarray) -> dict:
        seen["image"], seen["mask"] = image.shape, mask.shape
        return {"image": image[:, ::-1], "mask": mask[:, ::-1]}

    plain = TrainDataset(list_images(data)[:1], R)[0]
    flipped = TrainDataset(list_images(data)[:1], R, augment)[0]
    assert seen == {"image": (R, R), "mask": (R, R, NUM_CLASSES)}
    assert torch.equal(flipped[0], plain[0].flip(-1)) and torch.equal(flipped[1], plain[1].flip(-1))


def test_pickling_carries_no_pixels_and_workers_load_the_same(data: Path) -> None:
    dataset = TrainDataset(list_images(data), R)
    _ = dataset[0]  # opens the memory maps
    assert len(pickle.dumps(dataset)) < 20_000
    loader = DataLoader(dataset, batch_size=4, num_workers=1)
    batches = list(loader)
    first = torch.cat([b[0] for b in batches])
    assert torch.equal(first, torch.stack([dataset[i][0] for i in range(len(dataset))]))


class _ThreadsProbe(torch.utils.data.Dataset):
    def __init__(self, inner: TrainDataset) -> None:
        self.inner = inner

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> int:
        self.inner[index]
        return cv2.getNumThreads()


def test_opencv_is_single_threaded_in_workers(data: Path) -> None:
    probe = _ThreadsProbe(TrainDataset(list_images(data)[:1], R))
    assert list(DataLoader(probe, num_workers=1)) == [torch.tensor([1])]
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
