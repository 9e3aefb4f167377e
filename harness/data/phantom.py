"""A synthetic hand X-ray phantom written in the competition's dataset layout.

Why it exists: tests, smoke checks and the default benchmark need a dataset that anyone can
generate offline in seconds, with no licence or download, yet that keeps what makes the real
task hard, so that a method that wins here is not winning by accident:

- 29 bones placed anatomically (5 rays, 8 carpals in two rows, radius and ulna entering from
  the bottom edge), some of them very small (distal phalanges, Trapezoid, Pisiform);
- overlapping carpals (Pisiform over Triquetrum, Trapezium over Trapezoid), so the masks are
  multi-label exactly as in the real labels;
- per-hand variation (wrist angle, finger spread and flexion, scale, translation) and per-person
  proportions shared by the two hands of one ID folder (the validation split groups by folder);
- left hands as mirror images of right hands;
- X-ray-like pixels: dark background, smooth soft-tissue silhouette, low bone contrast with a
  brighter cortical rim, overlaps adding up, uneven exposure, noise and a light blur.

It is written in the same layout as the real data (see ``harness.data.layout``) so that one loader,
one checker and one evaluator serve both. Generation is deterministic (same arguments, same
bytes) and atomic (a temp folder renamed into place), and it never overwrites data.

Geometry is built in normalised coordinates ``(u, v)`` in ``[0, 1]``, ``v`` pointing down, that
map to pixels as ``x = u * (size - 1)``; the right hand is seen as on a PA radiograph (thumb on
the image's left). In each ID folder the first image (smaller number) is the right hand and the
second the left hand.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from harness.classes import CLASSES
from harness.data.layout import IMAGE_DIR, LABEL_DIR
from harness.errors import HarnessError

#: The smallest bone's share of the image area stays within this range (checked by the tests):
#: small enough to be hard, large enough to stay learnable at 128-256 px on a CPU.
SMALLEST_BONE_FRACTION: tuple[float, float] = (0.001, 0.002)

_SUBPIXEL_BITS = 4  # cv2 drawing with 1/16-pixel precision
_WRIST = np.array([0.5, 0.74])  # pivot of the wrist angle, in the model's coordinates
_WRIST_IN_IMAGE = np.array([0.5, 0.77])  # where the pivot lands in the image
_HAND_SCALE = 1.12  # model -> image, before the per-hand scale


@dataclass(frozen=True)
class _LongBone:
    """A tubular bone's outline parameters: length and widths at base, shaft and head."""

    name: str
    length: float
    w_base: float
    w_shaft: float
    w_head: float
    cap_base: float = 0.35  # depth of the rounded end, as a share of the half-width
    cap_head: float = 0.8


# The five rays of a right hand: metacarpal base (on the distal carpal row), direction (degrees
# from "up", positive towards the little finger), then the bones from proximal to distal.
# The competition numbers each ray from the fingertip: finger-1 is the thumb's distal
# phalanx and finger-3 its metacarpal, finger-4 the index tip ... finger-19 the little
# finger's metacarpal (the study's smallest classes, finger-1 and finger-4, are tips).
_RAYS: tuple[tuple[tuple[float, float], float, tuple[_LongBone, ...]], ...] = (
    (
        (0.368, 0.618),
        -42.0,
        (
            _LongBone("finger-3", 0.130, 0.040, 0.026, 0.036),
            _LongBone("finger-2", 0.095, 0.036, 0.025, 0.031),
            _LongBone("finger-1", 0.068, 0.031, 0.021, 0.025, cap_head=1.0),
        ),
    ),
    (
        (0.425, 0.600),
        -9.0,
        (
            _LongBone("finger-7", 0.190, 0.036, 0.024, 0.036, cap_head=0.9),
            _LongBone("finger-6", 0.115, 0.034, 0.024, 0.029),
            _LongBone("finger-5", 0.072, 0.029, 0.021, 0.026),
            _LongBone("finger-4", 0.058, 0.026, 0.018, 0.023, cap_head=1.0),
        ),
    ),
    (
        (0.488, 0.598),
        -1.5,
        (
            _LongBone("finger-11", 0.190, 0.037, 0.025, 0.037, cap_head=0.9),
            _LongBone("finger-10", 0.125, 0.035, 0.025, 0.030),
            _LongBone("finger-9", 0.082, 0.030, 0.022, 0.027),
            _LongBone("finger-8", 0.060, 0.027, 0.019, 0.024, cap_head=1.0),
        ),
    ),
    (
        (0.546, 0.606),
        6.0,
        (
            _LongBone("finger-15", 0.172, 0.034, 0.023, 0.034, cap_head=0.9),
            _LongBone("finger-14", 0.115, 0.033, 0.024, 0.029),
            _LongBone("finger-13", 0.076, 0.029, 0.021, 0.026),
            _LongBone("finger-12", 0.057, 0.026, 0.018, 0.023, cap_head=1.0),
        ),
    ),
    (
        (0.598, 0.622),
        14.0,
        (
            _LongBone("finger-19", 0.150, 0.033, 0.022, 0.032, cap_head=0.9),
            _LongBone("finger-18", 0.092, 0.030, 0.021, 0.026),
            _LongBone("finger-17", 0.058, 0.026, 0.019, 0.023),
            _LongBone("finger-16", 0.050, 0.025, 0.017, 0.022, cap_head=1.0),
        ),
    ),
)

