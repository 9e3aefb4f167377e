"""A table as a web page: one self-contained HTML file, the same bytes for the same data.

A ``View`` is what a page shows: notes before its table (HTML), one interactive table
(columns; rows with the cells as the markdown shows them, the values the script sorts and
range-filters by, the text the filter searches and the components the choices pick), each
row's drill-down (sections the script draws), the pictures under the table (a forest plot of
the rows' intervals, Dice against cost: ``harness.results.plots``), and what follows it.
``render`` makes the page: style, data (JSON) and script inline, nothing loaded from the
network, so it works from ``file://`` on an air-gapped machine and from any static host. The
script (``page.js``) keeps the view in the URL fragment (the grammar is in docs/usage.md).

A table's notes are written in a small subset of markdown (headings, bullet lists two levels
deep, paragraphs, pictures, ``code`` and ``**bold**``, backslash escapes); ``markdown_html``
converts exactly that, so a page's notes are the markdown's own words. A picture is shown only
when it is a file of the page's own folder (``PICTURE``): a page loads nothing from elsewhere,
whatever its notes say. A page's tables are made from data, never read from markdown, and
their cells are text.
"""

from __future__ import annotations

import html
import json
import math
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

#: A cell's value for sorting and range filters (None: no value, sorted last).
Value = float | str | None


@dataclass(frozen=True)
class Column:
    """One column of a page's table; ``numeric`` columns sort as numbers and take ranges."""

    name: str
    numeric: bool = False

    @property
    def slug(self) -> str:
        """The column's name in the URL fragment: ``Mean Dice`` is ``mean-dice``."""
        slug = re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")
        return slug or {"#": "rank", "±": "noise"}.get(self.name, "column")


@dataclass(frozen=True)
class ViewRow:
    """One row: its cells (HTML), values (per column), filter text, components, drill-down."""

    cells: tuple[str, ...]
    values: tuple[Value, ...]
    text: str
    title: str
    parts: Mapping[str, str] = field(default_factory=dict)
    detail: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True)
class View:
    """Everything one page shows; ``data`` (the table's JSON twin) is embedded as it is."""

    title: str
    before: str
    columns: tuple[Column, ...]
    rows: tuple[ViewRow, ...]
    after: str = ""
    #: Names of the numeric columns offered a range filter (min, max).
    ranges: tuple[str, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)
    #: What the table body says when there are no rows.
    empty: str = "no rows"
    #: The pictures the script draws under the table (``harness.results.plots``).
    plots: Sequence[Mapping[str, Any]] = ()


def page_path(table: Path) -> Path:
    """``<table>.html`` beside ``<table>.md``."""
    return Path(table).with_suffix(".html")


def render(view: View) -> str:
    """The page of ``view``: deterministic (sorted keys, no time) and self-contained."""
    payload = {
        "table": view.data,
        "view": {
            "columns": [
                {"name": c.name, "slug": c.slug, "numeric": c.numeric} for c in view.columns
            ],
            "parts": _part_names(view.rows),
            "rows": [
                {"values": list(r.values), "text": r.text, "title": r.title, "parts": r.parts}
                for r in view.rows
            ],
        },
        "details": [list(r.detail) for r in view.rows],
        "plots": list(view.plots),
    }
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<link rel="icon" href="data:,">',
            f"<title>{html.escape(view.title)}</title>",
            f"<style>\n{_asset('page.css')}</style>",
            "</head>",
            "<body>",
            "<main>",
            view.before,
            _controls(view),
            _table(view),
            '<section id="detail" hidden></section>',
            '<section id="plots"></section>' if view.plots else "",
            view.after,
            "</main>",
            f'<script type="application/json" id="page-data">{embed_json(payload)}</script>',
            f"<script>\n{_asset('page.js')}</script>",
            "</body>",
            "</html>",
            "",
        ]
    )


