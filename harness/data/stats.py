"""Dataset statistics: the exploratory analysis that explains a leaderboard.

Why it exists: the study that inspired this project began by measuring its data (some bones
cover under 0.06 % of the image, the wrist angle varies a lot, bone and soft tissue differ
little in brightness, four carpals overlap) and those facts explain which classes a model
fails on. ``harness data stats`` gives users the same picture of their own data, and the
leaderboard's small-bone column rests on it (``small_bones``) instead of a hard-coded list.

How: one streaming pass over the labelled images. Only one image and its masks (rasterized
at the original size, exactly as the metric sees them) are in memory at a time; everything
kept across images is either a fixed-size accumulator (histograms, 29 x 29 overlap sums) or a
few numbers per image, so 800 images at 2048 x 2048 fit a laptop. Per-class work is done in
each polygon's bounding box, never on full-size arrays.

Conventions (also written into the JSON):

- **shares** are pixel counts over the image's pixel count (``H * W``);
- the **wrist angle** is the direction of the forearm's long axis, estimated from the Radius
  and Ulna masks: the dominant direction of their outlines (a structure tensor of the
  outline's chords, each bone weighted by how straight and parallel its edges are, the image
  border left out), oriented from the forearm towards the rest of the hand, in degrees from
  the image's "up", positive when the distal end leans to the image's right (clockwise).
  Outlines rather than the masks' principal axis, because a forearm cut off by the image's
  edge, with a wide distal radius, is often as wide as it is long (on the phantom: error
  about 1 degree standard deviation, against 6-9 for the principal axis);
- the **hand** (left or right) comes from the bones' layout: the thumb ray's centroid
  (finger-1..3) lies on the image's left of the middle finger's ray (finger-8..11), measured
  across the forearm's axis so a tilted wrist does not fool it, for a right hand seen
  postero-anteriorly (the usual radiograph and the phantom's convention); a left hand, or a
  mirrored image, has it on the right. Without a thumb or middle finger the Radius (thumb side)
  against the Ulna decides;
- **contrast** of a bone is the mean grey level inside it minus the mean in a ring around it
  (``RING_FRACTION`` of the image side wide) that excludes every labelled bone, i.e. the
  soft tissue (or air, at the hand's edge) next to it; also normalised, as Weber contrast
  ``(in - out) / out`` and contrast-to-noise ``(in - out) / sqrt((var_in + var_out) / 2)``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from harness.atomic import atomic_write_bytes
from harness.classes import CLASS_INDEX, CLASSES, NUM_CLASSES
from harness.data.annotations import rasterize, read_annotation
from harness.data.images import check_size, read_gray
from harness.data.layout import LABEL_DIR, group_of, label_path, list_images
from harness.errors import HarnessError

#: Width of the soft-tissue ring around each bone, as a share of the image's longer side
#: (2 px at 256, 12 px at 2048), at least ``MIN_RING`` pixels.
RING_FRACTION = 0.006
MIN_RING = 2
#: A bone's contrast in an image is only measured when its ring has at least this many pixels
#: (a carpal boxed in by its neighbours may have none).
MIN_RING_PIXELS = 8
#: The small-bone set is the ``SMALL_BONE_COUNT`` classes with the smallest mean area share:
#: a quarter of the 29 classes, rounded down (see ``small_bones``).
SMALL_BONE_COUNT = 7
#: Percentiles of grey levels reported for the images.
PERCENTILES: tuple[int, ...] = (1, 5, 25, 50, 75, 95, 99)
#: The reference study's figure for the real data: its smallest bones cover under this share.
STUDY_SMALLEST_SHARE = 0.0006
#: Width of the wrist-angle histogram's bins, in degrees.
ANGLE_BIN = 2.5

FOREARM = ("Radius", "Ulna")
THUMB = ("finger-1", "finger-2", "finger-3")
MIDDLE_FINGER = ("finger-8", "finger-9", "finger-10", "finger-11")

JSON_NAME = "stats.json"
PLOT_NAMES = ("class_areas.png", "overlap_matrix.png", "wrist_angle.png", "contrast.png")

_ANGLE_CONVENTION = (
    "degrees from the image's up of the forearm axis (dominant direction of the Radius and "
    "Ulna outlines, each weighted by its edges' coherence), pointing towards the fingers; "
    "positive = distal end leans to the image's right (clockwise)"
)
_HAND_CONVENTION = (
    "right = thumb ray (finger-1..3) on the image's left of the middle finger "
    "(finger-8..11) across the forearm axis, as a right hand looks on a postero-anterior "
    "radiograph; left = the mirror image. Radius vs Ulna decides without those fingers"
)


@dataclass(frozen=True)
class ImageStats:
    """The per-image numbers kept across the pass (a few dozen floats per image)."""

    path: str  # relative to the dataset root, POSIX
    group: str  # the ID folder
    height: int
    width: int
    wrist_angle: float | None  # degrees, see the module docstring; None without Radius/Ulna
    hand: str | None  # "right", "left", or None when the layout cannot tell
    hand_score: float | None  # thumb offset across the axis / thumb-middle distance, in [-1, 1]
    forearm_agrees: bool | None  # the Radius lies on the thumb's side (None: cannot tell)
    mean: float  # grey level
    std: float


@dataclass
class DatasetStats:
    """Everything ``compute_stats`` measured; ``to_json`` gives every number.

    Arrays are indexed in ``CLASSES`` order; ``areas[i, c]`` is class ``c``'s pixel count in
    image ``i``; the overlap accumulators are symmetric with an empty diagonal.
    """

    root: str
    split: str
    images: list[ImageStats]
    areas: np.ndarray  # (n, 29) int64 pixels
    pixels: np.ndarray  # (n,) int64, H * W per image
    overlap_share_sum: np.ndarray  # (29, 29) sum over images of overlap / (H * W)
    overlap_share_max: np.ndarray  # (29, 29)
    overlap_images: np.ndarray  # (29, 29) int64, images where the pair overlaps
    overlap_of_smaller_sum: np.ndarray  # (29, 29) sum over overlapping images of overlap / min area
    contrast: np.ndarray  # (n, 29) grey levels, NaN where not measurable
    weber: np.ndarray  # (n, 29)
    cnr: np.ndarray  # (n, 29)
    histogram: np.ndarray  # (256,) int64, every pixel
    histogram_bone: np.ndarray  # (256,) int64, pixels inside any labelled bone
    ring_width: list[int] = field(default_factory=list)  # per image, pixels

    # -- derived ------------------------------------------------------------------------------

    @property
    def n_images(self) -> int:
        return len(self.images)

    @property
    def shares(self) -> np.ndarray:
        """(n, 29) area shares of the image."""
        return self.areas / np.maximum(self.pixels, 1)[:, None]

    def class_summary(self) -> list[dict[str, Any]]:
        """Per class: area shares (over all images; absent counts as 0) and contrast."""
        shares = self.shares
        rows = []
        for c, name in enumerate(CLASSES):
            s = shares[:, c]
            present = self.areas[:, c] > 0
            rows.append(
                {
                    "class": name,
                    "images": int(present.sum()),
                    "mean_share": _f(s.mean()) if len(s) else None,
                    "median_share": _f(np.median(s)) if len(s) else None,
                    "std_share": _f(s.std()) if len(s) else None,
                    "min_share": _f(s.min()) if len(s) else None,
                    "max_share": _f(s.max()) if len(s) else None,
                    "mean_share_present": _f(s[present].mean()) if present.any() else None,
                    "mean_pixels": _f(self.areas[:, c].mean()) if len(s) else None,
                    "contrast": _summary(self.contrast[:, c]),
                    "weber": _summary(self.weber[:, c]),
                    "cnr": _summary(self.cnr[:, c]),
                }
            )
        return rows

    def overlap_matrix(self) -> np.ndarray:
        """(29, 29) mean overlapping area as a share of the image (absent counts as 0)."""
        return self.overlap_share_sum / max(self.n_images, 1)

    def overlaps(self) -> list[dict[str, Any]]:
        """Every pair of classes that overlaps in at least one image, largest mean first."""
        pairs = []
        n = max(self.n_images, 1)
        for a in range(NUM_CLASSES):
            for b in range(a + 1, NUM_CLASSES):
                count = int(self.overlap_images[a, b])
                if not count:
                    continue
                pairs.append(
                    {
                        "a": CLASSES[a],
                        "b": CLASSES[b],
                        "images": count,
                        "mean_share": _f(self.overlap_share_sum[a, b] / n),
                        "mean_share_overlapping": _f(self.overlap_share_sum[a, b] / count),
                        "max_share": _f(self.overlap_share_max[a, b]),
                        "mean_fraction_of_smaller": _f(self.overlap_of_smaller_sum[a, b] / count),
                    }
                )
        pairs.sort(key=lambda p: (-p["mean_share"], CLASS_INDEX[p["a"]], CLASS_INDEX[p["b"]]))
        return pairs

    def wrist_angles(self) -> np.ndarray:
        """The measured wrist angles (images without Radius/Ulna left out), degrees."""
        return np.array([i.wrist_angle for i in self.images if i.wrist_angle is not None])

    def hands_by_id(self) -> dict[str, dict[str, list[str]]]:
        """ID folder -> {"right": [...], "left": [...], "unknown": [...]} image file names."""
        out: dict[str, dict[str, list[str]]] = {}
        for im in self.images:
            sides = out.setdefault(im.group, {"right": [], "left": [], "unknown": []})
            sides[im.hand or "unknown"].append(Path(im.path).name)
        return dict(sorted(out.items()))

    def to_json(self) -> dict[str, Any]:
        """Every number, as plain JSON types (NaN and missing values become ``null``)."""
        angles = self.wrist_angles()
        hands = self.hands_by_id()
        sizes: dict[str, int] = {}
        for im in self.images:
            key = f"{im.width}x{im.height}"
            sizes[key] = sizes.get(key, 0) + 1
        bone_hist = self.histogram_bone
        rest_hist = self.histogram - bone_hist
        means = np.array([im.mean for im in self.images])
        stds = np.array([im.std for im in self.images])
        angle_summary = _summary(angles, percentiles=True)
        angle_summary["missing"] = self.n_images - len(angles)
        edges, counts = _angle_histogram(angles)
        angle_summary["histogram"] = {"edges": edges.tolist(), "counts": counts.tolist()}
        return {
            "schema": 1,
            "dataset": {
                "root": self.root,
                "split": self.split,
                "images": self.n_images,
                "ids": len(hands),
                "sizes": dict(sorted(sizes.items())),
            },
            "conventions": {
                "share": "pixels of the class / pixels of the image (H * W)",
                "wrist_angle": _ANGLE_CONVENTION,
                "hand": _HAND_CONVENTION,
                "contrast": (
                    "mean grey level inside the bone minus the mean in a ring around it "
                    f"({RING_FRACTION} of the image side, at least {MIN_RING} px) excluding "
                    "every labelled bone; weber = (in - out) / out; "
                    "cnr = (in - out) / sqrt((var_in + var_out) / 2)"
                ),
            },
            "classes": self.class_summary(),
            "small_bones": {
                "rule": small_bone_rule(),
                "count": SMALL_BONE_COUNT,
                "classes": small_bones(self),
            },
            "overlaps": self.overlaps(),
            "wrist_angle": angle_summary,
            "hands": {
                "convention": _HAND_CONVENTION,
                "right": sum(im.hand == "right" for im in self.images),
                "left": sum(im.hand == "left" for im in self.images),
                "unknown": sum(im.hand is None for im in self.images),
                "forearm_disagrees": sum(im.forearm_agrees is False for im in self.images),
                "ids_with_one_of_each": sum(
                    len(s["right"]) == 1 and len(s["left"]) == 1 and not s["unknown"]
                    for s in hands.values()
                ),
                "by_id": hands,
            },
            "intensity": {
                "all": _hist_summary(self.histogram),
                "bone": _hist_summary(bone_hist),
                "not_bone": _hist_summary(rest_hist),
                "image_mean": _summary(means),
                "image_std": _summary(stds),
            },
            "images": [
                {
                    "path": im.path,
                    "id": im.group,
                    "height": im.height,
                    "width": im.width,
                    "wrist_angle": _f(im.wrist_angle),
                    "hand": im.hand,
                    "hand_score": _f(im.hand_score),
                    "forearm_agrees": im.forearm_agrees,
                    "mean": _f(im.mean),
                    "std": _f(im.std),
                    "ring_width": self.ring_width[i] if i < len(self.ring_width) else None,
                    "area_pixels": [int(v) for v in self.areas[i]],
                }
                for i, im in enumerate(self.images)
            ],
        }


# -- the small-bone rule ----------------------------------------------------------------------


def small_bone_rule(count: int = SMALL_BONE_COUNT) -> str:
    """The rule ``small_bones`` applies, in words (written into the JSON and the leaderboard)."""
    return (
        f"the {count} classes with the smallest mean area share over the labelled images "
        "(images where a class is absent are left out of its mean; classes absent everywhere "
        "are never small), ties broken by class order, listed in class order"
    )


def small_bones(stats: DatasetStats, *, count: int = SMALL_BONE_COUNT) -> list[str]:
    """The small-bone set: the ``count`` classes with the smallest mean area share.

    Why a fixed count rather than a share threshold: the column then always averages the same
    number of classes, so its noise is comparable between benchmarks; it is never empty (an
    absolute threshold such as the study's 0.06 % selects nothing on the phantom, whose bones
    are drawn larger to stay learnable at 128-256 px) and it does not depend on the
    resolution or on how the phantom's sizes are tuned. Seven is the smallest quarter of the
    29 classes: enough that one class's noise does not dominate the column, few enough to be
    the small ones (the five distal phalanges plus the smallest carpals, the study's hard
    cases). Deterministic: ties go to the earlier class; the result is in class order.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    means: list[tuple[float, int]] = []
    shares = stats.shares
    for c in range(NUM_CLASSES):
        present = stats.areas[:, c] > 0
        if present.any():
            means.append((float(shares[present, c].mean()), c))
    chosen = sorted(means)[:count]
    return [CLASSES[c] for c in sorted(c for _, c in chosen)]