# Carpals: centre (u, v), semi-axes (a, b), angle in degrees, superellipse power (2 = ellipse,
# higher = boxier) and a few harmonics (k, amplitude, phase) that give each bone its identity.
_CARPALS: dict[str, tuple[tuple[float, float], tuple[float, float], float, float, tuple]] = {
    "Trapezium": ((0.383, 0.655), (0.030, 0.025), -30.0, 2.4, ((3, 0.06, 0.3), (2, 0.05, 1.0))),
    "Trapezoid": ((0.418, 0.640), (0.022, 0.020), -10.0, 2.6, ((3, 0.05, 1.2), (2, 0.04, 0.2))),
    "Capitate": ((0.482, 0.656), (0.028, 0.042), 0.0, 2.6, ((2, 0.06, 0.8), (3, 0.04, 2.0))),
    "Hamate": ((0.555, 0.657), (0.031, 0.038), 12.0, 2.8, ((3, 0.07, 0.4), (1, 0.04, 2.6))),
    "Scaphoid": ((0.408, 0.715), (0.044, 0.024), -28.0, 2.0, ((2, 0.08, 0.5), (3, 0.04, 1.7))),
    "Lunate": ((0.474, 0.724), (0.029, 0.026), 0.0, 2.2, ((3, 0.06, 1.1), (2, 0.05, 2.3))),
    "Triquetrum": ((0.535, 0.711), (0.029, 0.023), 28.0, 2.2, ((2, 0.06, 0.9), (3, 0.05, 0.1))),
    "Pisiform": ((0.566, 0.729), (0.020, 0.018), 10.0, 2.0, ((2, 0.05, 1.5),)),
}

# Forearm: base (u, v) below the image, direction, and the bone's widths; the distal end is
# tilted (the radial styloid reaches further on the thumb side).
_FOREARM: tuple[tuple[tuple[float, float], float, _LongBone, float], ...] = (
    ((0.425, 1.30), 0.0, _LongBone("Radius", 0.520, 0.085, 0.070, 0.135, 0.3, 0.28), 0.18),
    ((0.562, 1.30), 0.5, _LongBone("Ulna", 0.480, 0.050, 0.040, 0.052, 0.3, 0.7), 0.0),
)


# ---------------------------------------------------------------------------------------------
# geometry


