"""Dataset checks: every problem of a dataset folder, each naming its file, before any training.

A broken label file found in epoch 30 of a GPU run wastes the run; a list of the first
problem only wastes one round trip per problem.  So ``harness data check`` walks the
whole folder and reports everything: images without label files and label files
without images, JSON that does not parse, labels missing, repeated or misspelled,
polygons under 3 points or outside the image, images that do not decode or whose size
differs from their label file's ``metadata``, and base names that a submission could
not tell apart.

``harness run`` runs the same checks first (``check_cached``); their per-image results
are kept in the cache folder keyed by each file's size and modification time, so a
second run over an unchanged dataset reads no pixels.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2

from harness.atomic import atomic_write_text
from harness.data.annotations import inspect_annotation
from harness.data.layout import IMAGE_DIR, LABEL_DIR, label_path, list_images
from harness.errors import HarnessError

#: Bump when a check is added or changed, so cached verdicts are recomputed.
CHECK_VERSION = 2

Progress = Callable[[int, int], None]


def _stat(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _decode(image: Path) -> tuple[Any, str | None]:
    """The decoded pixels (any depth and channels), or a problem naming the file."""
    try:
        pixels = cv2.imread(str(image), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # pragma: no cover - OpenCV returns None for most broken files
        return None, f"{image}: not a readable PNG ({exc}); replace or remove it"
    if pixels is None or pixels.size == 0:
        return None, f"{image}: not a readable PNG; replace or remove it"
    return pixels, None


def _check_labelled(image: Path) -> list[str]:
    """Problems of one training image and its label file."""
    labels = label_path(image)
    if not labels.is_file():
        problems = [f"{image}: no label file; expected {labels}"]
        _, unreadable = _decode(image)
        return problems + ([unreadable] if unreadable else [])
    ann, problems = inspect_annotation(labels)
    pixels, unreadable = _decode(image)
    if unreadable:
        return problems + [unreadable]
    if ann is not None and pixels.shape[:2] != (ann.height, ann.width):
        problems.append(
            f"{image}: image is {pixels.shape[1]}x{pixels.shape[0]} but {labels} says "
            f"{ann.width}x{ann.height} (metadata.width/height); fix the metadata or the image"
        )
    return problems


def _check_unlabelled(image: Path) -> list[str]:
    _, unreadable = _decode(image)
    return [unreadable] if unreadable else []


def _memo_path(root: Path) -> Path:
    from harness.data.sources import cache_dir

    key = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    return cache_dir() / "checks" / f"{key}.json"


def _load_memo(root: Path) -> dict[str, Any]:
    try:
        memo = json.loads(_memo_path(root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(memo, dict) or memo.get("version") != CHECK_VERSION:
        return {}
    files = memo.get("files")
    return files if isinstance(files, dict) else {}


def _save_memo(root: Path, files: dict[str, Any]) -> None:
    atomic_write_text(_memo_path(root), json.dumps({"version": CHECK_VERSION, "files": files}))


def _duplicates(images: list[Path], where: Path) -> list[str]:
    seen: dict[str, Path] = {}
    problems = []
    for image in images:
        if image.name in seen:
            problems.append(
                f"{image}: base name also used by {seen[image.name]}; a submission names "
                f"images by base name, so names under {where} must be unique"
            )
        else:
            seen[image.name] = image
    return problems


def check_dataset(
    root: Path, *, cached: bool = False, progress: Progress | None = None
) -> tuple[list[str], int]:
    """All problems found under ``root`` (not only the first) and the number of labelled images.

    Each problem is one line naming its file.  ``cached=True`` reuses the verdicts of
    files whose size and modification time are unchanged since the last cached check.
    ``progress(done, total)`` is called as images are checked.
    """
    root = Path(root)
    try:
        train = list_images(root, "train")
    except HarnessError as exc:
        return [str(exc)], 0
    test_root = root / "test" / IMAGE_DIR
    test = sorted(p for p in test_root.glob("*/*.png") if p.is_file()) if test_root.is_dir() else []

    root_key = root.resolve()
    memo = _load_memo(root_key) if cached else {}
    fresh: dict[str, Any] = {}
    jobs: list[tuple[int, Path, Callable[[Path], list[str]]]] = []
    results: list[list[str]] = [[] for _ in range(len(train) + len(test))]
    units = [(image, _check_labelled, True) for image in train]
    units += [(image, _check_unlabelled, False) for image in test]
    for i, (image, fn, labelled) in enumerate(units):
        key = image.relative_to(root).as_posix()
        stamp = [_stat(image), _stat(label_path(image)) if labelled else None]
        known = memo.get(key)
        if known is not None and known[0] == stamp:
            results[i] = list(known[1])
            fresh[key] = known
        else:
            jobs.append((i, image, fn))
            fresh[key] = [stamp, None]

    total, done = len(units), len(units) - len(jobs)
    if progress is not None:
        progress(done, total)
    if jobs:
        # Decoding releases the GIL, so threads check images in parallel.
        workers = max(1, min(8, os.cpu_count() or 1, len(jobs)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for (i, image, _), found in zip(
                jobs, pool.map(lambda job: job[2](job[1]), jobs), strict=True
            ):
                results[i] = found
                fresh[image.relative_to(root).as_posix()][1] = found
                done += 1
                if progress is not None:
                    progress(done, total)
    if cached and fresh != memo:
        _save_memo(root_key, fresh)

    problems = [p for found in results for p in found]
    expected = {label_path(image) for image in train}
    for labels in sorted((root / "train" / LABEL_DIR).rglob("*.json")):
        if labels not in expected:
            problems.append(
                f"{labels}: label file without an image; expected "
                f"{root / 'train' / IMAGE_DIR / labels.parent.name / (labels.stem + '.png')}"
            )
    problems += _duplicates(train, root / "train" / IMAGE_DIR)
    problems += _duplicates(test, test_root)
    return problems, len(train)


def check_cached(root: Path, progress: Progress | None = None) -> int:
    """The checks ``harness run`` makes before training: the labelled-image count, or an error.

    Raises ``HarnessError`` with the first problem and how many there are in all; files
    unchanged since the last check are not read again.
    """
    problems, count = check_dataset(root, cached=True, progress=progress)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise HarnessError(f"{problems[0]}{more}; `harness data check {root}` lists every problem")
    return count
