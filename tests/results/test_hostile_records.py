"""Records are input: a leaderboard made from records someone else wrote (a pull request, a
shared runs folder) survives any of them, and its pages stay inside their folders.

A record that fails its schema is named with its field on the terminal and in its table's
header, and never stops a table; free text is shown as text (markdown escaped, pages' cells
and notes as text, the terminal without markup); a damaged ablation twin is named and left as
it is. (A path a record names outside its runs folder, left out of the page with a note:
tests/results/test_drill.py; a damaged twin of another table, left out of the index:
tests/results/test_site.py.) The property test writes records with random strings (line
breaks, ``|``, ``[``, markdown pictures, paths) and random types in every field, regenerates
the tables through the command line, and opens every page in headless Chromium: no traceback,
no request that leaves the page's folders, no link outside them.
"""

from __future__ import annotations

import copy
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from harness.results.markdown import escape
from tests.helpers import (
    BENCH,
    hashes,
    make_record,
    outside,
    page_reach,
    pictured_runs,
    tuned_record,
)

#: What a hostile string is made of: markdown's, HTML's and rich's own characters, line
#: breaks and other hidden characters, a picture from the network, paths out of the folder.
PIECES = (
    "\n",
    "\r\n",
    "\t",
    "\x00",
    "\x1b[31m",
    "\u202e",
    "\u2028",
    "\ud800",
    "|",
    "[",
    "]",
    "<",
    ">",
    "`",
    "``",
    "*",
    "**",
    "_",
    "$",
    "$x$",
    "&amp;",
    "!",
    "(",
    ")",
    "#",
    ":smile:",
    "[/x]",
    "[bold]",
    "\\",
    "/",
    "..",
    "![t](http://127.0.0.1:9/t.png)",
    "<img src=http://127.0.0.1:9/i.png>",
    "[x]: http://127.0.0.1:9/d.png",
    "../../../outside/tuning.png",
    "../../outside",
    "/etc/passwd",
    "http://127.0.0.1:9/",
    "lr [0.1, 0.3]",
    "é😀",
)
TEXT = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=4)), max_size=4).map("".join)
#: Hostile text that a record's free text may hold (no hidden characters): shown as text.
PRINTABLE = st.lists(
    st.sampled_from([p for p in PIECES if p.isprintable()]), min_size=1, max_size=4
).map("".join)
VALUES = st.one_of(
    TEXT,
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.lists(st.one_of(st.integers(-2, 30), TEXT), max_size=3),
    st.dictionaries(TEXT, st.one_of(TEXT, st.floats(), st.integers()), max_size=2),
)
#: A damaged twin of another table, in the leaderboards folder before the command.
DAMAGED_TWINS = (
    None,
    '{"format": "harness-table/1", "kind": "leaderboard"}',
    '{"format": "harness-table/1", "kind": "leaderboard", "rows": [1]}',
    '{"format": "harness-table/1", "kind": "ablation", "benchmark_id": "../x", "rows": []}',
    '{"format": "harness-table/1", "kind": "leaderboard", "benchmark": "\\ud800"}',
    "[[[[[[[[",
)


