"""Each table's web page, ``<table>.html`` beside ``<table>.md``: a view of its JSON twin.

The page shows the markdown's own notes and cells; it sorts by the twin's unrounded values,
filters by entry text, by component and (a leaderboard) by a parameter or cost range, and
opens each row's drill-down (``harness.results.drill``). ``write_pages`` writes the page,
then the folder's ``index.html`` (``harness.results.site``); ``write_compare_page`` writes
``harness compare --html``'s page. Same twin and records, same bytes.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.atomic import atomic_write_text
from harness.components.kinds import COMPONENT_KINDS
from harness.results.compare import Comparison, Delta, TableRow
from harness.results.drill import Sources, row_sections
from harness.results.page import (
    Column,
    Markdown,
    View,
    ViewRow,
    inline,
    markdown_html,
    page_path,
    pictures,
    render,
    split_markdown,
)
from harness.results.significance import DIFFERENCE_METHOD
from harness.results.site import write_index
from harness.results.tables import FORMAT, read_twin

#: Where each leaderboard column's value is in a twin's row (a path of keys).
LEADERBOARD_FIELDS: dict[str, tuple[str, ...]] = {
    "#": ("rank",),
    "Entry": ("entry",),
    "Mean Dice": ("mean_dice",),
    "±": ("noise",),
    "n": ("n",),
    "vs #1": ("vs_leader",),
    "Worst class": ("worst_class", "dice"),
    "Small-bone Dice": ("small_bone_dice",),
    "Params (M)": ("params_m",),
    "GFLOPs": ("gflops",),
    "Train img/s": ("train_images_per_s",),
    "Infer img/s": ("inference_images_per_s",),
    "Peak mem (MB)": ("peak_memory_mb",),
    "Device-hours": ("device_hours",),
    "Device": ("device",),
}
#: An ablation's columns after its first (the value varied).
ABLATION_FIELDS: dict[str, tuple[str, ...]] = {
    "Dice": ("mean_dice",),
    "±": ("std",),
    "n": ("n",),
    "vs best": ("vs_best",),
}
#: The leaderboard columns offered a range filter (where their values differ).
RANGES = ("Params (M)", "Device-hours")
#: What an entry's key holds, in order (``harness.components.entry.Entry.key``).
KEY_PARTS = (*(kind.field for kind in COMPONENT_KINDS), "encoder")
INDEX_LINK = '<nav><a href="index.html">All tables</a></nav>'


def write_pages(
    table: Path, text: str, twin: Mapping[str, Any], runs_dir: Path | None = None
) -> Path:
    """The page of the table at ``table`` (its markdown ``text``, its ``twin``; ``runs_dir``
    where its records are, for the drill-downs), then the folder's index; returns the page."""
    page = page_path(table)
    atomic_write_text(page, render(table_view(table, text, twin, runs_dir)))
    write_index(page.parent)
    return page


def table_view(
    table: Path, text: str, twin: Mapping[str, Any], runs_dir: Path | None = None
) -> View:
    """What the page of a leaderboard or an ablation table shows."""
    md = split_markdown(text)
    sources = Sources(Path(table).parent, runs_dir)
    twin = {"format": FORMAT, **twin}  # as the twin's file holds it
    if twin.get("kind") == "ablation":
        return _ablation_view(Path(table), md, twin, sources)
    return _leaderboard_view(md, twin, sources)


def _leaderboard_view(md: Markdown, twin: Mapping[str, Any], sources: Sources) -> View:
    data_rows = list(twin["rows"])
    leader = data_rows[0] if data_rows else None
    label = f"#1 ({leader['entry']})" if leader else ""
    rows = [
        _row(
            md.header,
            md.rows[i],
            lambda name, r=r: _field(r, LEADERBOARD_FIELDS.get(name)),
            text=r["entry"],
            parts=_parts(r.get("key"), r.get("budget")),
            detail=row_sections(r, leader, label, sources),
        )
        for i, r in enumerate(data_rows)
    ]
    columns = _columns(md.header, rows)
    ranges = tuple(
        name
        for name in RANGES
        if name in md.header and len({r.values[md.header.index(name)] for r in rows}) > 1
    )
    entries = [r["entry"] for r in data_rows]
    return View(
        title=_title(md.before),
        before=INDEX_LINK + "\n" + markdown_html(md.before),
        columns=columns,
        rows=tuple(rows),
        after=markdown_html(md.after, entries),
        ranges=ranges,
        data=twin,
        empty="no succeeded runs yet",
    )