def embed_json(data: Any) -> str:
    """``data`` as JSON safe inside a ``<script>`` element (no ``<``; no NaN, which JSON lacks)."""
    text = json.dumps(_finite(data), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _asset(name: str) -> str:
    return resources.files("harness.results").joinpath(name).read_text(encoding="utf-8")


def _part_names(rows: Sequence[ViewRow]) -> list[str]:
    """The components the rows name, in the order the first row that names each gives."""
    return list(dict.fromkeys(name for r in rows for name in r.parts))


def _choices(rows: Sequence[ViewRow]) -> dict[str, list[str]]:
    """Each component with more than one choice among the rows, and its choices (sorted)."""
    found = {
        name: sorted({r.parts[name] for r in rows if name in r.parts}) for name in _part_names(rows)
    }
    return {name: values for name, values in found.items() if len(values) > 1}


def _controls(view: View) -> str:
    """The filter box, a choice per varying component, and the range filters."""
    parts = [
        '<form id="controls" role="search" onsubmit="return false">',
        '<label>Filter <input id="filter" type="search" placeholder="entry contains…"></label>',
    ]
    for name, values in _choices(view.rows).items():
        options = "".join(f'<option value="{_attr(v)}">{html.escape(v)}</option>' for v in values)
        parts.append(
            f'<label>{html.escape(name)} <select data-part="{_attr(name)}">'
            f'<option value="">any</option>{options}</select></label>'
        )
    for name in view.ranges:
        slug = Column(name, True).slug
        parts.append(
            f'<fieldset data-range="{slug}"><legend>{html.escape(name)}</legend>'
            f'<input type="number" step="any" data-bound="min" aria-label="{_attr(name)} from">'
            f' – <input type="number" step="any" data-bound="max" aria-label="{_attr(name)} to">'
            "</fieldset>"
        )
    parts += ['<output id="shown"></output>', "</form>"]
    return "\n".join(parts)


def _table(view: View) -> str:
    head = "".join(
        f'<th scope="col" data-col="{i}"{" class=num" if c.numeric else ""}>'
        f'<button type="button">{html.escape(c.name)}</button></th>'
        for i, c in enumerate(view.columns)
    )
    body = [
        f'<tr data-i="{i}" tabindex="0">'
        + "".join(
            f"<td{' class=num' if c.numeric else ''}>{cell}</td>"
            for c, cell in zip(view.columns, row.cells, strict=True)
        )
        + "</tr>"
        for i, row in enumerate(view.rows)
    ]
    caption = "" if view.rows else f"<caption>{html.escape(view.empty)}</caption>"
    return "\n".join(
        [
            f'<table id="board" class="rows">{caption}',
            f"<thead><tr>{head}</tr></thead>",
            "<tbody>",
            *body,
            "</tbody>",
            "</table>",
        ]
    )


def _attr(text: str) -> str:
    return html.escape(text, quote=True)


def static_table(header: Sequence[str], rows: Sequence[Sequence[str]], marked: bool) -> str:
    """A table the script leaves as it is (a leaderboard's per-class Dice): cells as text.
    ``marked``: its rows are the page's rows, in order, each marked with its index so filters
    hide it too."""
    out = ['<div class="wide"><table class="rows static">']
    out.append("<thead><tr>" + "".join(f"<th>{cell(c)}</th>" for c in header) + "</tr></thead>")
    out.append("<tbody>")
    for n, row in enumerate(rows):
        index = f' data-i="{n}"' if marked else ""
        out.append(f"<tr{index}>" + "".join(f"<td>{cell(c)}</td>" for c in row) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


# The markdown subset the tables' notes are written in.

#: What a backslash escapes in markdown: ASCII punctuation.
_PUNCTUATION = frozenset(string.punctuation)
#: A picture's source a page may load: a file in its own folder (a heatmap, a tuning picture).
PICTURE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.png$")


def _spans(text: str) -> list[tuple[str, str]]:
    """``text`` as (kind, content) spans: ``text`` (backslash escapes resolved), ``code`` (a
    code span, fenced by a run of backticks and closed by a run as long) and ``strong``
    (``**...**``, its content still markdown)."""
    spans: list[tuple[str, str]] = []
    chars: list[str] = []
    i = 0

    def flush() -> None:
        if chars:
            spans.append(("text", "".join(chars)))
            chars.clear()

    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in _PUNCTUATION:
            chars.append(text[i + 1])
            i += 2
        elif char == "`":
            run = "`" * (len(text[i:]) - len(text[i:].lstrip("`")))
            close = _closing(text, i + len(run), run)
            if close is None:
                chars.append(run)
                i += len(run)
                continue
            flush()
            spans.append(("code", _unpadded(text[i + len(run) : close])))
            i = close + len(run)
        elif text.startswith("**", i) and (end := _strong_end(text, i + 2)) is not None:
            flush()
            spans.append(("strong", text[i + 2 : end]))
            i = end + 2
        else:
            chars.append(char)
            i += 1
    flush()
    return spans


def _closing(text: str, start: int, run: str) -> int | None:
    """Where the code span opened by ``run`` closes: the next run of exactly as many backticks."""
    for found in re.finditer("`+", text[start:]):
        if found[0] == run:
            return start + found.start()
    return None


def _unpadded(content: str) -> str:
    """A code span's content: one space stripped from each end when both have one."""
    if len(content) >= 2 and content[0] == content[-1] == " " and content.strip():
        return content[1:-1]
    return content


def _strong_end(text: str, start: int) -> int | None:
    """Where ``**`` opened before ``start`` closes (escapes skipped), if it does."""
    i = start
    while i < len(text) - 1:
        if text[i] == "\\":
            i += 2
        elif text.startswith("**", i):
            return i if i > start else None
        else:
            i += 1
    return None


def inline(text: str) -> str:
    """One line of markdown as HTML: escaped, with ``code``, **bold** and backslash escapes."""
    out = []
    for kind, content in _spans(text):
        if kind == "code":
            out.append(f"<code>{html.escape(content, quote=False)}</code>")
        elif kind == "strong":
            out.append(f"<strong>{inline(content)}</strong>")
        else:
            out.append(html.escape(content, quote=False))
    return "".join(out)


def plain(text: str) -> str:
    """One line of markdown as the text it shows (a page's title)."""
    return "".join(plain(c) if kind == "strong" else c for kind, c in _spans(text))


def cell(text: str) -> str:
    """A table cell's text (never markdown) as HTML."""
    return html.escape(text, quote=False)


IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)\s]+)\)$")