def _fields(data: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a record's JSON (long lists: their first item only)."""
    found = [at]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _fields(value, (*at, key))
    elif isinstance(data, list) and data:
        found += _fields(data[0], (*at, 0))
    return found


def _change(data: dict, at: tuple[Any, ...], value: Any, append: bool) -> None:
    """Set the field at ``at`` to ``value`` (or, ``append`` and it is text, add ``value``)."""
    if not at:
        data["unknown" if not isinstance(value, str) else value] = 1
        return
    parent = data
    for key in at[:-1]:
        parent = parent[key]
    old = parent.get(at[-1]) if isinstance(parent, dict) else parent[at[-1]]
    parent[at[-1]] = old + value if append and isinstance(old, str) else value


@st.composite
def _damage(draw: st.DrawFn) -> dict[str, Any]:
    """Which records, which of their fields, and what to put there (one to three changes):
    random values of random types in one record's fields, or printable hostile text added to
    text fields of every record (which keeps most of them usable: their text is then shown)."""
    template = json.loads(json.dumps(tuned_record(make_record("dice", 0, 0.8)).to_dict()))
    fields = _fields(template)
    texts = [at for at in fields if isinstance(_get(template, at), str)]
    typed = draw(st.booleans())
    changes = []
    for _ in range(draw(st.integers(1, 3))):
        if typed:
            at, append = draw(st.sampled_from(fields)), draw(st.booleans())
            changes.append((at, draw(TEXT if append else VALUES), append))
        else:
            changes.append((draw(st.sampled_from(texts)), draw(PRINTABLE), True))
    return {
        "records": [draw(st.integers(0, 2))] if typed else [0, 1, 2],
        "changes": changes,
        "twin": draw(st.sampled_from(DAMAGED_TWINS)),
    }


def _get(data: Any, at: tuple[Any, ...]) -> Any:
    for key in at:
        data = data[key]
    return data


def _apply(path: Path, changes: list[tuple[tuple[Any, ...], Any, bool]]) -> None:
    data = json.loads(path.read_text())
    for at, value, append in changes:
        try:
            _change(data, at, copy.deepcopy(value), append)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change took the field away
    path.write_text(json.dumps(data))  # ensure_ascii: a lone surrogate is written as \ud800


#: A picture a markdown table shows (its alt text closed by a ``]`` no backslash escapes, as
#: CommonMark reads it: ``![t\](x)`` is text); it may only be a file of the table's own folder.
_PICTURE = re.compile(r"(?<!\\)!\[(?:[^\]\\]|\\.)*\]\(([^)]*)\)")


def _markdown_loads_nothing(table: Path) -> None:
    for src in _PICTURE.findall(table.read_text(encoding="utf-8")):
        assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.png", src), (table.name, src)


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(damage=_damage())
def test_any_record_regenerates_without_a_traceback_and_pages_stay_home(
    cli, browser: Any, tmp_path: Path, damage: dict[str, Any]
) -> None:
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    runs, records = pictured_runs(root)
    for index in damage["records"]:
        _apply(records[index], damage["changes"])
    boards = root / "boards"
    if damage["twin"] is not None:
        boards.mkdir()
        (boards / "other-abc__phantom-1234.json").write_text(damage["twin"])
    before = hashes(runs)
    result = cli("leaderboard", "--runs-dir", runs, "--leaderboards-dir", boards)
    assert "Traceback" not in result.err and result.code in (0, 2), result.err
    assert hashes(runs) == before  # records are input: never written
    left_out = "a record left out" if "warning" in result.err else "every record used"
    event(f"exit 0, {left_out}" if result.code == 0 else "exit 2: no record a table can use")
    if result.code == 2:  # no record a table could use: one line, naming one
        assert len(result.err.strip().splitlines()) == 1, result.err
        return
    for line in result.err.splitlines():
        assert line.startswith("harness: "), line  # one line each, none broken by a record
    pages = sorted(boards.glob("*.html")) + sorted((runs / "leaderboards").glob("*.html"))
    assert pages
    for table in boards.glob("*.md"):
        _markdown_loads_nothing(table)
    for page in pages:
        requested, links = page_reach(browser, page)
        assert not outside(requested, boards, runs), (page.name, requested)
        assert not outside(links, boards, runs), (page.name, links)
    assert not list(root.rglob("*.lock"))


# The examples of the issue, one by one.


def _one_bad(tmp_path: Path, change: Any) -> tuple[Path, Path, Path]:
    runs, records = pictured_runs(tmp_path)
    data = json.loads(records[0].read_text())
    change(data)
    records[0].write_text(json.dumps(data))
    return runs, records[0], tmp_path / "boards"


def _set(*at: Any, value: Any) -> Any:
    def change(data: dict) -> None:
        _change(data, at, value, append=False)

    return change


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (_set("cost", "wall_s", value="60"), "cost.wall_s: not a number"),
        (_set("hardware", "cpu", value=7), "hardware.cpu: not an object"),
        (_set("entry", "tuned", value=6), "entry.tuned: not text"),
        (_set("tuning", "trials", value=[1, 2]), "tuning.trials[0]: not an object"),
        (_set("benchmark", "small_bones", value=["Nose"]), "benchmark.small_bones[0]: not one"),
        (_set("entry", "loss", "name", value="dice|x"), "entry.loss.name: not a plain name"),
        (_set("entry", "loss", "name", value="dice\nx"), "entry.loss.name: not a plain name"),
        (
            _set("benchmark", "dataset", "name", value="small6\n![t](http://127.0.0.1:9/t.png)\n"),
            "benchmark.dataset.name: not a plain name",
        ),
        (_set("benchmark", "protocol", "label", value="tiny\nx"), "protocol.label: not one line"),
    ],
)
def test_a_malformed_record_is_named_by_its_field_and_every_table_is_written(
    cli, tmp_path: Path, change: Any, field: str
) -> None:
    runs, bad, boards = _one_bad(tmp_path, change)
    before = hashes(runs)
    args = ("leaderboard", "--runs-dir", runs, "--leaderboards-dir", boards)
    result = cli(*args)
    assert result.code == 0 and "Traceback" not in result.err, result.err
    (line,) = result.err.strip().splitlines()
    assert line.startswith(f"harness: warning: {bad}: ") and field in line, line
    table = boards / f"{BENCH['id']}.md"
    for written in (table, table.with_suffix(".json"), table.with_suffix(".html")):
        assert written.is_file(), written
    assert (boards / "index.html").is_file() and not list(tmp_path.rglob("*.lock"))
    text = table.read_text()
    assert "**Excluded**: 1 record" in text and escape(field) in text
    assert "127.0.0.1" not in text  # named by its field, its value not shown
    strict = cli(*args, "--strict")
    assert strict.code == 1 and "--strict: 1 record(s) could not be used" in strict.err
    assert hashes(runs) == before