def _unit(angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Axis direction (pointing away from the wrist) and its right-hand normal for an angle."""
    a = math.radians(angle_deg)
    return np.array([math.sin(a), -math.cos(a)]), np.array([math.cos(a), math.sin(a)])


def _long_bone_outline(
    base: np.ndarray, angle: float, bone: _LongBone, tilt: float = 0.0
) -> np.ndarray:
    """A capsule-like outline with flared base and head (~32 points); ``tilt`` slants the head."""
    d, n = _unit(angle)
    wb, ws, wh = bone.w_base, bone.w_shaft, bone.w_head
    cb, ch = bone.cap_base * wb / 2, bone.cap_head * wh / 2
    s0, s1 = cb, bone.length - ch
    t = np.linspace(0.0, 1.0, 9)
    w = (
        ws
        + (wb - ws) * np.clip(1 - t / 0.32, 0, None) ** 2
        + (wh - ws) * np.clip(1 - (1 - t) / 0.32, 0, None) ** 2
    )
    s = s0 + t * (s1 - s0)
    phi_head = np.linspace(0.0, np.pi, 9)[1:-1]
    phi_base = np.linspace(np.pi, 2 * np.pi, 7)[1:-1]
    along = np.concatenate([s, s1 + ch * np.sin(phi_head), s[::-1], s0 + cb * np.sin(phi_base)])
    across = np.concatenate(
        [w / 2, wh / 2 * np.cos(phi_head), -w[::-1] / 2, wb / 2 * np.cos(phi_base)]
    )
    along = along - tilt * across * np.clip((along - s0) / max(s1 - s0, 1e-9), 0, 1) ** 4
    return base[None, :] + along[:, None] * d[None, :] + across[:, None] * n[None, :]


def _blob_outline(
    centre: np.ndarray,
    axes: tuple[float, float],
    angle: float,
    power: float,
    harmonics: tuple,
    n_points: int = 28,
) -> np.ndarray:
    """A roundish carpal: a superellipse with a few low harmonics on its radius."""
    theta = np.linspace(0.0, 2 * np.pi, n_points, endpoint=False)
    c, s = np.abs(np.cos(theta)), np.abs(np.sin(theta))
    r = 1.0 / ((c / axes[0]) ** power + (s / axes[1]) ** power) ** (1.0 / power)
    for k, amp, phase in harmonics:
        r = r * (1.0 + amp * np.cos(k * theta + phase))
    pts = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    a = math.radians(angle)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return centre[None, :] + pts @ rot.T


def _clip_to_unit_square(poly: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman clipping of a polygon against ``[0, 1]^2``."""
    out = poly
    for axis, bound, keep_below in (
        (0, 0.0, False),
        (0, 1.0, True),
        (1, 0.0, False),
        (1, 1.0, True),
    ):
        if len(out) == 0:
            break
        src, out_pts = out, []
        inside = (src[:, axis] <= bound) if keep_below else (src[:, axis] >= bound)
        for i in range(len(src)):
            p, q = src[i - 1], src[i]
            ip, iq = inside[i - 1], inside[i]
            if iq:
                if not ip:
                    out_pts.append(p + (q - p) * (bound - p[axis]) / (q[axis] - p[axis]))
                out_pts.append(q)
            elif ip:
                out_pts.append(p + (q - p) * (bound - p[axis]) / (q[axis] - p[axis]))
        out = np.array(out_pts).reshape(-1, 2)
    return out


@dataclass
class _Person:
    """What the two hands of one ID share: bone proportions and carpal shapes."""

    length: np.ndarray  # per-class length factor
    width: float
    carpal_shift: dict[str, np.ndarray]
    carpal_axes: dict[str, float]


def _sample_person(rng: np.random.Generator) -> _Person:
    return _Person(
        length=np.clip(rng.normal(1.0, 0.03, len(CLASSES)), 0.92, 1.08),
        width=float(np.clip(rng.normal(1.0, 0.04), 0.92, 1.08)),
        carpal_shift={k: rng.normal(0.0, 0.0006, 2) for k in _CARPALS},
        carpal_axes={k: float(np.clip(rng.normal(1.0, 0.03), 0.94, 1.06)) for k in _CARPALS},
    )


def _sized(bone: _LongBone, length: float, width: float) -> _LongBone:
    return replace(
        bone,
        length=bone.length * length,
        w_base=bone.w_base * width,
        w_shaft=bone.w_shaft * width,
        w_head=bone.w_head * width,
    )


def _hand_geometry(
    person: _Person, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], list[list[np.ndarray]]]:
    """One right hand in the model's frame with its own finger pose: every bone's outline, and
    each ray's joint centres (base, joints, tip; for the soft tissue)."""
    idx = {name: i for i, name in enumerate(CLASSES)}
    polys: dict[str, np.ndarray] = {}
    chains: list[list[np.ndarray]] = []
    spread = rng.normal(0.0, 2.5)  # fingers fanned apart (+) or held together (-), degrees
    for ray_i, (base, angle, bones) in enumerate(_RAYS):
        pos = np.array(base, dtype=float)
        if ray_i == 0:  # thumb: its own abduction
            direction = angle + rng.normal(0.0, 3.0)
        else:  # fingers fan about the middle finger
            direction = angle + (ray_i - 2) * 0.3 * spread
        chain = [pos.copy()]
        for j, bone in enumerate(bones):
            if j == 1:  # metacarpophalangeal joint: spread plus a little lateral deviation
                direction += rng.normal(0.0, 3.5) + (ray_i - 2) * 0.8 * spread * (ray_i > 0)
            elif j > 1:  # interphalangeal joints
                direction += rng.normal(0.0, 2.5)
            # Flexion foreshortens the phalanges in a PA view.
            flex = 1.0 if j == 0 else float(np.clip(rng.normal(0.97, 0.03), 0.88, 1.0))
            sized = _sized(bone, person.length[idx[bone.name]] * flex, person.width)
            polys[bone.name] = _long_bone_outline(pos, direction, sized)
            d, _ = _unit(direction)
            gap = 0.009 * person.width  # joint space
            pos = pos + d * (sized.length + gap / 2)
            chain.append(pos.copy())
            pos = pos + d * (gap / 2)
        chains.append(chain)
    for name, (centre, axes, angle, power, harmonics) in _CARPALS.items():
        f = person.carpal_axes[name] * person.width
        c = np.array(centre) + person.carpal_shift[name] + rng.normal(0.0, 0.0004, 2)
        polys[name] = _blob_outline(
            c, (axes[0] * f, axes[1] * f), angle + rng.normal(0, 3.0), power, harmonics
        )
    for base, angle, bone, tilt in _FOREARM:
        sized = _sized(bone, person.length[idx[bone.name]], person.width)
        polys[bone.name] = _long_bone_outline(np.array(base), angle, sized, tilt)
    return polys, chains