# -- the pass ---------------------------------------------------------------------------------


def compute_stats(
    root: Path,
    *,
    split: str = "train",
    progress: Callable[[int, int], None] | None = None,
) -> DatasetStats:
    """Measure a dataset in one streaming pass over its labelled ``split``.

    Every image of ``split`` needs its label file (``HarnessError`` naming it otherwise).
    ``progress(done, total)`` is called after each image.
    """
    root = Path(root)
    paths = list_images(root, split)
    if not (root / split / LABEL_DIR).is_dir():
        raise HarnessError(
            f"{root / split}: no {LABEL_DIR}/ folder; statistics need labelled images "
            "(the train split of the competition layout)"
        )
    n = len(paths)
    areas = np.zeros((n, NUM_CLASSES), np.int64)
    pixels = np.zeros(n, np.int64)
    contrast = np.full((n, NUM_CLASSES), np.nan)
    weber = np.full((n, NUM_CLASSES), np.nan)
    cnr = np.full((n, NUM_CLASSES), np.nan)
    ov_sum = np.zeros((NUM_CLASSES, NUM_CLASSES))
    ov_max = np.zeros((NUM_CLASSES, NUM_CLASSES))
    ov_images = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    ov_smaller = np.zeros((NUM_CLASSES, NUM_CLASSES))
    histogram = np.zeros(256, np.int64)
    histogram_bone = np.zeros(256, np.int64)
    images: list[ImageStats] = []
    rings: list[int] = []
    for i, path in enumerate(paths):
        ann = read_annotation(label_path(path))
        image = read_gray(path)
        check_size(path, image, ann)
        masks = rasterize(ann)
        boxes = [_box(poly, ann.height, ann.width) for poly in ann.polygons]
        total = ann.height * ann.width
        pixels[i] = total

        union, moments = _union_and_moments(masks, boxes, areas[i])

        _overlaps(masks, boxes, areas[i], total, ov_sum, ov_max, ov_images, ov_smaller)

        ring = max(MIN_RING, round(RING_FRACTION * max(ann.height, ann.width)))
        rings.append(ring)
        _contrast(image, masks, boxes, union, ring, contrast[i], weber[i], cnr[i])

        histogram += np.bincount(image.ravel(), minlength=256)
        histogram_bone += np.bincount(image[union.astype(bool)], minlength=256)
        theta = _forearm_axis(masks, boxes, ann.height, ann.width)
        angle, direction = _wrist_angle(theta, moments)
        hand, score, agrees = _hand(moments, direction)
        mean, std = cv2.meanStdDev(image)
        images.append(
            ImageStats(
                path=path.relative_to(root).as_posix(),
                group=group_of(path),
                height=ann.height,
                width=ann.width,
                wrist_angle=angle,
                hand=hand,
                hand_score=score,
                forearm_agrees=agrees,
                mean=float(mean[0, 0]),
                std=float(std[0, 0]),
            )
        )
        del masks, union
        if progress is not None:
            progress(i + 1, n)
    for acc in (ov_sum, ov_max, ov_images, ov_smaller):
        acc += acc.T  # filled for a < b only
    return DatasetStats(
        root=str(root),
        split=split,
        images=images,
        areas=areas,
        pixels=pixels,
        overlap_share_sum=ov_sum,
        overlap_share_max=ov_max,
        overlap_images=ov_images,
        overlap_of_smaller_sum=ov_smaller,
        contrast=contrast,
        weber=weber,
        cnr=cnr,
        histogram=histogram,
        histogram_bone=histogram_bone,
        ring_width=rings,
    )


