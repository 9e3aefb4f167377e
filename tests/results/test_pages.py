"""Every table's web page (``harness.results.pages``): made from its twin, beside its markdown,
with the folder's index; nothing absolute in it and nothing loaded from the network; a table
without succeeded runs has an empty page, and ``harness compare --html`` writes its own; and,
in a real browser (headless Chromium), the committed pages show the markdown's rows. (How a
page sorts, filters and stays self-contained: tests/results/test_page.py; a row's drill-down:
tests/results/test_drill.py; the pictures: tests/results/test_plots.py.)"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from harness.results.leaderboard import regenerate
from harness.results.pages import table_view
from harness.results.records import write_record
from tests.helpers import REPO, make_record, open_page, selection_data, selection_runs, shown_rows

BOARDS = REPO / "leaderboards"
MAIN = next(
    p for p in sorted(BOARDS.glob("synthetic-2267276f85__*.md")) if ".ablation-" not in p.name
)
#: Every committed table.
TABLES = sorted(BOARDS.glob("*.md"))


class _References(HTMLParser):
    """Every URL a page loads a script, style, picture or frame from (and every CSS url())."""

    LOADS = {
        "script": "src",
        "img": "src",
        "link": "href",
        "iframe": "src",
        "source": "src",
        "embed": "src",
        "object": "data",
        "image": "href",
        "use": "href",
    }

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = self.LOADS.get(tag)
        for name, value in attrs:
            if value and (name == wanted or name in ("srcset", "xlink:href", "style")):
                self.urls += (
                    re.findall(r"url\(\s*['\"]?([^'\")]+)", value) if name == "style" else [value]
                )
        self._in_style = tag == "style"

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.urls += re.findall(r"url\(\s*['\"]?([^'\")]+)", data)
            self.urls += re.findall(r"@import\s+['\"]([^'\"]+)", data)


def _loaded(page: Path) -> list[str]:
    parser = _References()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.urls


def _ranked_rows(table: Path) -> int:
    """The markdown's first table's body rows (a placeholder row of an empty table not counted)."""
    lines = table.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    body = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        body.append(line)
    return len([line for line in body if not line.startswith("| — |")])


# Without a browser.


def test_every_committed_table_has_its_page_and_the_folder_its_index() -> None:
    assert TABLES
    for table in TABLES:
        assert table.with_suffix(".html").is_file(), table.name
    index = (BOARDS / "index.html").read_text(encoding="utf-8")
    for table in TABLES:
        assert f'href="{table.with_suffix(".html").name}"' in index, table.name


@pytest.mark.parametrize("page", sorted(BOARDS.glob("*.html")), ids=lambda p: p.name)
def test_no_page_loads_a_script_style_or_picture_from_the_network(page: Path) -> None:
    urls = _loaded(page)
    assert not [u for u in urls if u.strip().lower().startswith(("http", "//"))], urls
    text = page.read_text(encoding="utf-8")
    assert "<script src" not in text and 'rel="stylesheet"' not in text


def test_the_page_holds_the_twin_and_no_absolute_path(tmp_path: Path) -> None:
    runs, boards = tmp_path / "runs", tmp_path / "boards"
    for loss, dice in (("dice", 0.8), ("bce", 0.5)):
        for seed in (0, 1):
            write_record(
                runs / "b" / loss / f"seed-{seed}" / "record.json", make_record(loss, seed, dice)
            )
    (runs / "b" / "dice" / "seed-0" / "curves.png").write_bytes(b"png")
    table = regenerate(make_record("dice", 0, 0.8).benchmark_id, runs, boards)
    assert table is not None
    page = table.with_suffix(".html").read_text(encoding="utf-8")
    assert str(tmp_path) not in page  # nothing absolute
    data = json.loads(re.search(r'id="page-data">(.*?)</script>', page, re.S)[1])
    assert data["table"] == json.loads(table.with_suffix(".json").read_text())
    runs_shown = [s for s in data["details"][0] if s["kind"] == "runs"][0]["items"]
    assert runs_shown[0]["links"] == [["curves", "../runs/b/dice/seed-0/curves.png"]]
    assert runs_shown[1]["links"] == []  # no picture there: no link
    assert (boards / "index.html").is_file()


def test_a_contended_throughput_is_left_out_of_the_pages_ranges(tmp_path: Path) -> None:
    """A figure taken under contention shows in its cell, marked, but takes no part in the
    range filter or the sort: the page holds no value for it."""
    runs = tmp_path / "runs"
    window = {"warmup": 5, "timed": 30, "load": [1.0, 1.0, 1.0], "cpus": 2, "threads": 1}
    for loss, dice, images, runs_at_once in (("dice", 0.8, 7.0, 1), ("bce", 0.7, 5.0, 1),
                                             ("combo", 0.6, 2.0, 2)):  # fmt: skip
        record = make_record(loss, 0, dice)
        record.cost["train_window"] = {
            **window,
            "images_per_s": images,
            "concurrent_runs": runs_at_once,
        }
        write_record(runs / "b" / loss / "seed-0" / "record.json", record)
    table = regenerate(make_record("dice", 0, 0.8).benchmark_id, runs, tmp_path / "boards")
    assert table is not None
    view = table_view(table, json.loads(table.with_suffix(".json").read_text()))
    at = [c.name for c in view.columns].index("Train img/s")
    assert "Train img/s" in view.ranges
    assert [r.cells[at] for r in view.rows] == ["7.0", "5.0", "2.0ᶜ"]
    assert [r.values[at] for r in view.rows] == [7.0, 5.0, None]


def test_a_table_without_succeeded_runs_has_an_empty_page(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    failed = make_record("dice", 0, 0.8, status="failed")
    write_record(runs / "b" / "dice" / "seed-0" / "record.json", failed)
    table = regenerate(failed.benchmark_id, runs, tmp_path / "boards")
    assert table is not None
    page = table.with_suffix(".html").read_text(encoding="utf-8")
    assert "<caption>no succeeded runs yet</caption>" in page and "<tr data-i=" not in page


def test_compare_writes_its_page(cli, tmp_path: Path) -> None:
    twin = json.loads(MAIN.with_suffix(".json").read_text())
    for row in twin["rows"]:
        row["mean_dice"] += 0.05
    twin["noise"]["means"] = [m + 0.05 for m in twin["noise"]["means"]]
    twin["rows"] = twin["rows"][1:]
    twin["noise"] = {"basis": None, "rows": [], "problem": "cut by hand"}
    other = tmp_path / "other.json"
    other.write_text(json.dumps(twin))
    out = tmp_path / "compare.html"
    result = cli("compare", MAIN.with_suffix(".json"), other, "--html", out)
    assert result.code == 0, result.err
    page = out.read_text(encoding="utf-8")
    assert page.count("<tr data-i=") == len(twin["rows"])
    assert "Only in A" in page and "+0.0500" in page and "B: no noise model (cut by hand)" in page
    assert not [u for u in _loaded(out) if u.startswith("http")]


# In a browser: the committed pages, opened from file://.


def test_each_page_renders_the_markdowns_ranked_rows(browser: Any) -> None:
    for table in TABLES:
        open_page(browser, table.with_suffix(".html"))
        assert len(shown_rows(browser)) == _ranked_rows(table), table.name
    open_page(browser, BOARDS / "index.html")
    assert len(shown_rows(browser)) == len({p.name.split(".")[0] for p in TABLES})


def test_a_selection_page_shows_its_configurations_and_opens_each(
    browser: Any, tmp_path: Path
) -> None:
    """``harness select``'s page: every configuration a row, in the markdown's order, each
    opening its Dice by fold and per class; the index links it as ``select``."""
    import numpy as np

    from harness.studies.select import SelectRequest, select

    def sure(truth: Any, name: str, fold: int) -> Any:
        return np.where(truth, 0.8, 0.1).astype(np.float32)

    data = selection_data(tmp_path)
    bench = selection_runs(tmp_path / "runs", data, {"a": {"none": sure}, "b": {"none": sure}})
    made = select(SelectRequest(bench, runs_dir=tmp_path / "runs", data=data))
    assert made.table is not None
    open_page(browser, made.table.with_suffix(".html"))
    script = (
        "return [...document.querySelectorAll('#board tbody tr')].map(t => t.cells[1].textContent)"
    )
    assert browser.execute_script(script) == [" + ".join(r["members"]) for r in made.data["rows"]]
    browser.find_element("css selector", "#board tbody tr[data-i='0']").click()
    detail = browser.find_element("id", "detail").text
    assert "Dice by fold" in detail and "Per-class Dice" in detail and "Radius" in detail
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    open_page(browser, made.table.parent / "index.html")
    assert "select" in browser.find_element("tag name", "body").text