@dataclass
class _Hand:
    """One posed hand: every bone's outline, each ray's joint chain, and its overall scale."""

    polys: dict[str, np.ndarray]
    chains: list[list[np.ndarray]]
    scale: float

    def mirrored(self) -> _Hand:
        """The same hand seen from the other side: a left hand from a right one."""

        def flip(p: np.ndarray) -> np.ndarray:
            return np.array([1.0, 0.0]) + p * np.array([-1.0, 1.0])

        return _Hand(
            {k: flip(v) for k, v in self.polys.items()},
            [[flip(p) for p in chain] for chain in self.chains],
            self.scale,
        )


def _pose(
    polys: dict[str, np.ndarray], chains: list[list[np.ndarray]], rng: np.random.Generator
) -> _Hand:
    """Wrist angle, scale and translation about the wrist; then nudge the hand inside the image."""
    a = math.radians(rng.uniform(-15.0, 15.0))
    scale = _HAND_SCALE * rng.uniform(0.92, 1.08)
    shift = rng.uniform(-0.03, 0.03, 2)
    rot = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])

    def move(p: np.ndarray) -> np.ndarray:
        return (p - _WRIST) @ rot.T + _WRIST_IN_IMAGE + shift

    polys = {k: move(v) for k, v in polys.items()}
    chains = [[move(p) for p in chain] for chain in chains]
    # The hand (all but the forearm) must stay inside a margin: shrink, then shift, if needed.
    margin = 0.015
    hand = np.concatenate([v for k, v in polys.items() if k not in ("Radius", "Ulna")])
    lo, hi = hand.min(axis=0), hand.max(axis=0)
    fit = min(1.0, (1 - 2 * margin) / max(hi[0] - lo[0], 1e-9), (1 - 2 * margin) / (hi[1] - lo[1]))
    centre = (lo + hi) / 2
    lo, hi = centre + (lo - centre) * fit, centre + (hi - centre) * fit
    nudge = np.clip(margin - lo, 0, None) - np.clip(hi - (1 - margin), 0, None)

    def fit_in(p: np.ndarray) -> np.ndarray:
        return centre + (p - centre) * fit + nudge

    return _Hand(
        {k: fit_in(v) for k, v in polys.items()},
        [[fit_in(p) for p in chain] for chain in chains],
        scale * fit,
    )


def _to_pixels(poly: np.ndarray, size: int) -> np.ndarray:
    """Normalised outline -> integer pixel polygon inside the image, without repeated points."""
    pts = np.rint(_clip_to_unit_square(poly) * (size - 1)).astype(np.int64)
    pts = np.clip(pts, 0, size - 1)
    keep = np.any(pts != np.roll(pts, 1, axis=0), axis=1)
    return pts[keep]