def markdown_html(lines: Sequence[str]) -> str:
    """The subset of markdown a table's notes use, as HTML."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif heading := re.match(r"^(#{1,3}) (.*)$", line):
            level = len(heading[1])
            out.append(f"<h{level}>{inline(heading[2])}</h{level}>")
            i += 1
        elif (image := IMAGE.match(line.strip())) and PICTURE.match(image[2]):
            alt, src = html.escape(plain(image[1])), html.escape(image[2])
            out.append(f'<figure><img src="{src}" alt="{alt}"></figure>')
            i += 1
        elif line.startswith("- "):
            i = _list(lines, i, out)
        else:
            i = _paragraph(lines, i, out)
    return "\n".join(out)


def _list(lines: Sequence[str], i: int, out: list[str]) -> int:
    out.append("<ul>")
    while i < len(lines) and lines[i].startswith("- "):
        item = inline(lines[i][2:])
        i += 1
        nested = []
        while i < len(lines) and lines[i].startswith("  - "):
            nested.append(f"<li>{inline(lines[i][4:])}</li>")
            i += 1
        inner = f"<ul>{''.join(nested)}</ul>" if nested else ""
        out.append(f"<li>{item}{inner}</li>")
    out.append("</ul>")
    return i


def _paragraph(lines: Sequence[str], i: int, out: list[str]) -> int:
    text = [inline(lines[i])]
    i += 1
    while i < len(lines) and lines[i].strip() and not re.match(r"^(#|- |!\[)", lines[i]):
        text.append(inline(lines[i]))
        i += 1
    out.append(f"<p>{' '.join(text)}</p>")
    return i
