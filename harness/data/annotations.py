"""Reading and rasterizing the competition's JSON label files.

Every label file is checked here, once, so that training, evaluation and
``harness data check`` all reject the same broken files with the same one-line
message naming the file.  Masks are drawn exactly as ``cv2.fillPoly`` draws the
polygons (the competition's own convention); at another size the points are
scaled in fixed point so the mask stays faithful to sub-pixel accuracy instead of
snapping every vertex to the coarse grid.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from harness.classes import CLASS_INDEX, CLASSES, NUM_CLASSES
from harness.errors import HarnessError

#: Fractional bits for scaled vertices (cv2.fillPoly's ``shift``, at most 16); fewer for huge sizes.
SHIFT = 16


@dataclass(frozen=True, eq=False)
class Annotation:
    """One label file: the image size and one polygon per class, in ``CLASSES`` order.

    ``eq=False`` because the polygons are arrays (element-wise ``==`` has no single truth value).
    """

    path: Path
    height: int
    width: int
    polygons: tuple[np.ndarray, ...]  # NUM_CLASSES entries, each int32 (K, 2) x, y points


def _class_hint(label: str) -> str:
    lowered = {name.lower(): name for name in CLASSES}
    near = [lowered[n] for n in difflib.get_close_matches(label.lower(), lowered, n=3, cutoff=0.6)]
    did_you_mean = f"did you mean {', '.join(repr(n) for n in near)}? " if near else ""
    others = ", ".join(CLASSES[19:])
    return f"{did_you_mean}valid labels (case-sensitive) are finger-1 … finger-19, {others}"


def _size_field(path: Path, metadata: dict[str, Any], key: str) -> int:
    if key not in metadata:
        raise HarnessError(f"{path}: missing metadata.{key}; add the image's {key} in pixels")
    value = metadata[key]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise HarnessError(
            f"{path}: metadata.{key} is {value!r}; it must be the image's {key} "
            "as a positive integer"
        )
    return value


def _polygon(
    path: Path, index: int, label: str, points: Any, height: int | None, width: int | None
) -> np.ndarray:
    """The polygon as int32 ``(K, 2)``; bounds are checked only when the image size is known."""
    where = f"{path}: annotations[{index}] (label {label!r})"
    try:
        arr = np.asarray(points)
    except (ValueError, TypeError):
        arr = None
    if arr is None or arr.ndim != 2 or arr.shape[1] != 2 or arr.dtype.kind not in "iuf":
        raise HarnessError(f"{where}: 'points' must be a list of [x, y] number pairs")
    if arr.shape[0] < 3:
        raise HarnessError(
            f"{where}: polygon has {arr.shape[0]} point(s); a polygon needs at least 3"
        )
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise HarnessError(f"{where}: 'points' contains a non-finite coordinate")
        arr = np.rint(arr)
    if height is not None and width is not None:
        outside = (arr[:, 0] < 0) | (arr[:, 0] >= width) | (arr[:, 1] < 0) | (arr[:, 1] >= height)
        if outside.any():
            k = int(np.flatnonzero(outside)[0])
            x, y = (int(v) for v in arr[k])
            more = int(outside.sum()) - 1
            others = f" and {more} more point(s)" if more else ""
            raise HarnessError(
                f"{where}: point {k} ({x}, {y}){others} lies outside the {width}x{height} image "
                f"(need 0 <= x < {width}, 0 <= y < {height}); fix the point or "
                "metadata.width/height"
            )
    elif np.abs(arr).max() >= 2**31:
        raise HarnessError(f"{where}: 'points' has a coordinate too large for an image")
    poly = np.ascontiguousarray(arr, dtype=np.int32)
    poly.setflags(write=False)
    return poly


def _load_json(path: Path) -> Any:
    try:
        with path.open("rb") as f:
            return json.load(f)
    except FileNotFoundError:
        raise HarnessError(
            f"{path}: label file not found; every training image needs one"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise HarnessError(
            f"{path}: not a readable JSON label file ({reason}); re-export or fix it"
        ) from None


def inspect_annotation(path: Path) -> tuple[Annotation | None, list[str]]:
    """Parse one label file and collect *every* problem in it, each a line naming the file.

    Returns the annotation (``None`` when anything is wrong) and the problems, in file order.
    ``harness data check`` reports them all; ``read_annotation`` raises the first.
    """
    path = Path(path)
    try:
        doc = _load_json(path)
    except HarnessError as exc:
        return None, [str(exc)]
    if not isinstance(doc, dict):
        return None, [f"{path}: the top level must be a JSON object with 'annotations'"]
    problems: list[str] = []
    height: int | None = None
    width: int | None = None
    metadata = doc.get("metadata")
    if not isinstance(metadata, dict):
        problems.append(
            f"{path}: missing 'metadata' object; add metadata.height and metadata.width"
        )
    else:
        try:
            height = _size_field(path, metadata, "height")
        except HarnessError as exc:
            problems.append(str(exc))
        try:
            width = _size_field(path, metadata, "width")
        except HarnessError as exc:
            problems.append(str(exc))
    annotations = doc.get("annotations")
    if not isinstance(annotations, list):
        problems.append(
            f"{path}: missing 'annotations' list; add one entry per class with 'label' and 'points'"
        )
        return None, problems

    polygons: list[np.ndarray | None] = [None] * NUM_CLASSES
    seen_at: dict[str, int] = {}
    for i, entry in enumerate(annotations):
        if not isinstance(entry, dict):
            problems.append(f"{path}: annotations[{i}] must be an object with 'label' and 'points'")
            continue
        label = entry.get("label")
        if not isinstance(label, str):
            problems.append(f"{path}: annotations[{i}] has no string 'label'; name its class")
            continue
        if label not in CLASS_INDEX:
            problems.append(
                f"{path}: annotations[{i}] has unknown label {label!r}; {_class_hint(label)}"
            )
            continue
        if label in seen_at:
            problems.append(
                f"{path}: label {label!r} appears twice (annotations[{seen_at[label]}] and "
                f"annotations[{i}]); keep one polygon per class"
            )
            continue
        seen_at[label] = i
        if "points" not in entry:
            problems.append(f"{path}: annotations[{i}] (label {label!r}) has no 'points'")
            continue
        try:
            polygons[CLASS_INDEX[label]] = _polygon(path, i, label, entry["points"], height, width)
        except HarnessError as exc:
            problems.append(str(exc))

    missing = [name for name in CLASSES if name not in seen_at]
    if missing:
        problems.append(
            f"{path}: missing label(s) {', '.join(missing)}; every file needs all "
            f"{NUM_CLASSES} classes"
        )
    if problems or height is None or width is None:
        return None, problems
    return Annotation(path=path, height=height, width=width, polygons=tuple(polygons)), []


def read_annotation(path: Path) -> Annotation:
    """Parse and validate one label file; a problem is a ``HarnessError`` naming the file.

    The message is the file's first problem; ``inspect_annotation`` lists them all.
    """
    ann, problems = inspect_annotation(path)
    if ann is None:
        first = problems[0]
        if len(problems) > 1:
            first += f" (and {len(problems) - 1} more problem(s) in this file)"
        raise HarnessError(first)
    return ann


def rasterize(ann: Annotation, size: tuple[int, int] | None = None) -> np.ndarray:
    """Fill each class's polygon into its own channel: uint8 ``(NUM_CLASSES, H, W)`` in {0, 1}.

    ``size=(H, W)`` draws at another resolution.  Vertices are mapped with the pixel-centre
    convention (``x' = (x + 0.5) * W'/W - 0.5``, the same as bilinear ``align_corners=False``)
    and passed to ``cv2.fillPoly`` in fixed point, so the result approximates the
    full-resolution mask resized with nearest-neighbour sampling.
    """
    height, width = (ann.height, ann.width) if size is None else size
    height, width = int(height), int(width)
    if height <= 0 or width <= 0:
        raise ValueError(f"size must be positive, got {(height, width)}")
    out = np.zeros((len(ann.polygons), height, width), dtype=np.uint8)
    if (height, width) == (ann.height, ann.width):
        for channel, poly in zip(out, ann.polygons, strict=True):
            cv2.fillPoly(channel, [poly], 1)
        return out
    scale = np.array([width / ann.width, height / ann.height], dtype=np.float64)
    shift = SHIFT
    while shift > 0 and (max(height, width) + 1) << shift >= 1 << 30:  # keep int32 headroom
        shift -= 1
    for channel, poly in zip(out, ann.polygons, strict=True):
        fixed = np.rint(((poly + 0.5) * scale - 0.5) * (1 << shift)).astype(np.int32)
        cv2.fillPoly(channel, [fixed], 1, shift=shift)
    return out
