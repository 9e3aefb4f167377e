"""The preprocessing cache: each training image decoded and its masks rasterized once.

Decoding a 2048² PNG and filling 29 polygons costs far more than a training step at
512², and the competition's public baseline pays it for every sample of every epoch.
Here it is paid once per (dataset fingerprint, resolution): the images, resized to the
protocol's resolution, go into one uint8 array and the 29 masks, bit-packed along
their rows with ``np.packbits`` (8 pixels a byte), into another, both ``.npy`` files
that training memory-maps, so every worker and every run shares the page cache and a
sample costs one small read and an unpack.

The folder is named after the dataset's fingerprint (a hash of every file's bytes), so
changing any source file selects a new folder and it is rebuilt; the stale one for
the same dataset and resolution is removed.  A build writes into a temporary folder
and renames it into place under a file lock: concurrent runs wait for one builder,
and an interrupted build never leaves a folder that looks complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from harness.classes import CLASSES, NUM_CLASSES
from harness.data.annotations import rasterize, read_annotation
from harness.data.images import check_size, read_gray, resize_image
from harness.data.layout import label_path, list_images
from harness.data.sources import cache_dir, fingerprint
from harness.errors import HarnessError
from harness.locking import Lock

#: Bump when what is stored changes (resizing, rasterizing, layout), so old caches are unused.
CACHE_VERSION = 1
META_NAME = "meta.json"
IMAGES_NAME = "images.npy"
MASKS_NAME = "masks.npy"

Progress = Callable[[int, int], None]


def dataset_root(image: Path) -> Path:
    """The dataset folder of a training image: ``ROOT/train/DCM/<ID>/<image>.png`` -> ``ROOT``."""
    return Path(image).resolve().parents[3]


@dataclass(frozen=True)
class Preprocessed:
    """One built cache: ``images`` (N, R, R) uint8 and ``masks`` (N, 29, R, ceil(R/8)) packed.

    Arrays are opened lazily and memory-mapped read-only; pickling (for data-loader
    workers started with *spawn*) carries the folder, never the data.
    """

    path: Path
    resolution: int
    names: tuple[str, ...]  # image paths relative to the dataset folder, sorted

    @property
    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The memory-mapped ``(images, masks)``."""
        images = np.load(self.path / IMAGES_NAME, mmap_mode="r")
        masks = np.load(self.path / MASKS_NAME, mmap_mode="r")
        return images, masks


def unpack_masks(packed: np.ndarray, resolution: int) -> np.ndarray:
    """``(29, R, ceil(R/8))`` packed bits -> ``(29, R, R)`` uint8 in {0, 1}."""
    return np.unpackbits(packed, axis=-1, count=resolution)


def _key(fingerprint: str, resolution: int) -> str:
    return f"{fingerprint[:24]}-r{resolution}-v{CACHE_VERSION}"


def _read_meta(folder: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((folder / META_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("version") == CACHE_VERSION else None


def _preprocess_one(image: Path, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    ann = read_annotation(label_path(image))
    pixels = read_gray(image)
    check_size(image, pixels, ann)
    small = resize_image(pixels, resolution)
    del pixels
    packed = np.packbits(rasterize(ann, (resolution, resolution)), axis=-1)
    return small, packed


def _build(
    root: Path, images: list[Path], resolution: int, out: Path, progress: Progress | None
) -> None:
    n = len(images)
    row_bytes = (resolution + 7) // 8
    image_store = np.lib.format.open_memmap(
        out / IMAGES_NAME, mode="w+", dtype=np.uint8, shape=(n, resolution, resolution)
    )
    mask_store = np.lib.format.open_memmap(
        out / MASKS_NAME, mode="w+", dtype=np.uint8, shape=(n, NUM_CLASSES, resolution, row_bytes)
    )
    done = 0
    if progress is not None:
        progress(done, n)
    # OpenCV and numpy release the GIL: threads decode and fill in parallel, in bounded memory.
    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, (small, packed) in enumerate(
            pool.map(lambda p: _preprocess_one(p, resolution), images)
        ):
            image_store[i] = small
            mask_store[i] = packed
            done += 1
            if progress is not None:
                progress(done, n)
    image_store.flush()
    mask_store.flush()
    del image_store, mask_store
    meta = {
        "version": CACHE_VERSION,
        "root": str(root),
        "resolution": resolution,
        "classes": list(CLASSES),
        "images": [p.relative_to(root).as_posix() for p in images],
    }
    (out / META_NAME).write_text(json.dumps(meta), encoding="utf-8")


def _prune(parent: Path, keep: Path, root: Path, resolution: int) -> None:
    """Remove older caches of the same dataset folder and resolution (best effort)."""
    for folder in parent.iterdir():
        if folder == keep or not folder.is_dir() or folder.name.startswith("."):
            continue
        meta = _read_meta(folder)
        if meta and meta.get("root") == str(root) and meta.get("resolution") == resolution:
            shutil.rmtree(folder, ignore_errors=True)


def preprocessed(root: Path, resolution: int, *, progress: Progress | None = None) -> Preprocessed:
    """The cache of ``root``'s labelled training images at ``resolution``, built if needed.

    ``progress(done, total)`` is called as images are preprocessed; without it the build
    is silent (the command line passes a progress bar: ``harness.runs.planning.Planner``).
    """
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise HarnessError(f"resolution {resolution!r}: must be a positive integer")
    root = Path(root).resolve()
    images = list_images(root, "train")
    parent = cache_dir() / "preprocessed"
    folder = parent / _key(fingerprint(root), resolution)
    meta = _read_meta(folder)
    if meta is None:
        parent.mkdir(parents=True, exist_ok=True)
        with Lock(str(folder) + ".lock"):
            meta = _read_meta(folder)  # another process may have built it while we waited
            if meta is None:
                if folder.exists():  # an unreadable leftover: replace it
                    shutil.rmtree(folder, ignore_errors=True)
                tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=parent))
                try:
                    _build(root, images, resolution, tmp, progress)
                    os.replace(tmp, folder)
                finally:
                    if tmp.exists():
                        shutil.rmtree(tmp, ignore_errors=True)
                _prune(parent, folder, root, resolution)
                meta = _read_meta(folder)
                if meta is None:  # pragma: no cover - only if the disk lies
                    raise HarnessError(f"{folder}: preprocessing cache could not be written")
    return Preprocessed(path=folder, resolution=resolution, names=tuple(meta["images"]))


def lookup(images: Sequence[Path], resolution: int) -> tuple[Preprocessed, list[int]]:
    """The cache holding ``images`` (labelled training images of one dataset) and their rows."""
    images = [Path(p) for p in images]
    if not images:
        raise HarnessError("no images given; a dataset split is empty")
    root = dataset_root(images[0])
    cache = preprocessed(root, resolution)
    index = cache.index
    rows = []
    for image in images:
        try:
            rel = image.resolve().relative_to(root).as_posix()
        except ValueError:
            rel = None
        if rel not in index:
            raise HarnessError(
                f"{image}: not a labelled training image of {root}; a split must come from "
                "one dataset's train/DCM"
            )
        rows.append(index[rel])
    return cache, rows


def worker_init_fn(worker_id: int) -> None:
    """For ``DataLoader(worker_init_fn=...)``: keep OpenCV single-threaded in each worker.

    N workers each starting a thread per core oversubscribes the CPU and slows loading.
    """
    del worker_id
    cv2.setNumThreads(0)