def _union_and_moments(
    masks: np.ndarray, boxes: list[tuple[int, int, int, int]], areas: np.ndarray
) -> tuple[np.ndarray, list[dict[str, float]]]:
    """The union of all bones, built box by box (never a 29 x H x W reduction), and each
    class's image moments; fills ``areas`` (one image's row) with the pixel counts."""
    union = np.zeros(masks.shape[1:], np.uint8)
    moments: list[dict[str, float]] = []
    for c, (y0, y1, x0, x1) in enumerate(boxes):
        crop = masks[c, y0:y1, x0:x1]
        np.bitwise_or(union[y0:y1, x0:x1], crop, out=union[y0:y1, x0:x1])
        m = cv2.moments(crop, binaryImage=True)
        areas[c] = round(m["m00"])
        moments.append(_shift_moments(m, x0, y0))
    return union, moments


def _box(poly: np.ndarray, height: int, width: int) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)`` half-open bounding box of a polygon's filled pixels."""
    x0, y0 = poly.min(axis=0)
    x1, y1 = poly.max(axis=0)
    return (
        max(int(y0), 0),
        min(int(y1) + 1, height),
        max(int(x0), 0),
        min(int(x1) + 1, width),
    )


def _shift_moments(m: dict[str, float], x0: int, y0: int) -> dict[str, float]:
    """Area, centroid in image coordinates and central second moments of one mask."""
    a = m["m00"]
    if a <= 0:
        return {"a": 0.0, "x": math.nan, "y": math.nan, "xx": 0.0, "xy": 0.0, "yy": 0.0}
    return {
        "a": a,
        "x": m["m10"] / a + x0,
        "y": m["m01"] / a + y0,
        "xx": m["mu20"],
        "xy": m["mu11"],
        "yy": m["mu02"],
    }