def _ablation_view(table: Path, md: Markdown, twin: Mapping[str, Any], sources: Sources) -> View:
    """An ablation's rows, each drilled into through its entry's row of the benchmark's
    leaderboard beside it (per-class Dice, cost), where that twin is there."""
    by_key = _board_rows(table.with_name(f"{twin['benchmark_id']}.md"))
    joined = [_joined(r, by_key.get(r.get("key") or ""), twin.get("budget")) for r in twin["rows"]]
    best = next((j for j in joined if j.get("vs_best") == "best"), None)
    label = f"best ({best['value']})" if best else ""
    shown = pictures(md.after)
    sensitivity = shown[0] if twin.get("budget") and shown else None
    fields = {md.header[0]: ("value",), **ABLATION_FIELDS} if md.header else {}
    rows = [
        _row(
            md.header,
            md.rows[i],
            lambda name, r=r: _field(r, fields.get(name)),
            text=" · ".join(str(x) for x in (r["value"], r.get("entry")) if x),
            parts=_parts(r.get("key"), j.get("budget")),
            detail=row_sections(j, best, label, sources, sensitivity) if r["n"] else [],
        )
        for i, (r, j) in enumerate(zip(twin["rows"], joined, strict=True))
    ]
    return View(
        title=_title(md.before),
        before=INDEX_LINK + "\n" + markdown_html(md.before),
        columns=_columns(md.header, rows),
        rows=tuple(rows),
        after=markdown_html(md.after),
        data=twin,
    )


def _board_rows(board: Path) -> dict[str, Mapping[str, Any]]:
    """The rows of the leaderboard at ``board`` by entry key (none without its twin)."""
    twin = read_twin(board) or {}
    return {r["key"]: r for r in twin.get("rows", [])} if twin.get("kind") == "leaderboard" else {}


def _joined(row: Mapping[str, Any], board_row: Mapping[str, Any] | None, budget: Any) -> dict:
    """An ablation row with its entry's leaderboard row (its runs and verdict kept its own;
    the test against the leaderboard's #1 left out)."""
    joined = {**(board_row or {}), **row}
    joined.pop("test", None)
    joined.setdefault("budget", budget)
    return joined


def _row(
    header: Sequence[str],
    cells: Sequence[str],
    value: Callable[[str], Any],
    *,
    text: str,
    parts: Mapping[str, str],
    detail: Sequence[Mapping[str, Any]],
) -> ViewRow:
    """One row: the markdown's cells, and each column's value (the cell's number when the
    twin has no field for it)."""
    if len(cells) != len(header):
        raise ValueError(f"a table row has {len(cells)} cells for {len(header)} columns")
    values = tuple(
        found if (found := value(name)) is not None or cell == "—" else _cell_value(cell)
        for name, cell in zip(header, cells, strict=True)
    )
    return ViewRow(
        cells=tuple(inline(c) for c in cells),
        values=values,
        text=text,
        title=text,
        parts=parts,
        detail=tuple(detail),
    )


def _columns(header: Sequence[str], rows: Sequence[ViewRow]) -> tuple[Column, ...]:
    """The header's columns; numeric where every value there is a number."""

    def numeric(i: int) -> bool:
        found = [r.values[i] for r in rows if r.values[i] is not None]
        return bool(found) and all(isinstance(v, int | float) for v in found)

    return tuple(Column(name, numeric(i)) for i, name in enumerate(header))


def _field(row: Mapping[str, Any], path: tuple[str, ...] | None) -> Any:
    found: Any = row
    for key in path or ():
        found = found.get(key) if isinstance(found, Mapping) else None
    if path is None or isinstance(found, bool):
        return None
    return found


