"""Each table's web page, ``<table>.html`` beside ``<table>.md``: a view of its JSON twin.

The page is made from the twin's data, never from the rendered markdown, and shows what the
markdown shows: the same notes (``harness.results.markdown.notes``) and the same cells (the
columns of ``harness.results.columns``). It sorts by the twin's unrounded values, filters by
entry text, by component and (a leaderboard) by a parameter or cost range, and opens each
row's drill-down (``harness.results.drill``). ``page_text`` makes the page, which
``harness.results.publish`` writes with the table's other files; ``write_compare_page`` writes
``harness compare --html``'s page. Same twin and records, same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.atomic import atomic_write_text
from harness.components.kinds import TRAINING_KINDS
from harness.results import columns as cols
from harness.results import plots
from harness.results.columns import minus, number, signed
from harness.results.compare import Comparison, Delta, TableRow
from harness.results.drill import Sources, row_sections
from harness.results.markdown import (
    EMPTY,
    ablation_picture,
    after,
    code,
    escape,
    leaderboard_picture,
    notes,
)
from harness.results.page import (
    Column,
    View,
    ViewRow,
    cell,
    markdown_html,
    plain,
    render,
    static_table,
)
from harness.results.significance import BEST, difference_method
from harness.results.tables import FORMAT, read_twin

#: What an entry's key holds, in order (``harness.components.entry.Entry.key``).
KEY_PARTS = (*(kind.field for kind in TRAINING_KINDS), "encoder")
INDEX_LINK = '<nav><a href="index.html">All tables</a></nav>'

TableData = Mapping[str, Any]


def page_text(table: Path, twin: TableData, runs_dir: Path | None = None) -> str:
    """The page of the table at ``table`` (its ``twin``; ``runs_dir`` where its records are,
    for the drill-downs), as ``harness.results.publish`` writes it beside the table."""
    return render(table_view(table, twin, runs_dir))


def table_view(table: Path, twin: TableData, runs_dir: Path | None = None) -> View:
    """What the page of a leaderboard or an ablation table shows, made from its twin."""
    sources = Sources(Path(table).parent, runs_dir)
    twin = {"format": FORMAT, **twin}  # as the twin's file holds it
    if twin.get("kind") == "ablation":
        return _ablation_view(Path(table), twin, sources)
    if twin.get("kind") == "selection":
        return _selection_view(twin)
    return _leaderboard_view(Path(table), twin, sources)


def _leaderboard_view(table: Path, twin: TableData, sources: Sources) -> View:
    data_rows = list(twin["rows"])
    first = (twin.get("noise") or {}).get("reference") or 0  # the model's leader, else #1
    leader = data_rows[first] if data_rows else None
    label = f"#{leader['rank']} ({leader['entry']})" if leader else ""
    declared = cols.of_table(twin)
    rows = [
        _row(
            declared,
            r,
            text=r["entry"],
            parts=_parts(r.get("key"), r.get("budget")),
            detail=row_sections(r, leader, label, sources),
        )
        for r in data_rows
    ]
    per_class = static_table(
        [c.name for c in cols.PER_CLASS],
        [[c.cell(r) for c in cols.PER_CLASS] for r in data_rows],
        marked=bool(rows),
    )
    following = markdown_html(after(twin, leaderboard_picture(table, twin)))
    labels = [f"#{r['rank']}" for r in data_rows]
    pictures = [plots.forest(data_rows, labels, first if leader else None)]
    if data_rows:
        pictures.append(plots.cost(data_rows, labels))
    return View(
        title=_title(notes(twin)),
        before=INDEX_LINK + "\n" + markdown_html(notes(twin)),
        columns=_columns(declared, rows),
        rows=tuple(rows),
        after=following + "\n" + per_class,
        ranges=_ranges(declared, rows),
        data=twin,
        empty=EMPTY,
        plots=tuple(p for p in pictures if p is not None),
    )


def _ablation_view(table: Path, twin: TableData, sources: Sources) -> View:
    """An ablation's rows, each drilled into through its entry's row of the benchmark's
    leaderboard beside it (per-class Dice, cost), where that twin is there."""
    by_key = _board_rows(table.with_name(f"{twin['benchmark_id']}.md"))
    joined = [_joined(r, by_key.get(r.get("key") or ""), twin.get("budget")) for r in twin["rows"]]
    best = next((j for j in joined if j.get("vs_best") == BEST), None)
    label = f"best ({best['value']})" if best else ""
    sensitivity = ablation_picture(twin)
    declared = cols.of_table(twin)
    rows = [
        _row(
            declared,
            r,
            text=" · ".join(str(x) for x in (r["value"], r.get("entry")) if x),
            parts=_parts(r.get("key"), j.get("budget")),
            detail=row_sections(j, best, label, sources, sensitivity) if r["n"] else [],
        )
        for r, j in zip(twin["rows"], joined, strict=True)
    ]
    values = [str(r["value"]) for r in twin["rows"]]
    forest = plots.forest(twin["rows"], values, (twin.get("noise") or {}).get("reference"))
    return View(
        title=_title(notes(twin)),
        before=INDEX_LINK + "\n" + markdown_html(notes(twin)),
        columns=_columns(declared, rows),
        rows=tuple(rows),
        after=markdown_html(after(twin)),
        ranges=_ranges(declared, rows),
        data=twin,
        plots=() if forest is None else (forest,),
    )


def _selection_view(twin: TableData) -> View:
    """A selection's configurations (``harness select``), each opening its per-class Dice and
    Dice by fold; the forest of their intervals."""
    declared = cols.of_table(twin)
    rows = [
        _row(
            declared,
            r,
            text=r["entry"],
            parts={"tta": r["tta"], "postprocessor": r["postprocessor"]},
            detail=_selection_detail(r),
        )
        for r in twin["rows"]
    ]
    labels = [f"#{r['rank']}" for r in twin["rows"]]
    forest = plots.forest(twin["rows"], labels, (twin.get("noise") or {}).get("reference"))
    return View(
        title=_title(notes(twin)),
        before=INDEX_LINK + "\n" + markdown_html(notes(twin)),
        columns=_columns(declared, rows),
        rows=tuple(rows),
        after=markdown_html(after(twin)),
        ranges=_ranges(declared, rows),
        data=twin,
        plots=() if forest is None else (forest,),
    )


def _selection_detail(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A configuration's drill-down: Dice by fold, per-class Dice, the classes post-processed."""
    folds = [[f"fold {f}", number(d, 4)] for f, d in row["dice_by_fold"].items()]
    classes = [[c, number(d, 4)] for c, d in row["per_class_dice"].items()]
    kept = ", ".join(row.get("kept_for") or []) or "none"
    return [
        {"kind": "table", "title": "Dice by fold", "columns": ["Fold", "Dice"], "rows": folds},
        {"kind": "table", "title": "Per-class Dice", "columns": ["Class", "Dice"], "rows": classes},
        {"kind": "text", "title": "Post-processed classes", "text": kept},
    ]


