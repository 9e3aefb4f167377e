"""Charts (``harness.pictures.charts``): each is an RGB PNG of its figure's size, written
atomically and without metadata, so the same numbers give the same bytes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from harness.classes import CLASSES
from harness.pictures import charts

HISTORY = [
    {"epoch": 1, "loss": 0.9},
    {"epoch": 2, "loss": 0.6, "val_mean_dice": 0.41},
    {"epoch": 3, "loss": 0.5},
    {"epoch": 4, "loss": 0.4, "val_mean_dice": 0.62},
]
PER_CLASS = {name: i / len(CLASSES) for i, name in enumerate(CLASSES)}
SPACE = [("lr", 1e-4, 1e-1, True), ("weight_decay", 0.0, 0.1, False)]
TRIALS = [({"lr": 1e-3, "weight_decay": 0.01}, 0.55), ({"lr": 3e-2, "weight_decay": 0.05}, None)]
BEST = ({"lr": 1e-3, "weight_decay": 0.01}, 0.55)


def shape_of(path: Path) -> tuple[int, ...]:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.dtype == np.uint8
    return image.shape


DRAWINGS: dict[str, tuple[Callable[[Path], Path], tuple[int, int, int]]] = {
    "curves": (lambda path: charts.training_curves(HISTORY, path), (320, 700, 3)),
    "bars": (lambda path: charts.per_class_bars(PER_CLASS, path, "a run"), (340, 900, 3)),
    "heatmap": (
        lambda path: charts.heatmap(["a", "b", "c"], [PER_CLASS] * 3, path),
        (286, 1500, 3),
    ),
    "one tuned entry": (
        lambda path: charts.tuning_curves([("entry", TRIALS, BEST)], SPACE, path),
        (320, round(100 * (3.6 * 2 + 0.4)), 3),
    ),
    "a tuned axis": (
        lambda path: charts.tuning_curves(
            [("adam", TRIALS, BEST), ("sgd", TRIALS, None)], SPACE, path
        ),
        (320, round(100 * (3.6 * 2 + 2.2)), 3),
    ),
    "a halving audit": (
        lambda path: charts.audit_scatter(
            [("rung 1", [(0.2, 0.5, False), (0.4, 0.7, True)]), ("rung 2", [(0.6, 0.7, True)])],
            path,
            "an entry",
        ),
        (320, round(100 * (3.2 * 2 + 0.4)), 3),
    ),
}


@pytest.mark.parametrize("name", DRAWINGS)
def test_a_chart_is_an_rgb_png_of_its_size_and_the_same_bytes_again(
    name: str, tmp_path: Path
) -> None:
    draw, shape = DRAWINGS[name]
    path = draw(tmp_path / "chart.png")
    assert path == tmp_path / "chart.png"
    assert shape_of(path) == shape
    assert [p.name for p in tmp_path.iterdir()] == ["chart.png"]  # nothing left beside it
    first = path.read_bytes()
    assert draw(tmp_path / "again.png").read_bytes() == first
    assert b"tEXt" not in first and b"tIME" not in first  # no metadata, no date


def test_the_heatmap_grows_a_row_per_entry_and_draws_none(tmp_path: Path) -> None:
    assert shape_of(charts.heatmap([], [], tmp_path / "none.png")) == (202, 1500, 3)
    tall = charts.heatmap(["x"] * 10, [PER_CLASS] * 10, tmp_path / "ten.png")
    assert shape_of(tall) == (580, 1500, 3)


def test_bars_need_every_class(tmp_path: Path) -> None:
    missing = {name: 0.5 for name in CLASSES[1:]}
    with pytest.raises(KeyError, match="finger-1"):
        charts.per_class_bars(missing, tmp_path / "bars.png")
    assert not list(tmp_path.iterdir())


def test_curves_without_validation_still_draw(tmp_path: Path) -> None:
    unvalidated = [{"epoch": 1, "loss": 0.9}, {"epoch": 2, "loss": 0.7}]
    with_dice = charts.training_curves(HISTORY, tmp_path / "with.png").read_bytes()
    without = charts.training_curves(unvalidated, tmp_path / "without.png").read_bytes()
    assert shape_of(tmp_path / "without.png") == (320, 700, 3) and without != with_dice


def test_a_value_without_a_tuned_name_has_no_point_on_its_panel(tmp_path: Path) -> None:
    """``tune --vary`` over entries with their own spaces: a panel per name any value tuned;
    a default outside the range (halving's first configuration) stays in view."""
    own = [({"lr": 3e-3, "optimizer.momentum": 0.9}, 0.5), ({"lr": 2.0}, 0.4)]
    space = [*SPACE[:1], ("optimizer.momentum", 0.8, 0.99, False)]
    path = charts.tuning_curves(
        [("sgd", own, None), ("adam", TRIALS, BEST)], space, tmp_path / "x.png"
    )
    assert shape_of(path) == (320, round(100 * (3.6 * 2 + 2.2)), 3)