def _cell_value(cell: str) -> float | str | None:
    text = cell.strip().rstrip("ᵇ")
    if text in ("", "—"):
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _parts(key: str | None, budget: Any) -> dict[str, str]:
    """The components an entry's key names (and whether it was tuned), for the choices."""
    parts = {
        name: value for name, value in zip(KEY_PARTS, (key or "").split("|"), strict=False) if value
    }
    if key and isinstance(budget, str):
        parts["budget"] = (
            "tuned" if budget.startswith("tuned") else "by hand" if "hand" in budget else "fixed"
        )
    return parts


def _title(lines: Sequence[str]) -> str:
    heading = next((line[2:] for line in lines if line.startswith("# ")), "Table")
    return heading.replace("`", "")


# harness compare --html


def write_compare_page(result: Comparison, a: Path, b: Path, out: Path) -> Path:
    """``harness compare A B --html OUT``: the two tables aligned row by row, as a page."""
    atomic_write_text(Path(out), render(compare_view(result, a, b)))
    return Path(out)


#: The compare page's columns (as ``harness compare`` prints them).
COMPARE_COLUMNS = ("Entry", "A Dice", "B Dice", "Δ Dice", "Noise", "Δ img/s", "Δ peak MB")


def compare_view(result: Comparison, a: Path, b: Path) -> View:
    """Each shared row: both Dice, the delta and whether it is within noise; the rows in one
    table only are named under it."""
    rows = [_compare_row(d) for d in result.deltas]
    only = [
        f"- **Only in {side}**: " + "; ".join(f"`{n}`" for n in names)
        for side, names in (("A", result.only_a), ("B", result.only_b))
        if names
    ]
    notes = [
        f"# Compare: {Path(b).name} minus {Path(a).name}",
        "",
        f"- **A**: `{Path(a).as_posix()}`",
        f"- **B**: `{Path(b).as_posix()}`",
        f"- **Noise**: {DIFFERENCE_METHOD}",
        *only,
    ]
    return View(
        title=notes[0][2:].replace("`", ""),
        before=markdown_html(notes),
        columns=_columns(COMPARE_COLUMNS, rows),
        rows=tuple(rows),
        data={"a": Path(a).as_posix(), "b": Path(b).as_posix(), "kind": "comparison"},
        empty="no row is in both tables",
    )


def _compare_row(d: Delta) -> ViewRow:
    noise = {True: "within noise", False: "real", None: "noise unknown"}[d.within_noise]
    values = (
        d.entry,
        d.a.mean,
        d.b.mean,
        d.dice,
        noise,
        d.cost("images_per_s"),
        d.cost("peak_mb"),
    )
    cells = (
        html.escape(d.entry),
        f"{d.a.mean:.4f}",
        f"{d.b.mean:.4f}",
        f"{d.dice:+.4f}",
        noise,
        _signed(d.cost("images_per_s"), 1),
        _signed(d.cost("peak_mb"), 0),
    )
    components = [kind.field for kind in COMPONENT_KINDS]
    parts = dict(zip(components, re.sub(r" \(.*?\)", "", d.entry).split(" · "), strict=False))
    detail = [{"kind": "table", "title": "A and B", **_side_by_side(d.a, d.b)}]
    return ViewRow(cells, values, d.entry, d.entry, {**parts, "noise": noise}, detail)


def _side_by_side(a: TableRow, b: TableRow) -> dict[str, Any]:
    lines = [
        ("Mean Dice", a.mean, b.mean, 4),
        ("±", a.noise, b.noise, 4),
        ("standard error", a.se, b.se, 4),
        ("n", a.n, b.n, 0),
        ("Params (M)", a.params_m, b.params_m, 2),
        ("Train img/s", a.images_per_s, b.images_per_s, 1),
        ("Peak mem (MB)", a.peak_mb, b.peak_mb, 0),
    ]
    rows = [
        [name, _plain(x, digits), _plain(y, digits), _signed(_minus(y, x), digits)]
        for name, x, y, digits in lines
    ]
    return {"columns": ["", "A", "B", "B − A"], "rows": rows}


def _minus(y: float | None, x: float | None) -> float | None:
    return None if x is None or y is None else y - x


def _plain(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _signed(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:+.{digits}f}"
