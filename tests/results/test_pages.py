"""Every table's web page: self-contained (nothing from the network), deterministic, beside its
markdown, with the folder's index; and, in a real browser (headless Chromium), the committed
pages show the markdown's rows, sort as the records do, filter from the URL and drill down
to the records' per-class Dice without a request leaving the page."""

from __future__ import annotations

import json
import re
import statistics
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from harness.classes import CLASSES
from harness.results import plots
from harness.results.leaderboard import regenerate
from harness.results.records import iter_records, read_record, write_record
from harness.results.rows import rows
from tests.helpers import REPO, make_record, selection_data, selection_runs

BOARDS = REPO / "leaderboards"
RECORDS = BOARDS / "records"
MAIN = next(
    p for p in sorted(BOARDS.glob("synthetic-2267276f85__*.md")) if ".ablation-" not in p.name
)
TUNED = MAIN.with_name(f"{MAIN.stem}.ablation-loss-tuned.md")
#: Every committed table.
TABLES = sorted(BOARDS.glob("*.md"))
#: URL schemes by which a request would leave the machine.
NETWORK = re.compile(r"^(https?|wss?|ftp):", re.IGNORECASE)


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


def _records_of(runs: list[str]) -> list[Any]:
    return [read_record(RECORDS / run) for run in runs]


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


def _open(browser: Any, page: Path, fragment: str = "") -> None:
    browser.get(page.resolve().as_uri() + fragment)


def _shown(browser: Any) -> list[str]:
    """The Entry (or first) column of the rendered rows, in their order."""
    script = """
        const head = [...document.querySelectorAll('#board thead th')].map(t => t.textContent);
        const col = Math.max(0, head.indexOf('Entry'));
        return [...document.querySelectorAll('#board tbody tr')]
            .filter(tr => !tr.hidden && tr.offsetParent !== null)
            .map(tr => tr.cells[col].textContent);
    """
    return browser.execute_script(script)


def test_each_page_renders_the_markdowns_ranked_rows(browser: Any) -> None:
    for table in TABLES:
        _open(browser, table.with_suffix(".html"))
        assert len(_shown(browser)) == _ranked_rows(table), table.name
    _open(browser, BOARDS / "index.html")
    assert len(_shown(browser)) == len({p.name.split(".")[0] for p in TABLES})


def test_sorting_by_mean_dice_and_params_gives_the_records_order(browser: Any) -> None:
    made = rows((r for _, r in iter_records(RECORDS)), MAIN.stem)
    _open(browser, MAIN.with_suffix(".html"))
    for column, key in (
        ("Mean Dice", lambda r: r.mean),
        ("Params (M)", lambda r: r.cost("parameters")),
    ):
        header = browser.find_element(
            "xpath", f"//table[@id='board']//th[normalize-space()='{column}']"
        )
        header.click()
        rank = {r.entry.label: i for i, r in enumerate(made)}
        ascending = sorted(made, key=lambda r: (key(r), rank[r.entry.label]))
        assert _shown(browser) == [r.entry.label for r in ascending], column
        header.click()
        descending = sorted(made, key=lambda r: (-key(r), rank[r.entry.label]))
        assert _shown(browser) == [r.entry.label for r in descending], column
    assert browser.execute_script("return location.hash") == "#sort=-params-m"


def test_a_filter_in_the_fragment_shows_exactly_the_rows_containing_it(browser: Any) -> None:
    entries = [r["entry"] for r in json.loads(MAIN.with_suffix(".json").read_text())["rows"]]
    _open(browser, MAIN.with_suffix(".html"), "#filter=fpn")
    shown = _shown(browser)
    assert shown == [e for e in entries if "fpn" in e] and len(shown) == 2
    rendered = browser.execute_script("return document.querySelectorAll('#board tbody tr').length")
    assert rendered == len(entries)  # the others carry `hidden`
    _open(browser, MAIN.with_suffix(".html"), "#model=fpn&params=..4.3&sort=-mean")
    assert _shown(browser) == shown
    _open(browser, MAIN.with_suffix(".html"))
    browser.find_element("id", "filter").send_keys("FPN tuned")  # typed: every word, any case
    assert _shown(browser) == [e for e in entries if "fpn" in e and "tuned" in e]
    assert browser.execute_script("return location.hash") == "#filter=FPN%20tuned"


