"""The pictures a page draws (``harness.results.plots``): the forest plot of each row's 95 %
interval with the leader's shaded, and Dice against a cost with its Pareto front, made from the
twin's rows; and, in a browser (headless Chromium), the committed pages draw them where their
values say, and a point opens its row's drill-down."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.results import plots
from harness.results.leaderboard import regenerate
from tests.helpers import BENCH, REPO, make_record, open_page, put_record

BOARDS = REPO / "leaderboards"
#: Every committed table.
TABLES = sorted(BOARDS.glob("*.md"))
MAIN = next(
    p for p in sorted(BOARDS.glob("synthetic-2267276f85__*.md")) if ".ablation-" not in p.name
)
TUNED = MAIN.with_name(f"{MAIN.stem}.ablation-loss-tuned.md")
CROSS_VALIDATED = next(
    p for p in TABLES if p.name.startswith("synthetic-46ab025203__") and ".ablation-" not in p.name
)


def test_the_forest_plot_draws_the_rows_with_a_mean_and_shades_the_leaders_interval() -> None:
    rows = [
        {"entry": "a · dice", "mean_dice": 0.8, "interval": [0.7, 0.9]},
        {"entry": "b · dice", "mean_dice": 0.6},  # one row without an interval: its mean alone
        {"entry": "c · dice", "mean_dice": None},  # no mean: not drawn
    ]
    plot = plots.forest(rows, ["a", "b", "c"], leader=0)
    assert plot is not None and plot["kind"] == "forest"
    assert plot["rows"] == [
        {"i": 0, "label": "a", "title": "a · dice", "mean": 0.8, "low": 0.7, "high": 0.9},
        {"i": 1, "label": "b", "title": "b · dice", "mean": 0.6, "low": None, "high": None},
    ]
    assert plot["shaded"] == {"i": 0, "low": 0.7, "high": 0.9}
    assert plots.forest(rows, ["a", "b", "c"], leader=1)["shaded"] is None
    assert plots.forest(rows[1:], ["b", "c"], leader=0) is None  # no interval at all


def test_the_cost_plot_has_an_axis_per_cost_some_row_measured() -> None:
    rows = [
        {"entry": "a", "mean_dice": 0.86, "gflops": 2.0},
        {"entry": "b", "mean_dice": 0.83, "gflops": 1.8},
        {"entry": "c", "mean_dice": 0.9, "gflops": True},  # not a number: not measured
        {"entry": "d", "mean_dice": 0.66, "gflops": 1.2},
    ]
    plot = plots.cost(rows, ["A", "B", "C", "D"])
    (axis,) = plot["axes"]  # no row measured inference images/s: no such axis
    assert (axis["key"], axis["less_is_better"], axis["missing"]) == ("gflops", True, 1)
    assert [(p["i"], p["label"], p["x"], p["y"]) for p in axis["points"]] == [
        (0, "A", 2.0, 0.86),
        (1, "B", 1.8, 0.83),
        (3, "D", 1.2, 0.66),
    ]
    assert axis["front"] == [3, 1, 0]  # the cheapest first
    assert plots.cost([{"mean_dice": 0.8}], ["A"])["axes"] == []


def test_the_pareto_front_is_the_rows_no_other_beats_on_both() -> None:
    points = [(0, 2.0, 0.86), (1, 1.8, 0.83), (2, 0.75, 0.78), (3, 1.2, 0.66), (4, 0.75, 0.78)]
    assert plots.pareto(points, less_is_better=True) == [2, 4, 1, 0]  # ties both kept
    assert plots.pareto(points, less_is_better=False) == [0]


# In a browser: the committed pages, opened from file://.


def _marks(browser: Any, selector: str, *names: str) -> list[dict[str, str]]:
    """Each SVG element matching ``selector``: its data attributes ``names``."""
    script = """
        const [selector, names] = arguments;
        return [...document.querySelectorAll(selector)].map(
            (n) => Object.fromEntries(names.map((k) => [k, n.getAttribute('data-' + k)])));
    """
    return browser.execute_script(script, selector, list(names))


@pytest.mark.parametrize("table", [MAIN, CROSS_VALIDATED, TUNED], ids=lambda p: p.name[:30])
def test_the_forest_plot_draws_each_rows_interval_and_shades_the_leaders(
    browser: Any, table: Path
) -> None:
    twin = json.loads(table.with_suffix(".json").read_text())
    open_page(browser, table.with_suffix(".html"))
    rows = _marks(browser, "#plots svg.forest g.row", "i")
    assert [int(r["i"]) for r in rows] == list(range(len(twin["rows"])))
    lines = _marks(browser, "#plots svg.forest line.ci", "low", "high")
    means = _marks(browser, "#plots svg.forest circle.mean", "mean")
    for row, line, mean in zip(twin["rows"], lines, means, strict=True):
        assert [float(line["low"]), float(line["high"])] == row["interval"]
        assert float(mean["mean"]) == row["mean_dice"]
    (band,) = _marks(browser, "#plots rect.leader-band", "i", "low", "high")
    leader = twin["rows"][twin["noise"]["reference"]]
    assert [float(band["low"]), float(band["high"])] == leader["interval"]
    # a line is placed where its values say: x grows with Dice
    xs = browser.execute_script(
        "return [...document.querySelectorAll('#plots svg.forest line.ci')]"
        ".map(l => [Number(l.getAttribute('x1')), Number(l.getAttribute('x2'))])"
    )
    lows = [row["interval"][0] for row in twin["rows"]]
    assert sorted(range(len(xs)), key=lambda k: xs[k][0]) == sorted(
        range(len(lows)), key=lambda k: lows[k]
    )


def test_the_cost_plot_draws_dice_against_the_chosen_cost_with_its_pareto_front(
    browser: Any,
) -> None:
    twin = json.loads(CROSS_VALIDATED.with_suffix(".json").read_text())
    open_page(browser, CROSS_VALIDATED.with_suffix(".html"))
    for option, key, less in (("0", "gflops", True), ("1", "inference_images_per_s", False)):
        browser.execute_script(
            "const s = document.getElementById('cost-axis'); s.value = arguments[0];"
            "s.dispatchEvent(new Event('change'));",
            option,
        )
        assert (
            browser.execute_script(
                "return document.querySelector('#plots svg.scatter').dataset.axis"
            )
            == key
        )
        points = _marks(browser, "#plots svg.scatter circle.point", "x", "y", "front")
        assert [(float(p["x"]), float(p["y"])) for p in points] == [
            (r[key], r["mean_dice"]) for r in twin["rows"]
        ]
        front = plots.pareto(
            [(i, r[key], r["mean_dice"]) for i, r in enumerate(twin["rows"])], less
        )
        assert [i for i, p in enumerate(points) if p["front"] == "1"] == sorted(front)
        (line,) = _marks(browser, "#plots svg.scatter polyline.front", "rows")
        assert line["rows"] == ",".join(map(str, front))
    # the main table's costs come from its quiet passes (harness cost): each row with a
    # GFLOPs figure is a point, at its values
    main = json.loads(MAIN.with_suffix(".json").read_text())
    open_page(browser, MAIN.with_suffix(".html"))
    points = _marks(browser, "#plots svg.scatter circle.point", "x", "y")
    costed = [(r["gflops"], r["mean_dice"]) for r in main["rows"] if r["gflops"] is not None]
    assert costed and sorted((float(p["x"]), float(p["y"])) for p in points) == sorted(costed)


def test_a_table_without_costs_says_so_instead_of_drawing(browser: Any, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for loss, dice in (("bce", 0.6), ("dice", 0.8)):
        put_record(runs, loss, make_record(loss, 0, dice))
    board = regenerate(BENCH["id"], runs, tmp_path / "boards")
    open_page(browser, board.with_suffix(".html"))
    text = browser.find_element("css selector", "#plots section[data-kind='cost']").text
    assert "Nothing to plot" in text and not browser.find_elements("css selector", "svg.scatter")


def test_a_point_opens_its_rows_drill_down(browser: Any) -> None:
    open_page(browser, CROSS_VALIDATED.with_suffix(".html"))
    browser.find_element("css selector", "#plots svg.scatter g.row[data-i='2'] circle").click()
    assert browser.execute_script("return location.hash") == "#row=3"
    assert "Adjusted p" in browser.find_element("id", "detail").text