def _board_rows(board: Path) -> dict[str, Mapping[str, Any]]:
    """The rows of the leaderboard at ``board`` by entry key (none without its twin)."""
    twin = read_twin(board) or {}
    return {r["key"]: r for r in twin.get("rows", [])} if twin.get("kind") == "leaderboard" else {}


#: What an ablation row's drill-down takes from its own table, never from the leaderboard's row
#: (the judgement against the leaderboard's #1 is not the one against the ablation's best).
OWN = ("test", "interval", "rank_band", "vs_leader")


def _joined(row: Mapping[str, Any], board_row: Mapping[str, Any] | None, budget: Any) -> dict:
    """An ablation row with its entry's leaderboard row (its runs, judgement and verdict kept
    its own)."""
    board = {k: v for k, v in (board_row or {}).items() if k not in OWN}
    joined = {**board, **row}
    joined.setdefault("budget", budget)
    return joined


def _row(
    columns: Sequence[cols.Column],
    row: Mapping[str, Any],
    *,
    text: str,
    parts: Mapping[str, str],
    detail: Sequence[Mapping[str, Any]],
) -> ViewRow:
    """One row: each column's cell (the markdown's text) and value (what the page sorts and
    range-filters by; a cell with no value is sorted by its text, unless it shows none; a
    value that does not compare, a contended throughput, is none: left out of the range
    filter, sorted last)."""
    cells = [c.cell(row) for c in columns]
    values = tuple(
        None if c.incomparable is not None and c.incomparable(row) else _value(c.value(row), cell)
        for c, cell in zip(columns, cells, strict=True)
    )
    return ViewRow(
        cells=tuple(cell(c) for c in cells),
        values=values,
        text=text,
        title=text,
        parts=parts,
        detail=tuple(detail),
    )


