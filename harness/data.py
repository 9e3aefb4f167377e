"""Datasets: the split, the fingerprint, the synthetic default, and pixels for training.

One loader serves the competition data and the built-in phantom, which is written in
the same layout. Images are grey; training inputs are resized to the protocol's
resolution and masks are rasterized from the polygons directly at that size.
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
from torch.utils.data import Dataset

from harness.annotations import Annotation, rasterize, read_annotation
from harness.errors import HarnessError
from harness.layout import group_of, label_path, list_images

#: Bump when the phantom's drawing changes, so cached synthetic datasets are regenerated.
PHANTOM_VERSION = 1


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
        _atomic_write_text(memo_path, json.dumps(fresh))
    return total.hexdigest()


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


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


class TrainDataset(Dataset):
    """Training pairs at the protocol's resolution, decoded once and kept in memory.

    ``augment`` is an albumentations transform called as ``augment(image=(H, W) uint8,
    mask=(H, W, 29) uint8)``, the convention of ``harness_augmentations``.
    """

    def __init__(self, images: Sequence[Path], resolution: int, augment: Any = None) -> None:
        self.resolution = resolution
        self.augment = augment
        self.images: list[np.ndarray] = []
        self.masks: list[np.ndarray] = []
        for path in images:
            ann = read_annotation(label_path(path))
            image = read_gray(path)
            _check_size(path, image, ann)
            self.images.append(
                cv2.resize(image, (resolution, resolution), interpolation=cv2.INTER_AREA)
            )
            self.masks.append(rasterize(ann, (resolution, resolution)))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, masks = self.images[index], self.masks[index]
        if self.augment is not None:
            out = self.augment(image=image, mask=masks.transpose(1, 2, 0))
            image, masks = out["image"], out["mask"].transpose(2, 0, 1)
        return to_input(np.ascontiguousarray(image)), torch.from_numpy(
            np.ascontiguousarray(masks)
        ).float()


class EvalDataset(Dataset):
    """Validation images: the model input at the protocol's resolution and the label file.

    Ground truth is rasterized per image when it is scored, at the original (or the
    protocol's evaluation) resolution, so nothing of size 29 x H x W is kept.
    """

    def __init__(self, images: Sequence[Path], resolution: int) -> None:
        self.paths = list(images)
        self.resolution = resolution

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = read_gray(self.paths[index])
        small = cv2.resize(image, (self.resolution, self.resolution), interpolation=cv2.INTER_AREA)
        return to_input(small), index

    def annotation(self, index: int) -> Annotation:
        ann = read_annotation(label_path(self.paths[index]))
        return ann


def _check_size(path: Path, image: np.ndarray, ann: Annotation) -> None:
    if image.shape != (ann.height, ann.width):
        raise HarnessError(
            f"{path}: image is {image.shape[1]}x{image.shape[0]} but its label file says "
            f"{ann.width}x{ann.height}; fix the metadata or the image"
        )