def _overlaps(
    masks: np.ndarray,
    boxes: Sequence[tuple[int, int, int, int]],
    areas: np.ndarray,
    total: int,
    ov_sum: np.ndarray,
    ov_max: np.ndarray,
    ov_images: np.ndarray,
    ov_smaller: np.ndarray,
) -> None:
    """Add one image's pairwise overlaps (upper triangle) to the accumulators."""
    for a in range(NUM_CLASSES):
        ay0, ay1, ax0, ax1 = boxes[a]
        if not areas[a]:
            continue
        for b in range(a + 1, NUM_CLASSES):
            by0, by1, bx0, bx1 = boxes[b]
            y0, y1, x0, x1 = max(ay0, by0), min(ay1, by1), max(ax0, bx0), min(ax1, bx1)
            if y0 >= y1 or x0 >= x1 or not areas[b]:
                continue
            both = cv2.countNonZero(cv2.bitwise_and(masks[a, y0:y1, x0:x1], masks[b, y0:y1, x0:x1]))
            if not both:
                continue
            share = both / total
            ov_sum[a, b] += share
            ov_max[a, b] = max(ov_max[a, b], share)
            ov_images[a, b] += 1
            ov_smaller[a, b] += both / min(areas[a], areas[b])


def _contrast(
    image: np.ndarray,
    masks: np.ndarray,
    boxes: Sequence[tuple[int, int, int, int]],
    union: np.ndarray,
    ring: int,
    contrast: np.ndarray,
    weber: np.ndarray,
    cnr: np.ndarray,
) -> None:
    """Each bone against the non-bone ring around it; writes NaN where not measurable."""
    height, width = image.shape
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ring + 1, 2 * ring + 1))
    for c, (y0, y1, x0, x1) in enumerate(boxes):
        y0, y1 = max(y0 - ring, 0), min(y1 + ring, height)
        x0, x1 = max(x0 - ring, 0), min(x1 + ring, width)
        inside = masks[c, y0:y1, x0:x1]
        if not inside.any():
            continue
        grown = cv2.dilate(inside, kernel)
        around = (grown > 0) & (union[y0:y1, x0:x1] == 0)
        if np.count_nonzero(around) < MIN_RING_PIXELS:
            continue
        pixels = image[y0:y1, x0:x1]
        bone = pixels[inside.astype(bool)].astype(np.float64)
        tissue = pixels[around].astype(np.float64)
        m_in, m_out = bone.mean(), tissue.mean()
        contrast[c] = m_in - m_out
        if m_out > 0:
            weber[c] = (m_in - m_out) / m_out
        spread = math.sqrt((bone.var() + tissue.var()) / 2)
        if spread > 0:
            cnr[c] = (m_in - m_out) / spread


