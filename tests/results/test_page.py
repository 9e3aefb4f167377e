"""A table as a web page (``harness.results.page``): the notes' markdown subset as HTML (a
picture only from the page's own folder), one self-contained page (style, data and script
inline; the data safe inside its script element), the same bytes for the same view; and, in a
real browser (headless Chromium), the script sorts, filters from the URL fragment and keeps
the view in it, and no request leaves the committed pages."""

from __future__ import annotations

import json
import re
from typing import Any

from harness.results.page import Column, View, ViewRow, cell, markdown_html, plain, render
from harness.results.records import iter_records
from harness.results.rows import rows
from tests.helpers import REPO, open_page, shown_rows

BOARDS = REPO / "leaderboards"
RECORDS = BOARDS / "records"
MAIN = next(
    p for p in sorted(BOARDS.glob("synthetic-2267276f85__*.md")) if ".ablation-" not in p.name
)
TUNED = MAIN.with_name(f"{MAIN.stem}.ablation-loss-tuned.md")
#: URL schemes by which a request would leave the machine.
NETWORK = re.compile(r"^(https?|wss?|ftp):", re.IGNORECASE)


def test_the_notes_markdown_subset_becomes_html() -> None:
    lines = [
        "# Leaderboard: `tiny` on **phantom**",
        "",
        "- **Runs**: 3 succeeded \\| 1 failed",
        "  - `a|b` <i>x</i>",
        "- two",
        "",
        "A paragraph",
        "that goes on.",
        "",
        "![Per-class Dice](x.heatmap.png)",
        "![t](http://127.0.0.1:9/t.png)",
        "![t](../up.png)",
    ]
    assert markdown_html(lines).splitlines() == [
        "<h1>Leaderboard: <code>tiny</code> on <strong>phantom</strong></h1>",
        "<ul>",
        "<li><strong>Runs</strong>: 3 succeeded | 1 failed"
        "<ul><li><code>a|b</code> &lt;i&gt;x&lt;/i&gt;</li></ul></li>",
        "<li>two</li>",
        "</ul>",
        "<p>A paragraph that goes on.</p>",
        '<figure><img src="x.heatmap.png" alt="Per-class Dice"></figure>',
        "<p>![t](http://127.0.0.1:9/t.png)</p>",  # a picture from elsewhere is text
        "<p>![t](../up.png)</p>",
    ]
    assert plain(lines[0][2:]) == "Leaderboard: tiny on phantom"  # the page's title


def test_a_page_is_self_contained_and_the_same_for_the_same_view() -> None:
    hostile = "</script><script>alert(1)</script>"
    view = View(
        title="Leaderboard: <tiny>",
        before="<h1>Leaderboard</h1>",
        columns=(Column("Entry"), Column("Mean Dice", numeric=True)),
        rows=(
            ViewRow((cell("a <b>"), "0.8000"), ("a <b>", 0.8), "a <b>", "a", {"model": "unet"}),
            ViewRow((cell("b"), "—"), ("b", float("nan")), "b", "b", {"model": "fpn"}),
        ),
        data={"rows": [{"entry": hostile, "mean_dice": float("nan")}]},
    )
    page = render(view)
    assert render(view) == page
    assert page.count("<script") == page.count("</script>") == 2  # the data's and the script's
    assert "<script src" not in page and '<link rel="stylesheet"' not in page
    data = json.loads(re.search(r'id="page-data">(.*?)</script>', page, re.S)[1])
    assert data["table"] == {"rows": [{"entry": hostile, "mean_dice": None}]}  # NaN: null
    assert data["view"]["rows"][1]["values"] == ["b", None]
    assert [c["slug"] for c in data["view"]["columns"]] == ["entry", "mean-dice"]
    assert '<tr data-i="0" tabindex="0"><td>a &lt;b&gt;</td><td class=num>0.8000</td></tr>' in page
    assert (
        '<select data-part="model"><option value="">any</option>'
        '<option value="fpn">fpn</option><option value="unet">unet</option></select>'
    ) in page
    assert [Column(name).slug for name in ("#", "±", "Params (M)")] == ["rank", "noise", "params-m"]


# In a browser: the committed pages, opened from file://.


def test_sorting_by_mean_dice_and_params_gives_the_records_order(browser: Any) -> None:
    made = rows((r for _, r in iter_records(RECORDS)), MAIN.stem)
    open_page(browser, MAIN.with_suffix(".html"))
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
        assert shown_rows(browser) == [r.entry.label for r in ascending], column
        header.click()
        descending = sorted(made, key=lambda r: (-key(r), rank[r.entry.label]))
        assert shown_rows(browser) == [r.entry.label for r in descending], column
    assert browser.execute_script("return location.hash") == "#sort=-params-m"


def test_a_filter_in_the_fragment_shows_exactly_the_rows_containing_it(browser: Any) -> None:
    entries = [r["entry"] for r in json.loads(MAIN.with_suffix(".json").read_text())["rows"]]
    open_page(browser, MAIN.with_suffix(".html"), "#filter=fpn")
    shown = shown_rows(browser)
    assert shown == [e for e in entries if "fpn" in e] and len(shown) > 1
    rendered = browser.execute_script("return document.querySelectorAll('#board tbody tr').length")
    assert rendered == len(entries)  # the others carry `hidden`
    open_page(browser, MAIN.with_suffix(".html"), "#model=fpn&params=..4.3&sort=-mean")
    assert shown_rows(browser) == shown
    open_page(browser, MAIN.with_suffix(".html"))
    browser.find_element("id", "filter").send_keys("FPN tuned")  # typed: every word, any case
    assert shown_rows(browser) == [e for e in entries if "fpn" in e and "tuned" in e]
    assert browser.execute_script("return location.hash") == "#filter=FPN%20tuned"


def test_no_request_leaves_the_pages(browser: Any) -> None:
    browser.get_log("performance")  # what came before
    open_page(browser, MAIN.with_suffix(".html"), "#row=1")
    assert browser.find_element("css selector", "#detail svg.bars")
    open_page(browser, TUNED.with_suffix(".html"), "#row=2")  # the sensitivity picture, beside
    picture = browser.find_element("css selector", "#detail img")
    assert browser.execute_script("return arguments[0].naturalWidth", picture) > 0
    open_page(browser, BOARDS / "index.html")
    assert browser.find_element("css selector", "#board tbody a")
    events = [json.loads(e["message"])["message"] for e in browser.get_log("performance")]
    urls = [
        e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"
    ]
    assert any(u.startswith("file:") for u in urls), urls  # the log saw the pages
    assert not [u for u in urls if NETWORK.match(u)], urls