def _value(value: Any, cell: str) -> Any:
    if value is None or isinstance(value, bool):
        return None if cell == cols.NONE else cell
    return value


def _columns(columns: Sequence[cols.Column], rows: Sequence[ViewRow]) -> tuple[Column, ...]:
    """The page's columns: numeric where the declaration says so and a row has a value."""
    return tuple(
        Column(c.name, c.numeric and any(r.values[i] is not None for r in rows))
        for i, c in enumerate(columns)
    )


def _ranges(columns: Sequence[cols.Column], rows: Sequence[ViewRow]) -> tuple[str, ...]:
    """The range-filterable columns whose values differ between the rows."""
    return tuple(
        c.name for i, c in enumerate(columns) if c.ranged and len({r.values[i] for r in rows}) > 1
    )


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
    return plain(heading)


# harness compare --html


def write_compare_page(result: Comparison, a: Path, b: Path, out: Path) -> Path:
    """``harness compare A B --html OUT``: the two tables aligned row by row, as a page."""
    atomic_write_text(Path(out), render(compare_view(result, a, b)))
    return Path(out)


def benchmark_lines(result: Comparison) -> list[str]:
    """The note of a comparison across benchmarks: the two, and the protocol fields that differ."""
    if not result.differences:
        return []
    return [
        f"- **Benchmarks differ**: A is {code(result.benchmarks[0])}, B is "
        f"{code(result.benchmarks[1])}; " + escape("; ".join(result.differences))
    ]


def compare_view(result: Comparison, a: Path, b: Path) -> View:
    """Each shared row: both Dice, the delta and whether it is within noise; the rows in one
    table only are named under it."""
    rows = [_compare_row(d) for d in result.deltas]
    only = [
        f"- **Only in {side}**: " + "; ".join(code(n) for n in names)
        for side, names in (("A", result.only_a), ("B", result.only_b))
        if names
    ]
    notes = [
        f"# Compare: {escape(Path(b).name)} minus {escape(Path(a).name)}",
        "",
        f"- **A**: {code(Path(a).as_posix())}",
        f"- **B**: {code(Path(b).as_posix())}",
        *benchmark_lines(result),
        f"- **Noise**: {escape(difference_method(result.tested))}",
        *(f"- {escape(reason)}" for reason in result.unmodelled),
        *only,
    ]
    return View(
        title=plain(notes[0][2:]),
        before=markdown_html(notes),
        columns=_columns(cols.COMPARE, rows),
        rows=tuple(rows),
        data={"a": Path(a).as_posix(), "b": Path(b).as_posix(), "kind": "comparison"},
        empty="no row is in both tables",
    )


def _compare_row(d: Delta) -> ViewRow:
    data = d.data()
    components = [kind.field for kind in TRAINING_KINDS]
    parts = dict(zip(components, re.sub(r" \(.*?\)", "", d.entry).split(" · "), strict=False))
    detail = [{"kind": "table", "title": "A and B", **_side_by_side(d.a, d.b)}]
    parts["noise"] = data["noise"]
    return _row(cols.COMPARE, data, text=d.entry, parts=parts, detail=detail)


def _ends(a: TableRow, b: TableRow, end: int) -> tuple[float | None, float | None]:
    """One end of each row's 95 % interval (None where a table has none)."""
    x = None if a.interval is None else a.interval[end]
    y = None if b.interval is None else b.interval[end]
    return x, y


def _side_by_side(a: TableRow, b: TableRow) -> dict[str, Any]:
    lines = [
        ("Mean Dice", a.mean, b.mean, 4),
        ("95 % CI, low", *_ends(a, b, 0), 4),
        ("95 % CI, high", *_ends(a, b, 1), 4),
        ("± (over seeds)", a.noise, b.noise, 4),
        ("n", a.n, b.n, 0),
        ("Params (M)", a.params_m, b.params_m, 2),
        ("Train img/s", a.images_per_s, b.images_per_s, 1),
        ("Peak mem (MB)", a.peak_mb, b.peak_mb, 0),
    ]
    rows = [
        [name, number(x, digits), number(y, digits), signed(minus(y, x), digits)]
        for name, x, y, digits in lines
    ]
    return {"columns": ["", "A", "B", "B − A"], "rows": rows}