def _pooled(moments: Sequence[dict[str, float]], names: Sequence[str]) -> dict[str, float] | None:
    """Pooled area, centroid and within-bone second moments of some classes (None if empty)."""
    parts = [moments[CLASS_INDEX[n]] for n in names]
    parts = [p for p in parts if p["a"] > 0]
    if not parts:
        return None
    a = sum(p["a"] for p in parts)
    return {
        "a": a,
        "x": sum(p["a"] * p["x"] for p in parts) / a,
        "y": sum(p["a"] * p["y"] for p in parts) / a,
        "xx": sum(p["xx"] for p in parts),
        "xy": sum(p["xy"] for p in parts),
        "yy": sum(p["yy"] for p in parts),
    }


def _edge_vote(
    mask: np.ndarray, y0: int, x0: int, height: int, width: int, step: int
) -> np.ndarray | None:
    """One bone's axis from its outline: ``c * (cos 2t, sin 2t)``, ``t`` the dominant tangent.

    The outline's chords over ``step`` contour points are summed as a structure tensor
    (unit-trace), ``c`` is its coherence (0 for a disc, 1 for straight parallel edges). Pieces
    of the outline that run along the image border are cuts, not bone edges, and are left out.
    """
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    tensor = np.zeros((2, 2))
    for contour in contours:
        p = contour[:, 0, :].astype(np.float64) + (x0, y0)
        if len(p) <= step:
            continue
        q = np.roll(p, -step, axis=0)
        on_border = (
            ((p[:, 0] <= 0) & (q[:, 0] <= 0))
            | ((p[:, 0] >= width - 1) & (q[:, 0] >= width - 1))
            | ((p[:, 1] <= 0) & (q[:, 1] <= 0))
            | ((p[:, 1] >= height - 1) & (q[:, 1] >= height - 1))
        )
        chords = (q - p)[~on_border]
        lengths = np.linalg.norm(chords, axis=1, keepdims=True)
        chords = chords[lengths[:, 0] > 0] / lengths[lengths[:, 0] > 0]
        tensor += chords.T @ chords
    trace = tensor[0, 0] + tensor[1, 1]
    if trace <= 0:
        return None
    return np.array([tensor[0, 0] - tensor[1, 1], 2 * tensor[0, 1]]) / trace


