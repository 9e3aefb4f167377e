"""Datasets (``harness.data.datasets``): training pairs and validation inputs read from the
preprocessing cache, ground truth rasterized when scored, any image decoded for prediction;
all three give the model the same pixels, and none pickles its pixels into a worker."""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from harness.classes import NUM_CLASSES
from harness.data import cache
from harness.data.annotations import rasterize, read_annotation
from harness.data.datasets import EvalDataset, PredictDataset, TrainDataset
from harness.data.images import read_gray
from harness.data.layout import label_path, list_images

R = 48  # not a multiple of 8: the cache's packed rows carry padding bits


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


def test_opencv_is_single_threaded_in_loader_workers(data: Path) -> None:
    probe = _ThreadsProbe(TrainDataset(list_images(data)[:1], R))
    assert list(DataLoader(probe, num_workers=1)) == [torch.tensor([1])]


def test_eval_dataset_gives_the_training_pixels_and_the_truth_at_any_size(data: Path) -> None:
    images = list_images(data)[3:5]
    evaluation = EvalDataset(images, R)
    assert len(evaluation) == 2
    x, index = evaluation[1]
    assert index == 1 and torch.equal(x, TrainDataset(images, R)[1][0])
    annotation = read_annotation(label_path(images[1]))
    assert evaluation.annotation(1).path == annotation.path == label_path(images[1])
    full = evaluation.truth(1)
    assert full.shape == (NUM_CLASSES, annotation.height, annotation.width)
    assert full.dtype == torch.uint8 and torch.equal(full, torch.from_numpy(rasterize(annotation)))
    assert evaluation.truth(1, (R, R)).shape == (NUM_CLASSES, R, R)
    assert len(pickle.dumps(evaluation)) < 20_000


def test_an_empty_eval_dataset_reads_no_cache(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "lookup", lambda *a: pytest.fail("looked up an empty set"))
    assert len(EvalDataset([], R)) == 0


def test_predict_dataset_decodes_any_image_and_keeps_its_size(data: Path) -> None:
    (image,) = list_images(data, "test")[:1]
    assert not label_path(image).exists()  # unlabelled: no cache can hold it
    x, index, height, width = PredictDataset([image], R)[0]
    assert index == 0 and (height, width) == read_gray(image).shape == (96, 96)
    assert x.shape == (1, R, R) and x.dtype == torch.float32
    expected = cv2.resize(read_gray(image), (R, R), interpolation=cv2.INTER_AREA)
    assert torch.equal(x, torch.from_numpy(expected).float().div(255)[None])
    (training,) = list_images(data)[:1]
    assert torch.equal(PredictDataset([training], R)[0][0], TrainDataset([training], R)[0][0])