# ---------------------------------------------------------------------------------------------
# pixels


def _draw_fill(canvas: np.ndarray, poly_px: np.ndarray) -> None:
    pts = np.rint(poly_px * (1 << _SUBPIXEL_BITS)).astype(np.int32)
    cv2.fillPoly(canvas, [pts], 255, cv2.LINE_AA, _SUBPIXEL_BITS)


def _soft_tissue(hand: _Hand, size: int) -> np.ndarray:
    """A smooth hand-and-forearm silhouette in [0, 1], drawn small and blurred, then upscaled."""
    low = min(size, 256)
    k = low - 1
    canvas = np.zeros((low, low), np.uint8)

    def px(p: np.ndarray) -> tuple[int, int]:
        q = np.rint(p * k).astype(int)
        return int(q[0]), int(q[1])

    for ray_i, chain in enumerate(hand.chains):
        tip = chain[-1] + (chain[-1] - chain[-2]) * 0.10
        for j, (p, q) in enumerate(zip(chain, [*chain[1:], tip], strict=True)):
            width = (0.048 - 0.003 * min(j, 3)) * (1.12 if ray_i == 0 else 1.0) * hand.scale
            cv2.line(canvas, px(p), px(q), 255, max(1, round(width * k)), cv2.LINE_AA)
    palm = [hand.polys[n] for n in ("finger-3", "finger-7", "finger-19", "Trapezium", "Hamate")]
    palm += [np.array(chain[:2]) for chain in hand.chains]
    hull = cv2.convexHull(np.rint(np.concatenate(palm) * k).astype(np.int32))
    cv2.fillConvexPoly(canvas, hull, 255, cv2.LINE_AA)
    fore = [hand.polys[n] for n in ("Radius", "Ulna", "Scaphoid", "Pisiform", "Trapezium")]
    fore_hull = cv2.convexHull(np.rint(np.concatenate(fore) * k).astype(np.int32))
    cv2.fillConvexPoly(canvas, fore_hull, 255, cv2.LINE_AA)
    grow = max(3, round(0.016 * hand.scale * low)) | 1
    canvas = cv2.dilate(canvas, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow, grow)))
    tissue = cv2.GaussianBlur(canvas.astype(np.float32) / 255.0, (0, 0), 0.008 * low)
    if low != size:
        tissue = cv2.resize(tissue, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.clip(tissue, 0.0, 1.0)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """A zero-mean smooth random field (a coarse grid, upsampled): the bones' mottled texture."""
    grid = rng.normal(0.0, 1.0, (cells, cells)).astype(np.float32)
    return cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)