def _forearm_axis(
    masks: np.ndarray, boxes: Sequence[tuple[int, int, int, int]], height: int, width: int
) -> float | None:
    """The forearm's axis angle from the image's x axis (radians, mod pi), or None.

    Each of Radius and Ulna votes with its outline's dominant direction (``_edge_vote``),
    weighted by the square of its coherence: a bone whose visible part is a stubby,
    flared head (low coherence) says little, a long shaft a lot. Outlines, unlike area
    moments, are not fooled by a bone cut off by the image's edge or by a wide distal end
    (measured against the phantom's drawn angles, 140 hands at 256 and 1024 px, whose
    forearm is cut short: errors of 1.0 degree standard deviation, at most 4.3, against 6-9
    and up to 42 for the masks' principal axis).
    """
    step = max(3, round(max(height, width) / 256))
    total = np.zeros(2)
    for name in FOREARM:
        c = CLASS_INDEX[name]
        y0, y1, x0, x1 = boxes[c]
        y0, y1, x0, x1 = max(y0 - 1, 0), min(y1 + 1, height), max(x0 - 1, 0), min(x1 + 1, width)
        vote = _edge_vote(np.ascontiguousarray(masks[c, y0:y1, x0:x1]), y0, x0, height, width, step)
        if vote is not None:
            total += vote * float(vote @ vote)
    if not total.any():
        return None
    return 0.5 * math.atan2(total[1], total[0])


def _wrist_angle(
    theta: float | None, moments: Sequence[dict[str, float]]
) -> tuple[float | None, tuple[float, float] | None]:
    """Orient the forearm axis towards the rest of the hand; signed degrees from up."""
    fore = _pooled(moments, FOREARM)
    if theta is None or fore is None:
        return None, None
    dx, dy = math.cos(theta), math.sin(theta)
    rest = _pooled(moments, [n for n in CLASSES if n not in FOREARM])
    if rest is not None:
        towards = (rest["x"] - fore["x"]) * dx + (rest["y"] - fore["y"]) * dy
        flip = towards < 0
    else:  # no other bone: assume the fingers point up the image
        flip = dy > 0
    if flip:
        dx, dy = -dx, -dy
    return math.degrees(math.atan2(dx, -dy)), (dx, dy)


def _hand(
    moments: Sequence[dict[str, float]], direction: tuple[float, float] | None
) -> tuple[str | None, float | None, bool | None]:
    """Left or right from the layout; the thumb's normalised offset; whether the Radius agrees."""
    dx, dy = direction if direction is not None else (0.0, -1.0)
    nx, ny = -dy, dx  # the image's right when the hand points up

    def across(a: dict[str, float] | None, b: dict[str, float] | None) -> float | None:
        if a is None or b is None:
            return None
        vx, vy = a["x"] - b["x"], a["y"] - b["y"]
        length = math.hypot(vx, vy)
        return (vx * nx + vy * ny) / length if length > 0 else None

    thumb = across(_pooled(moments, THUMB), _pooled(moments, MIDDLE_FINGER))
    radius = across(_pooled(moments, ("Radius",)), _pooled(moments, ("Ulna",)))
    score = thumb if thumb is not None and thumb != 0 else radius
    if score is None or score == 0:
        return None, thumb, None
    hand = "right" if score < 0 else "left"
    agrees = None if thumb is None or radius is None or radius == 0 else (radius < 0) == (thumb < 0)
    return hand, thumb, agrees


# -- numbers ----------------------------------------------------------------------------------


def _f(value: Any) -> float | None:
    """A JSON-safe float: NaN/inf and None become None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _summary(values: np.ndarray, *, percentiles: bool = False) -> dict[str, Any]:
    """Mean, std, min, max, median and count of the finite values (None when there are none)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    out: dict[str, Any] = {"count": int(v.size)}
    for key, fn in (("mean", np.mean), ("std", np.std), ("min", np.min), ("max", np.max)):
        out[key] = _f(fn(v)) if v.size else None
    out["median"] = _f(np.median(v)) if v.size else None
    if percentiles:
        out["percentiles"] = {
            f"p{p}": (_f(np.percentile(v, p)) if v.size else None) for p in PERCENTILES
        }
    return out