def test_the_issue_s_picture_in_a_dataset_name_loads_nothing(
    cli, browser: Any, tmp_path: Path
) -> None:
    runs, _, boards = _one_bad(
        tmp_path,
        _set("benchmark", "dataset", "name", value="small6\n![t](http://127.0.0.1:9/t.png)\n"),
    )
    assert cli("leaderboard", "--runs-dir", runs, "--leaderboards-dir", boards).code == 0
    for page in boards.glob("*.html"):
        html = page.read_text()
        assert not re.search(r"<img[^>]*127\.0\.0\.1", html), page.name
        requested, links = page_reach(browser, page)
        assert not outside(requested + links, boards, runs)


def test_free_text_is_shown_as_text_in_markdown_page_and_terminal(
    cli, browser: Any, tmp_path: Path
) -> None:
    """A usable record whose free text is hostile: escaped in the markdown, literal on the page."""
    label = "tiny | ![t](http://127.0.0.1:9/t.png) [/x] `x` **b** _i_ $m$ <b>"
    runs, records = pictured_runs(tmp_path)
    for path in records:
        data = json.loads(path.read_text())
        data["benchmark"]["protocol"]["label"] = label
        data["cost"]["device"] = "cpu [/x] | :smile:"
        data["entry"]["loss"]["params"] = {"mode": "a|b [/x] ![i](http://127.0.0.1:9/i.png)"}
        path.write_text(json.dumps(data))
    boards = tmp_path / "boards"
    result = cli("leaderboard", "--runs-dir", runs, "--leaderboards-dir", boards)
    assert result.code == 0 and not result.err, result.err
    table = boards / f"{BENCH['id']}.md"
    text = table.read_text()
    assert "# Leaderboard: tiny \\| ![t\\](http://127.0.0.1:9/t.png) [/x] \\`x\\`" in text
    header, row = (line for line in text.splitlines() if line.startswith(("| # ", "| 1 ")))
    cells = re.split(r"(?<!\\)\|", row)  # a pipe in the entry is escaped: no extra cell
    assert len(cells) == len(header.split("|")), row
    page = table.with_suffix(".html")
    requested, links = page_reach(browser, page)
    assert not outside(requested + links, boards, runs)
    browser.get(page.resolve().as_uri())
    heading = browser.execute_script("return document.querySelector('h1').textContent")
    assert heading == f"Leaderboard: {label} on phantom"
    cells = browser.execute_script(
        "return Array.from(document.querySelectorAll('#board tbody td')).map(c => c.textContent)"
    )
    assert any("a|b [/x] ![i](http://127.0.0.1:9/i.png)" in c for c in cells), cells
    assert "cpu [/x] | :smile:" in cells
    assert browser.execute_script("return document.querySelectorAll('img').length") == 1


def test_a_damaged_ablation_twin_is_named_and_left_as_it_is(cli, tmp_path: Path) -> None:
    runs, _ = pictured_runs(tmp_path)
    boards = tmp_path / "boards"
    boards.mkdir()
    twin = boards / f"{BENCH['id']}.ablation-loss.json"
    text = json.dumps(
        {"format": "harness-table/1", "kind": "ablation", "benchmark_id": BENCH["id"],
         "axis": "../../x", "excluded": [], "rows": []}
    )  # fmt: skip
    twin.write_text(text)
    result = cli("leaderboard", "--runs-dir", runs, "--leaderboards-dir", boards)
    assert result.code == 0 and "Traceback" not in result.err, result.err
    lines = result.err.strip().splitlines()
    assert lines and all(line.startswith(f"harness: {twin}: axis: not a plain") for line in lines)
    assert any(line.endswith("; left as it is") for line in lines), lines
    assert twin.read_text() == text and not (boards / f"{twin.stem}.md").exists()
    assert (boards / f"{BENCH['id']}.md").is_file()
