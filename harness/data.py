"""Datasets: the split, the fingerprint, the synthetic default, and pixels for training.

One loader serves the competition data and the built-in phantom, which is written in
the same layout. Images are grey; training inputs are resized to the protocol's
resolution and masks are rasterized from the polygons directly at that size, once per
dataset and resolution, into the memory-mapped preprocessing cache (``harness.cache``):
decoding a 2048² PNG per sample would cost more than the training step.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from filelock import FileLock
from sklearn.model_selection import GroupKFold
from torch.utils.data import Dataset, get_worker_info

from harness.annotations import Annotation, rasterize, read_annotation
from harness.dice import DiceAccumulator
from harness.errors import HarnessError
from harness.layout import group_of, label_path, list_images
from harness.records import atomic_write_text

#: Bump when the phantom's drawing changes, so cached synthetic datasets are regenerated.
PHANTOM_VERSION = 2


def cache_dir() -> Path:
    """``$HARNESS_CACHE_DIR``, default ``~/.cache/harness``."""
    return Path(os.environ.get("HARNESS_CACHE_DIR") or Path.home() / ".cache" / "harness")


def split(images: Sequence[Path], folds: int = 5, fold: int = 0) -> tuple[list[Path], list[Path]]:
    """Train and validation images: GroupKFold on sorted paths, grouped by ID folder."""
    images = sorted(images)
    groups = [group_of(p) for p in images]
    if len(set(groups)) < folds:
        raise HarnessError(
            f"{images[0].parent.parent if images else 'dataset'}: {len(set(groups))} ID folders, "
            f"but the protocol's {folds}-fold split needs at least {folds}"
        )
    parts = list(GroupKFold(n_splits=folds).split(images, groups=groups))
    train_idx, val_idx = parts[fold]
    return [images[i] for i in train_idx], [images[i] for i in val_idx]


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset folder and its identity: ``fingerprint`` hashes every file's path and bytes."""

    root: Path
    name: str
    fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.root), "fingerprint": self.fingerprint}


def describe(root: Path) -> DatasetInfo:
    root = Path(root).resolve()
    list_images(root, "train")  # fails early with a clear line when the layout is wrong
    return DatasetInfo(root, slug(root.name), fingerprint(root))


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "dataset"


def fingerprint(root: Path) -> str:
    """SHA-256 over every file under ``train/`` and ``test/`` (relative path and content).

    Content hashes are cached by (size, mtime) in the cache folder so a second run does
    not read every image again.
    """
    root = Path(root).resolve()
    memo_path = (
        cache_dir()
        / "fingerprints"
        / (hashlib.sha256(str(root).encode()).hexdigest()[:16] + ".json")
    )
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    files = sorted(p for sub in ("train", "test") for p in (root / sub).rglob("*") if p.is_file())
    total = hashlib.sha256()
    fresh: dict[str, list[Any]] = {}
    for path in files:
        rel = path.relative_to(root).as_posix()
        st = path.stat()
        known = memo.get(rel)
        if known and known[0] == st.st_size and known[1] == st.st_mtime_ns:
            digest = known[2]
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        fresh[rel] = [st.st_size, st.st_mtime_ns, digest]
        total.update(f"{rel}\0{digest}\n".encode())
    if fresh != memo:
        atomic_write_text(memo_path, json.dumps(fresh))
    return total.hexdigest()


def synthetic_dataset(
    ids: int, size: int, seed: int, progress: Callable[[int, int], None] | None = None
) -> Path:
    """The built-in phantom for these settings, generated once into the cache and reused."""
    from harness.phantom import synthesize

    root = cache_dir() / "synthetic" / f"phantom-v{PHANTOM_VERSION}-ids{ids}-size{size}-seed{seed}"
    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root) + ".lock"):
        if not (root / "train").is_dir():
            synthesize(root, ids=ids, size=size, seed=seed, progress=progress)
    return root


def read_gray(path: Path) -> np.ndarray:
    """An 8-bit grey image (H, W); colour PNGs are converted."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise HarnessError(f"{path}: not a readable image; replace or remove it")
    return image


def to_input(image: np.ndarray) -> torch.Tensor:
    """(H, W) uint8 -> (1, H, W) float32 in [0, 1], the models' input."""
    return torch.from_numpy(image).float().div_(255.0).unsqueeze(0)


def _in_worker() -> bool:
    """In a data-loader worker (not the main process), OpenCV is made single-threaded once."""
    if get_worker_info() is None:
        return False
    cv2.setNumThreads(0)
    return True


class TrainDataset(Dataset):
    """Training pairs at the protocol's resolution, read from the preprocessing cache.

    The cache (``harness.cache``) holds every labelled image of the dataset decoded,
    resized and rasterized once, memory-mapped; it is built on first use (with a
    progress bar) and rebuilt when a source file changes.  ``augment`` is an
    albumentations transform called as ``augment(image=(H, W) uint8, mask=(H, W, 29)
    uint8)``, the convention of ``harness_augmentations``.  In data-loader workers
    OpenCV runs single-threaded (``harness.cache.worker_init_fn`` does the same).
    """

    def __init__(self, images: Sequence[Path], resolution: int, augment: Any = None) -> None:
        from harness.cache import lookup

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
        from harness.cache import unpack_masks

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
    scored (``score``), at the original (or the protocol's evaluation) resolution, and
    dropped straight after: nothing of size 29 x H x W outlives one image.
    """

    def __init__(self, images: Sequence[Path], resolution: int) -> None:
        from harness.cache import lookup

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

    def score(
        self,
        scores: DiceAccumulator,
        logits: torch.Tensor,
        index: int,
        size: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """Score one image's ``(29, h, w)`` logits into ``scores``; returns its per-class Dice.

        The truth is rasterized here and released on return, so a caller's loop never
        holds two images' full-resolution masks at once.
        """
        return scores.add_logits(logits, self.truth(index, size), name=self.paths[index].name)


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
        from harness.cache import resize_image

        _in_worker()
        image = read_gray(self.paths[index])
        height, width = image.shape
        return to_input(resize_image(image, self.resolution)), index, height, width


def check_size(path: Path, image: np.ndarray, ann: Annotation) -> None:
    """An image whose size differs from its label file's metadata is an error naming both."""
    if image.shape != (ann.height, ann.width):
        raise HarnessError(
            f"{path}: image is {image.shape[1]}x{image.shape[0]} but its label file says "
            f"{ann.width}x{ann.height}; fix the metadata or the image"
        )
