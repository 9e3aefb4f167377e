"""Datasets: what training, validation and prediction read, sample by sample.

One loader serves the competition data and the built-in phantom, which is written in
the same layout. Images are grey; training inputs are resized to the protocol's
resolution and masks are rasterized from the polygons directly at that size, once per
dataset and resolution, into the memory-mapped preprocessing cache (``harness.data.cache``):
decoding a 2048² PNG per sample would cost more than the training step.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from harness.data.annotations import Annotation, rasterize, read_annotation
from harness.data.cache import lookup, unpack_masks
from harness.data.images import read_gray, resize_image, to_input
from harness.data.layout import label_path


def _in_worker() -> bool:
    """In a data-loader worker (not the main process), OpenCV is made single-threaded once."""
    if get_worker_info() is None:
        return False
    cv2.setNumThreads(0)
    return True


class TrainDataset(Dataset):
    """Training pairs at the protocol's resolution, read from the preprocessing cache.

    The cache (``harness.data.cache``) holds every labelled image of the dataset decoded,
    resized and rasterized once, memory-mapped; it is built on first use (silently here;
    ``harness.runs`` builds it earlier, under the CLI's bar) and rebuilt when a source
    file changes. ``augment`` is an albumentations transform called as
    ``augment(image=(H, W) uint8, mask=(H, W, 29) uint8)``, the convention of
    ``harness_augmentations``. In data-loader workers OpenCV runs single-threaded
    (``harness.data.cache.worker_init_fn`` does the same).
    """

    def __init__(self, images: Sequence[Path], resolution: int, augment: Any = None) -> None:
        self.resolution = resolution
        self.augment = augment
        self.paths = [Path(p) for p in images]
        self.cache, self.rows = lookup(self.paths, resolution)
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_arrays"] = None  # workers map the files themselves; never pickle the data
        return state

    def _open(self) -> tuple[np.ndarray, np.ndarray]:
        if self._arrays is None:
            _in_worker()
            self._arrays = self.cache.arrays()
        return self._arrays

    def __len__(self) -> int:
        return len(self.rows)

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The stored pair, unaugmented: (R, R) uint8 image and (29, R, R) uint8 masks."""
        images, masks = self._open()
        row = self.rows[index]
        return np.array(images[row]), unpack_masks(masks[row], self.resolution)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, masks = self.sample(index)
        if self.augment is not None:
            out = self.augment(image=image, mask=masks.transpose(1, 2, 0))
            image, masks = out["image"], out["mask"].transpose(2, 0, 1)
        return to_input(np.ascontiguousarray(image)), torch.from_numpy(
            np.ascontiguousarray(masks)
        ).float()


class EvalDataset(Dataset):
    """Validation images: the model input at the protocol's resolution and the label file.

    Inputs come from the preprocessing cache (the same resized pixels as decoding and
    resizing here would give).  Ground truth is rasterized per image only when it is
    scored (``truth``), at the original (or the protocol's evaluation) resolution, and
    dropped straight after: nothing of size 29 x H x W outlives one image.
    """

    def __init__(self, images: Sequence[Path], resolution: int) -> None:
        self.paths = [Path(p) for p in images]
        self.resolution = resolution
        self.cache, self.rows = lookup(self.paths, resolution) if self.paths else (None, [])
        self._images: np.ndarray | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_images"] = None
        return state

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if self._images is None:
            _in_worker()
            self._images = self.cache.arrays()[0]
        return to_input(np.array(self._images[self.rows[index]])), index

    def annotation(self, index: int) -> Annotation:
        return read_annotation(label_path(self.paths[index]))

    def truth(self, index: int, size: tuple[int, int] | None = None) -> torch.Tensor:
        """The image's (29, H, W) uint8 ground truth at ``size`` (default: original)."""
        return torch.from_numpy(rasterize(self.annotation(index), size))


class PredictDataset(Dataset):
    """Any images (e.g. unlabelled ``test/DCM``): model input, index and original (H, W).

    Decodes each PNG when asked; used where no preprocessing cache applies.
    """

    def __init__(self, images: Sequence[Path], resolution: int) -> None:
        self.paths = [Path(p) for p in images]
        self.resolution = resolution

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int, int]:
        _in_worker()
        image = read_gray(self.paths[index])
        height, width = image.shape
        return to_input(resize_image(image, self.resolution)), index, height, width
