"""Dataset statistics: the numbers on a hand-made dataset whose areas, overlaps, wrist angles
and hands are known by construction, and the report on a small phantom."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from rich.console import Console

from harness.classes import CLASS_INDEX, CLASSES, NUM_CLASSES
from harness.cli.tables import stats_table
from harness.data.layout import IMAGE_DIR, LABEL_DIR
from harness.data.phantom import synthesize
from harness.data.stats import (
    JSON_NAME,
    PLOT_NAMES,
    SMALL_BONE_COUNT,
    compute_stats,
    small_bones,
    write_report,
)
from harness.errors import HarnessError

W, H = 300, 400
PIXELS = W * H
BACKGROUND, TISSUE, BONE = 20, 80, 120  # tissue and bone are checkerboards of +-10 around these

# Axis-aligned rectangles (x0, y0, x1, y1), inclusive: cv2.fillPoly fills (x1-x0+1)*(y1-y0+1).
_RAY_COLUMNS = (60, 100, 140, 180)  # index, middle, ring, little finger: finger-4..7, 8..11, ...
_RAY_ROWS = ((150, 189), (120, 145), (95, 115), (75, 90))  # proximal to distal
RECTS: dict[str, tuple[int, int, int, int]] = {
    "finger-1": (20, 150, 31, 179),
    "finger-2": (20, 120, 31, 145),
    "finger-3": (20, 95, 31, 115),
    **{
        f"finger-{4 + 4 * ray + bone}": (x, y0, x + 11, y1)
        for ray, x in enumerate(_RAY_COLUMNS)
        for bone, (y0, y1) in enumerate(_RAY_ROWS)
    },
    "Trapezium": (40, 205, 59, 222),
    "Trapezoid": (66, 205, 75, 214),
    "Capitate": (90, 200, 109, 229),
    "Hamate": (125, 200, 144, 225),
    "Scaphoid": (45, 232, 69, 247),
    "Lunate": (80, 235, 99, 250),
    "Triquetrum": (150, 230, 169, 249),
    "Pisiform": (162, 240, 173, 251),  # overlaps Triquetrum on x 162..169, y 240..249
}
OVERLAP = 8 * 10
SMALLER_TRAPEZOID = (66, 205, 74, 213)  # the third image's Trapezoid: 81 px instead of 100
# Forearm bones: rotated rectangles (centre, length, width), rotated by the wrist angle.
FOREARM = {"Radius": ((95.0, 330.0), 110.0, 30.0), "Ulna": ((150.0, 335.0), 100.0, 18.0)}


def _area(rect: tuple[int, int, int, int]) -> int:
    x0, y0, x1, y1 = rect
    return (x1 - x0 + 1) * (y1 - y0 + 1)


def _corners(rect: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = rect
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


def _rotated(centre: tuple[float, float], length: float, width: float, angle: float) -> np.ndarray:
    """A rectangle whose long axis leans ``angle`` degrees clockwise from up (distal end right)."""
    a = math.radians(angle)
    d = np.array([math.sin(a), -math.cos(a)])  # towards the fingers
    n = np.array([math.cos(a), math.sin(a)])
    c = np.array(centre)
    pts = [
        c + sd * d * length / 2 + sn * n * width / 2
        for sd, sn in ((1, -1), (1, 1), (-1, 1), (-1, -1))
    ]
    return np.rint(np.array(pts)).astype(int)


def _hand(angle: float, rects: dict[str, tuple[int, int, int, int]]) -> dict[str, np.ndarray]:
    polys = {name: _corners(rect) for name, rect in rects.items()}
    for name, (centre, length, width) in FOREARM.items():
        polys[name] = _rotated(centre, length, width, angle)
    return polys


def _write(root: Path, folder: str, stem: str, polys: dict[str, np.ndarray], mirror: bool) -> None:
    if mirror:  # the same hand seen from the other side: x -> W - 1 - x
        polys = {k: np.stack([W - 1 - v[:, 0], v[:, 1]], axis=1) for k, v in polys.items()}
    yy, xx = np.mgrid[0:H, 0:W]
    checker = np.where((xx + yy) % 2 == 0, -10, 10)
    image = np.full((H, W), BACKGROUND, np.int32)
    image[5 : H - 5, 5 : W - 5] = TISSUE + checker[5 : H - 5, 5 : W - 5]
    bones = np.zeros((H, W), np.uint8)
    for poly in polys.values():
        cv2.fillPoly(bones, [poly.astype(np.int32)], 1)
    image[bones > 0] = BONE + checker[bones > 0]
    (root / "train" / IMAGE_DIR / folder).mkdir(parents=True, exist_ok=True)
    (root / "train" / LABEL_DIR / folder).mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(
        str(root / "train" / IMAGE_DIR / folder / f"{stem}.png"), image.astype(np.uint8)
    )
    label = {
        "annotations": [{"label": name, "points": polys[name].tolist()} for name in CLASSES],
        "metadata": {"height": H, "width": W},
    }
    (root / "train" / LABEL_DIR / folder / f"{stem}.json").write_text(json.dumps(label))


#: (folder, file stem, wrist angle drawn, mirrored, expected angle, expected hand)
IMAGES = (
    ("ID000", "image1000", 10.0, False, 10.0, "right"),
    ("ID000", "image1001", 4.0, True, -4.0, "left"),
    ("ID001", "image1002", 0.0, False, 0.0, "right"),
)


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("known") / "data"
    for i, (folder, stem, angle, mirror, _, _) in enumerate(IMAGES):
        rects = dict(RECTS, Trapezoid=SMALLER_TRAPEZOID) if i == 2 else RECTS
        _write(root, folder, stem, _hand(angle, rects), mirror)
    return root


@pytest.fixture(scope="module")
def stats(known: Path):
    return compute_stats(known)


def _expected_areas() -> np.ndarray:
    """(3, 29) pixel areas of the axis-aligned classes by construction (forearm: NaN)."""
    areas = np.full((len(IMAGES), NUM_CLASSES), np.nan)
    for i in range(len(IMAGES)):
        for name, rect in RECTS.items():
            areas[i, CLASS_INDEX[name]] = _area(rect)
    areas[2, CLASS_INDEX["Trapezoid"]] = _area(SMALLER_TRAPEZOID)
    return areas


def test_class_areas_are_exact(stats) -> None:
    expected = _expected_areas()
    doc = stats.to_json()
    rows = {row["class"]: row for row in doc["classes"]}
    for name in RECTS:
        shares = expected[:, CLASS_INDEX[name]] / PIXELS
        row = rows[name]
        assert row["images"] == 3
        assert row["mean_share"] == pytest.approx(shares.mean(), rel=1e-12)
        assert row["min_share"] == pytest.approx(shares.min(), rel=1e-12)
        assert row["max_share"] == pytest.approx(shares.max(), rel=1e-12)
    assert rows["Trapezoid"]["min_share"] == pytest.approx(81 / PIXELS)
    assert rows["Trapezoid"]["max_share"] == pytest.approx(100 / PIXELS)
    # Rotated forearm bones: fillPoly includes the outline, as for the rectangles' +1.
    for name, (_, length, width) in FOREARM.items():
        assert rows[name]["mean_share"] == pytest.approx(
            (length + 1) * (width + 1) / PIXELS, rel=0.02
        )
    assert doc["images"][0]["area_pixels"][CLASS_INDEX["Capitate"]] == 600


def test_overlaps_are_the_known_pair(stats) -> None:
    pairs = stats.to_json()["overlaps"]
    assert len(pairs) == 1
    pair = pairs[0]
    assert (pair["a"], pair["b"], pair["images"]) == ("Triquetrum", "Pisiform", 3)
    assert pair["mean_share"] == pytest.approx(OVERLAP / PIXELS)
    assert pair["max_share"] == pytest.approx(OVERLAP / PIXELS)
    assert pair["mean_fraction_of_smaller"] == pytest.approx(OVERLAP / _area(RECTS["Pisiform"]))
    matrix = stats.overlap_matrix()
    t, p = CLASS_INDEX["Triquetrum"], CLASS_INDEX["Pisiform"]
    assert matrix[t, p] == matrix[p, t] == pytest.approx(OVERLAP / PIXELS)
    assert np.count_nonzero(matrix) == 2


def test_wrist_angles_and_hands(stats) -> None:
    doc = stats.to_json()
    for image, (folder, stem, _, _, angle, hand) in zip(doc["images"], IMAGES, strict=True):
        assert image["path"] == f"train/DCM/{folder}/{stem}.png"
        assert image["wrist_angle"] == pytest.approx(angle, abs=1.0)
        assert image["hand"] == hand
        assert image["forearm_agrees"] is True
    assert doc["hands"]["by_id"] == {
        "ID000": {"right": ["image1000.png"], "left": ["image1001.png"], "unknown": []},
        "ID001": {"right": ["image1002.png"], "left": [], "unknown": []},
    }
    assert (doc["hands"]["right"], doc["hands"]["left"], doc["hands"]["unknown"]) == (2, 1, 0)
    assert doc["hands"]["ids_with_one_of_each"] == 1
    angles = doc["wrist_angle"]
    assert angles["count"] == 3 and angles["missing"] == 0
    assert angles["mean"] == pytest.approx(2.0, abs=0.7)
    assert angles["min"] == pytest.approx(-4.0, abs=1.0)
    assert angles["max"] == pytest.approx(10.0, abs=1.0)
    assert sum(angles["histogram"]["counts"]) == 3


def test_contrast_and_intensity(stats) -> None:
    doc = stats.to_json()
    for row in doc["classes"]:
        if row["class"] in ("Triquetrum", "Pisiform"):
            continue  # their rings are partly each other
        assert row["contrast"]["count"] == 3, row["class"]
        assert row["contrast"]["mean"] == pytest.approx(BONE - TISSUE, abs=1.5), row["class"]
        assert row["weber"]["mean"] == pytest.approx((BONE - TISSUE) / TISSUE, abs=0.03)
        assert row["cnr"]["mean"] == pytest.approx((BONE - TISSUE) / 10, abs=0.3)
    intensity = doc["intensity"]
    assert intensity["all"]["pixels"] == 3 * PIXELS
    assert intensity["bone"]["mean"] == pytest.approx(BONE, abs=0.5)
    assert (intensity["bone"]["percentiles"]["p1"], intensity["bone"]["percentiles"]["p99"]) == (
        BONE - 10,
        BONE + 10,
    )
    assert intensity["not_bone"]["percentiles"]["p1"] == BACKGROUND
    assert intensity["not_bone"]["percentiles"]["p50"] in (TISSUE - 10, TISSUE + 10)
    json.dumps(doc, allow_nan=False)  # every number is plain JSON


def test_small_bones_follow_the_rule(stats) -> None:
    expected = _expected_areas()
    mean = {name: expected[:, CLASS_INDEX[name]].mean() for name in RECTS}
    for name, (_, length, width) in FOREARM.items():
        mean[name] = length * width  # far larger than any rectangle
    ranked = sorted(mean, key=lambda name: (mean[name], CLASS_INDEX[name]))
    for count in (0, 3, SMALL_BONE_COUNT, NUM_CLASSES):
        want = sorted(ranked[:count], key=CLASS_INDEX.get)
        assert small_bones(stats, count=count) == want
    # By construction: Trapezoid (94 px), Pisiform (144), the four 192-px distal phalanges; the
    # seventh ties five 252-px bones, and the tie goes to the earliest class, finger-3.
    assert small_bones(stats) == [
        "finger-3",
        "finger-7",
        "finger-11",
        "finger-15",
        "finger-19",
        "Trapezoid",
        "Pisiform",
    ]
    assert small_bones(stats, count=3) == ["finger-7", "Trapezoid", "Pisiform"]
    assert stats.to_json()["small_bones"]["classes"] == small_bones(stats)


def test_progress_table_and_errors(known: Path, stats, tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    again = compute_stats(known, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert again.to_json() == stats.to_json()
    table = stats_table(stats)
    assert table.row_count == NUM_CLASSES
    console = Console(width=200, record=True)
    console.print(table)
    text = console.export_text()
    assert "Triquetrum/Pisiform" in text and "2 right, 1 left" in text
    broken = tmp_path / "broken"
    _write(broken, "ID000", "image1", _hand(0.0, RECTS), False)
    (broken / "train" / LABEL_DIR / "ID000" / "image1.json").unlink()
    with pytest.raises(HarnessError, match="image1.json"):
        compute_stats(broken)
    (broken / "train" / LABEL_DIR / "ID000").rmdir()
    (broken / "train" / LABEL_DIR).rmdir()
    with pytest.raises(HarnessError, match="outputs_json"):
        compute_stats(broken)


def test_report_on_a_phantom(tmp_path: Path) -> None:
    root = synthesize(tmp_path / "phantom", ids=5, size=128, test_ids=0)
    stats = compute_stats(root)
    written = write_report(stats, tmp_path / "report")
    assert [p.name for p in written] == [JSON_NAME, *PLOT_NAMES]
    doc = json.loads((tmp_path / "report" / JSON_NAME).read_text())
    assert doc["dataset"]["images"] == 10 and doc["dataset"]["ids"] == 5
    assert len(doc["small_bones"]["classes"]) == SMALL_BONE_COUNT
    # the phantom writes each folder's right hand first, then the mirrored left hand
    for image in doc["images"]:
        first = min(i["path"] for i in doc["images"] if i["id"] == image["id"])
        assert image["hand"] == ("right" if image["path"] == first else "left")
    assert -20 < doc["wrist_angle"]["min"] <= doc["wrist_angle"]["max"] < 20
    assert {(o["a"], o["b"]) for o in doc["overlaps"]} >= {
        ("Trapezium", "Trapezoid"),
        ("Triquetrum", "Pisiform"),
    }
    for path in written[1:]:
        picture = cv2.imread(str(path))
        assert picture is not None and picture.shape[0] > 300 and picture.shape[1] > 500
    before = {p.name: p.read_bytes() for p in written}
    write_report(stats, tmp_path / "report")  # same statistics, same bytes
    assert {p.name: p.read_bytes() for p in written} == before
    assert not [p for p in (tmp_path / "report").iterdir() if p.name.startswith(".")]