def test_a_rows_drill_down_shows_its_records_per_class_dice(browser: Any) -> None:
    twin = json.loads(MAIN.with_suffix(".json").read_text())
    row = twin["rows"][13]
    records = _records_of(row["runs"])
    _open(browser, MAIN.with_suffix(".html"))
    browser.find_element("css selector", "#board tbody tr[data-i='13']").click()
    cells = browser.find_elements("css selector", "#detail td[data-class]")
    assert [c.get_attribute("data-class") for c in cells] == list(CLASSES)
    for cell in cells:
        expected = statistics.fmean(
            r.per_class_dice[cell.get_attribute("data-class")] for r in records
        )
        assert abs(float(cell.text) - expected) <= 0.5e-4 + 1e-9, cell.get_attribute("data-class")
    assert browser.execute_script("return location.hash") == "#row=14"
    assert len(row["seeds"]) == 3 and "Seeds: mean" in browser.find_element("id", "detail").text


def test_no_request_leaves_the_pages(browser: Any) -> None:
    browser.get_log("performance")  # what came before
    _open(browser, MAIN.with_suffix(".html"), "#row=1")
    assert browser.find_element("css selector", "#detail svg.bars")
    _open(browser, TUNED.with_suffix(".html"), "#row=2")  # the sensitivity picture, beside
    picture = browser.find_element("css selector", "#detail img")
    assert browser.execute_script("return arguments[0].naturalWidth", picture) > 0
    _open(browser, BOARDS / "index.html")
    assert browser.find_element("css selector", "#board tbody a")
    events = [json.loads(e["message"])["message"] for e in browser.get_log("performance")]
    urls = [
        e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"
    ]
    assert any(u.startswith("file:") for u in urls), urls  # the log saw the pages
    assert not [u for u in urls if NETWORK.match(u)], urls


# The pictures: the rows' intervals, and Dice against cost with its Pareto front.

CROSS_VALIDATED = next(
    p for p in TABLES if p.name.startswith("synthetic-46ab025203__") and ".ablation-" not in p.name
)


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
    _open(browser, table.with_suffix(".html"))
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
    _open(browser, CROSS_VALIDATED.with_suffix(".html"))
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
    # the main table measured no cost: the page says so instead of drawing
    _open(browser, MAIN.with_suffix(".html"))
    text = browser.find_element("css selector", "#plots section[data-kind='cost']").text
    assert "Nothing to plot" in text and not browser.find_elements("css selector", "svg.scatter")


def test_a_point_opens_its_rows_drill_down(browser: Any) -> None:
    _open(browser, CROSS_VALIDATED.with_suffix(".html"))
    browser.find_element("css selector", "#plots svg.scatter g.row[data-i='2'] circle").click()
    assert browser.execute_script("return location.hash") == "#row=3"
    assert "Adjusted p" in browser.find_element("id", "detail").text


def test_the_pareto_front_is_the_rows_no_other_beats_on_both() -> None:
    points = [(0, 2.0, 0.86), (1, 1.8, 0.83), (2, 0.75, 0.78), (3, 1.2, 0.66), (4, 0.75, 0.78)]
    assert plots.pareto(points, less_is_better=True) == [2, 4, 1, 0]  # ties both kept
    assert plots.pareto(points, less_is_better=False) == [0]


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
    _open(browser, made.table.with_suffix(".html"))
    script = (
        "return [...document.querySelectorAll('#board tbody tr')].map(t => t.cells[1].textContent)"
    )
    assert browser.execute_script(script) == [" + ".join(r["members"]) for r in made.data["rows"]]
    browser.find_element("css selector", "#board tbody tr[data-i='0']").click()
    detail = browser.find_element("id", "detail").text
    assert "Dice by fold" in detail and "Per-class Dice" in detail and "Radius" in detail
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    _open(browser, made.table.parent / "index.html")
    assert "select" in browser.find_element("tag name", "body").text