def _render(hand: _Hand, size: int, rng: np.random.Generator) -> np.ndarray:
    """The X-ray: background + soft tissue + bones (adding up), exposure field, blur, noise."""
    background = rng.uniform(12.0, 28.0)
    tissue_level = rng.uniform(45.0, 65.0)
    bone_level = rng.uniform(25.0, 38.0)
    rim_level = rng.uniform(12.0, 20.0)
    image = background + tissue_level * _soft_tissue(hand, size)
    texture = 1.0 + 0.08 * _smooth_noise(rng, size, 48)
    bones = np.zeros((size, size), np.float32)
    rim = max(1, round(0.009 * size))  # cortical line, centred on the outline: half falls inside
    pad = rim + 3
    for name in CLASSES:
        poly = _clip_to_unit_square(hand.polys[name]) * (size - 1)
        x0, y0 = np.maximum(np.floor(poly.min(axis=0)).astype(int) - pad, 0)
        x1, y1 = np.minimum(np.ceil(poly.max(axis=0)).astype(int) + pad, size - 1)
        local = poly - np.array([x0, y0])
        fill = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
        _draw_fill(fill, local)
        line = np.zeros_like(fill)
        pts = np.rint(local * (1 << _SUBPIXEL_BITS)).astype(np.int32)
        cv2.polylines(line, [pts], True, 255, rim, cv2.LINE_AA, _SUBPIXEL_BITS)
        f = fill.astype(np.float32) / 255.0
        r = line.astype(np.float32) / 255.0 * f
        # Thick forearm bones absorb more, the small carpals less; overlaps simply add up.
        density = 1.1 if name in ("Radius", "Ulna") else (0.9 if name in _CARPALS else 1.0)
        bones[y0 : y1 + 1, x0 : x1 + 1] += density * (bone_level * f + rim_level * r)
    image = image + bones * texture
    # Uneven exposure: a linear gradient in a random direction and vignetting towards the corners.
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1) - 0.5
    g = rng.uniform(0, 2 * np.pi)
    gain = 1.0 + rng.uniform(0.05, 0.15) * (math.cos(g) * xx + math.sin(g) * yy) * 2
    gain = gain - rng.uniform(0.10, 0.25) * (xx * xx + yy * yy) * 2
    image = image * gain
    image = cv2.GaussianBlur(image.astype(np.float32), (0, 0), max(0.6, size / 600))
    image = image + rng.normal(0.0, rng.uniform(6.0, 10.0), (size, size)).astype(np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# dataset


def _uuid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def _label(
    polys: dict[str, np.ndarray],
    size: int,
    folder: str,
    stem: str,
    rng: np.random.Generator,
    modifier: str,
) -> dict:
    annotations = []
    for name in CLASSES:
        pts = _to_pixels(polys[name], size)
        annotations.append(
            {
                "id": _uuid(rng),
                "type": "poly_seg",
                "attributes": {},
                "points": pts.tolist(),
                "label": name,
            }
        )
    return {
        "annotations": annotations,
        "attributes": {},
        "file_id": _uuid(rng),
        "filename": f"{stem}.jpg",
        "parent_path": f"/{folder}",
        "last_modifier_id": modifier,
        "metadata": {"height": size, "width": size},
        "last_workers": {},
    }


def synthesize(
    out: Path,
    *,
    ids: int = 20,
    size: int = 256,
    seed: int = 0,
    test_ids: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write a phantom dataset to ``out`` (which must not exist or be empty) and return ``out``.

    ``ids`` train ID folders and then ``test_ids`` test folders (unlabelled), two hands each
    (right, then left), ``size`` x ``size`` 8-bit PNGs. Same arguments, same bytes.
    ``progress(done, total)`` is called after each image.
    """
    out = Path(out)
    for name, value, low in (("ids", ids, 1), ("size", size, 64), ("test_ids", test_ids, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise HarnessError(f"phantom {name}={value!r}: must be an integer >= {low}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise HarnessError(f"phantom seed={seed!r}: must be an integer >= 0")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise HarnessError(f"{out}: already exists and is not empty; choose a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        _write_all(tmp, ids=ids, size=size, seed=seed, test_ids=test_ids, progress=progress)
        try:
            os.replace(tmp, out)
        except OSError as exc:  # someone filled ``out`` meanwhile
            raise HarnessError(
                f"{out}: already exists and is not empty; choose a new folder"
            ) from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _write_all(
    root: Path,
    *,
    ids: int,
    size: int,
    seed: int,
    test_ids: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    names = np.random.default_rng([seed, 0x5EED])
    stamp = 1_661_130_000_000 + int(names.integers(0, 10**9))
    modifier = _uuid(names)
    total, done = 2 * (ids + test_ids), 0
    for person_i in range(ids + test_ids):
        split = "train" if person_i < ids else "test"
        folder = f"ID{person_i:03d}"
        person = _sample_person(np.random.default_rng([seed, person_i, 2]))
        for hand in (0, 1):  # 0 right, 1 left
            stamp += int(names.integers(2_000, 90_000))
            stem = f"image{stamp}"
            rng = np.random.default_rng([seed, person_i, hand])
            posed = _pose(*_hand_geometry(person, rng), rng)
            if hand == 1:
                posed = posed.mirrored()
            pixels = _render(posed, size, rng)
            image_dir = root / split / IMAGE_DIR / folder
            image_dir.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(image_dir / f"{stem}.png"), pixels):
                raise OSError(f"{image_dir / f'{stem}.png'}: could not write the image")
            if split == "train":
                label = _label(posed.polys, size, folder, stem, rng, modifier)
                label_dir = root / split / LABEL_DIR / folder
                label_dir.mkdir(parents=True, exist_ok=True)
                (label_dir / f"{stem}.json").write_text(json.dumps(label) + "\n")
            done += 1
            if progress is not None:
                progress(done, total)