def _hist_summary(hist: np.ndarray) -> dict[str, Any]:
    """Mean, std and percentiles (the smallest grey level reaching each) of a 256-bin histogram."""
    total = int(hist.sum())
    levels = np.arange(256, dtype=np.float64)
    out: dict[str, Any] = {"pixels": total}
    if total == 0:
        out.update(mean=None, std=None, percentiles={f"p{p}": None for p in PERCENTILES})
    else:
        mean = float((hist * levels).sum() / total)
        var = float((hist * (levels - mean) ** 2).sum() / total)
        cum = np.cumsum(hist)
        out.update(
            mean=mean,
            std=math.sqrt(var),
            percentiles={
                f"p{p}": int(np.searchsorted(cum, p / 100 * total, side="left"))
                for p in PERCENTILES
            },
        )
    out["histogram"] = [int(v) for v in hist]
    return out


def _angle_histogram(angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts in ``ANGLE_BIN``-degree bins aligned on multiples of the bin, covering the data."""
    if angles.size == 0:
        edges = np.array([-ANGLE_BIN, 0.0, ANGLE_BIN])
    else:
        lo = math.floor(angles.min() / ANGLE_BIN) * ANGLE_BIN
        hi = max(math.floor(angles.max() / ANGLE_BIN) * ANGLE_BIN + ANGLE_BIN, lo + ANGLE_BIN)
        edges = np.arange(lo, hi + ANGLE_BIN / 2, ANGLE_BIN)
    counts, _ = np.histogram(angles, bins=edges)
    return edges, counts


# -- report -----------------------------------------------------------------------------------


def write_report(stats: DatasetStats, out_dir: Path) -> list[Path]:
    """Write ``stats.json`` and the four plots into ``out_dir``; return their paths.

    Every file is written atomically (a temporary file renamed into place); the same
    statistics give the same bytes.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = json.dumps(stats.to_json(), indent=1, allow_nan=False) + "\n"
    json_path = out_dir / JSON_NAME
    atomic_write_bytes(json_path, doc.encode())
    written = [json_path]
    small = set(small_bones(stats))
    for name, draw in zip(
        PLOT_NAMES, (_plot_areas, _plot_overlaps, _plot_angles, _plot_contrast), strict=True
    ):
        fig = draw(stats, small)
        path = out_dir / name
        atomic_write_bytes(path, _png(fig))
        written.append(path)
    return written


def _png(fig: Figure) -> bytes:
    """Render a figure with the Agg canvas to PNG bytes without metadata (deterministic)."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[:, :, :3]
    ok, png = cv2.imencode(".png", rgb[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise OSError("could not encode a statistics plot")
    return png.tobytes()


_BLUE, _ORANGE, _GREY = "#4477aa", "#ee7733", "#888888"


def _class_axis(ax: Any) -> None:
    ax.set_xticks(range(NUM_CLASSES))
    ax.set_xticklabels(CLASSES, rotation=60, ha="right", fontsize=8)
    ax.set_xlim(-0.7, NUM_CLASSES - 0.3)


def _plot_areas(stats: DatasetStats, small: set[str]) -> Figure:
    fig = Figure(figsize=(11, 4.8), dpi=100, facecolor="white")
    ax = fig.add_subplot()
    shares = stats.shares * 100
    x = np.arange(NUM_CLASSES)
    if stats.n_images:
        mean, lo, hi = shares.mean(axis=0), shares.min(axis=0), shares.max(axis=0)
    else:
        mean = lo = hi = np.zeros(NUM_CLASSES)
    colors = [_ORANGE if c in small else _BLUE for c in CLASSES]
    shown = np.where(mean > 0, mean, np.nan)
    ax.bar(x, shown, color=colors, width=0.7, zorder=2)
    ax.errorbar(
        x,
        shown,
        yerr=[np.clip(mean - lo, 0, None), np.clip(hi - mean, 0, None)],
        fmt="none",
        ecolor="black",
        elinewidth=0.8,
        capsize=2,
        zorder=3,
    )
    ax.axhline(
        STUDY_SMALLEST_SHARE * 100,
        color=_GREY,
        linestyle="--",
        linewidth=1,
        zorder=1,
        label="0.06 %: the real data's smallest bones are below this (reference study)",
    )
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.set_yscale("log")
    positive = shares[shares > 0]
    if positive.size:
        ax.set_ylim(min(positive.min(), STUDY_SMALLEST_SHARE * 100) / 1.6, positive.max() * 1.6)
    ax.set_ylabel("area, % of the image (log)")
    _class_axis(ax)
    ax.grid(axis="y", which="both", color="#dddddd", linewidth=0.5, zorder=0)
    ax.set_title(
        f"Class areas over {stats.n_images} images: bar = mean, whiskers = min–max; "
        f"orange = small-bone set ({SMALL_BONE_COUNT} smallest by mean)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def _plot_overlaps(stats: DatasetStats, small: set[str]) -> Figure:
    fig = Figure(figsize=(9.5, 8.5), dpi=100, facecolor="white")
    ax = fig.add_subplot()
    matrix = stats.overlap_matrix() * 100
    positive = matrix[matrix > 0]
    shown = np.ma.masked_less_equal(matrix, 0)
    if positive.size:
        lo, hi = positive.min(), positive.max()
        norm = LogNorm(vmin=lo, vmax=hi if hi > lo else lo * 10)
        im = ax.imshow(shown, cmap="viridis", norm=norm, interpolation="nearest")
        bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
        bar.set_label("mean overlapping area, % of the image (log)")
    else:
        norm = None
        ax.imshow(np.zeros_like(matrix), cmap="Greys", vmin=0, vmax=1)
    for a in range(NUM_CLASSES):
        for b in range(NUM_CLASSES):
            if stats.overlap_images[a, b]:
                frac = stats.overlap_of_smaller_sum[a, b] / stats.overlap_images[a, b]
                dark = norm is not None and float(norm(matrix[a, b])) < 0.6
                ax.text(
                    b,
                    a,
                    f"{frac * 100:.0f}",
                    ha="center",
                    va="center",
                    fontsize=6.5,
                    color="white" if dark else "black",
                )
    ax.set_xticks(range(NUM_CLASSES))
    ax.set_yticks(range(NUM_CLASSES))
    ax.set_xticklabels(CLASSES, rotation=90, fontsize=7)
    ax.set_yticklabels(CLASSES, fontsize=7)
    ax.set_xticks(np.arange(-0.5, NUM_CLASSES), minor=True)
    ax.set_yticks(np.arange(-0.5, NUM_CLASSES), minor=True)
    ax.grid(which="minor", color="#eeeeee", linewidth=0.5)
    ax.tick_params(which="minor", length=0)
    pairs = len(stats.overlaps())
    ax.set_title(
        f"Overlapping classes ({pairs} pairs over {stats.n_images} images)\n"
        "colour: mean overlapping area; number: overlap as % of the smaller bone",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def _plot_angles(stats: DatasetStats, small: set[str]) -> Figure:
    fig = Figure(figsize=(7.5, 4.2), dpi=100, facecolor="white")
    ax = fig.add_subplot()
    angles = stats.wrist_angles()
    edges, _ = _angle_histogram(angles)
    by_hand = {
        side: np.array(
            [
                im.wrist_angle
                for im in stats.images
                if im.hand == side and im.wrist_angle is not None
            ]
        )
        for side in ("right", "left", None)
    }
    data = [v for v in by_hand.values()]
    labels = ["right hand", "left hand", "hand unknown"]
    keep = [i for i, v in enumerate(data) if v.size]
    if keep:
        ax.hist(
            [data[i] for i in keep],
            bins=edges,
            stacked=True,
            color=[(_BLUE, _ORANGE, _GREY)[i] for i in keep],
            label=[labels[i] for i in keep],
            edgecolor="white",
            linewidth=0.5,
        )
        ax.legend(fontsize=8, frameon=False)
    if angles.size:
        ax.axvline(angles.mean(), color="black", linewidth=1)
        title = (
            f"Wrist angle over {angles.size} images: mean {angles.mean():+.1f}°, "
            f"std {angles.std():.1f}°, range {angles.min():+.1f}° to {angles.max():+.1f}°"
        )
    else:
        title = "Wrist angle: no image has Radius and Ulna labels"
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("forearm axis, degrees from vertical (+ = fingers lean to the image's right)")
    ax.set_ylabel("images")
    ax.grid(axis="y", color="#dddddd", linewidth=0.5)
    ax.set_axisbelow(True)
    fig.tight_layout()
    return fig


def _plot_contrast(stats: DatasetStats, small: set[str]) -> Figure:
    fig = Figure(figsize=(11, 6.2), dpi=100, facecolor="white")
    top, bottom = fig.subplots(2, 1, sharex=True)
    x = np.arange(NUM_CLASSES)
    colors = [_ORANGE if c in small else _BLUE for c in CLASSES]
    for ax, values, label in (
        (top, stats.contrast, "bone − surrounding tissue,\ngrey levels"),
        (bottom, stats.cnr, "contrast-to-noise ratio"),
    ):
        finite = np.isfinite(values)
        counts = finite.sum(axis=0)
        with np.errstate(invalid="ignore"):
            mean = np.where(counts > 0, np.nansum(values, axis=0) / np.maximum(counts, 1), np.nan)
            std = np.array(
                [np.std(values[finite[:, c], c]) if counts[c] else np.nan for c in range(len(x))]
            )
        ax.bar(
            x,
            mean,
            yerr=std,
            color=colors,
            width=0.7,
            capsize=2,
            error_kw={"elinewidth": 0.8},
            zorder=2,
        )
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_ylabel(label, fontsize=9)
        ax.grid(axis="y", color="#dddddd", linewidth=0.5, zorder=0)
    _class_axis(bottom)
    ring = sorted(set(stats.ring_width))
    ring_text = "/".join(str(r) for r in ring) if ring else "—"
    top.set_title(
        "Bone vs surrounding soft tissue per class: mean ± std over images "
        f"(ring {ring_text} px wide, other bones excluded); orange = small-bone set",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
