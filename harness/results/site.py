"""``index.html`` in a leaderboards folder: every benchmark with its protocol, dataset and row
count, linking its leaderboard's page and its ablation tables' (and selection's) pages.

It is made from the folder's JSON twins alone (sorted; the same twins give the same bytes)
and rewritten whenever a table's page is, under a lock of its own (``lock``): the last writer
has read every twin written before it. A twin in the folder that fails its schema (another
table's, damaged or hand-edited) is named in one line and left out of the index; it never
stops a table from being written.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from harness.errors import visible
from harness.locking import Lock
from harness.results.page import Column, View, ViewRow, markdown_html, page_path, render
from harness.results.tables import Say, inspect_twin

INDEX = "index.html"
#: The index's columns.
COLUMNS = (
    Column("Benchmark"),
    Column("Protocol"),
    Column("Dataset"),
    Column("Rows", numeric=True),
    Column("Runs", numeric=True),
    Column("Leader"),
    Column("Mean Dice", numeric=True),
    Column("Ablations"),
)
NOTES = [
    "# Leaderboards",
    "",
    "Every table in this folder, regenerated from run records by `harness leaderboard`; "
    "one benchmark (a dataset under a protocol) per row. Each page is self-contained: it "
    "loads nothing from the network and works from a file on a machine without one.",
]


def index_path(folder: Path) -> Path:
    return Path(folder) / INDEX


def lock(folder: Path) -> Lock:
    """The lock the folder's index is written under (``index.html.lock``, removed when released)."""
    return Lock(str(index_path(folder)) + ".lock")


def index_text(
    folder: Path, new: Mapping[Path, Mapping[str, Any]] | None = None, say: Say | None = None
) -> str:
    """The index of the tables in ``folder``, from their twins (``new``: tables about to be
    written, by their ``.md`` path, with their data; ``say`` hears each twin left out)."""
    return render(index_view(Path(folder), new, say))


def twins(
    folder: Path, new: Mapping[Path, Mapping[str, Any]] | None = None, say: Say | None = None
) -> list[tuple[Path, Mapping[str, Any]]]:
    """Each table in ``folder`` (its ``.md`` path) with its twin, sorted by name: those on
    disk that pass their schema (``say`` hears each that does not) and those in ``new``."""
    new = {Path(table): data for table, data in (new or {}).items()}
    found: dict[Path, Mapping[str, Any]] = {}
    for twin in sorted(Path(folder).glob("*.json")):
        table = twin.with_suffix(".md")
        if table in new:
            continue
        data = inspect_twin(table)
        if isinstance(data, str) and say is not None:
            say(f"{visible(twin)}: {data}; left out of {index_path(folder).name}")
        elif isinstance(data, dict):
            found[table] = data
    found.update(new)
    return sorted(found.items(), key=lambda item: item[0].name)


def index_view(
    folder: Path, new: Mapping[Path, Mapping[str, Any]] | None = None, say: Say | None = None
) -> View:
    """One row per benchmark with a table in ``folder``."""
    boards: dict[str, tuple[Path, Mapping[str, Any]]] = {}
    ablations: dict[str, list[Path]] = defaultdict(list)
    tables = twins(folder, new, say)
    for table, data in tables:
        if data["kind"] == "leaderboard":
            boards[data["benchmark"]["id"]] = (table, data)
        else:
            ablations[str(data["benchmark_id"])].append(table)
    rows = [
        _row(bench, boards.get(bench), ablations[bench]) for bench in sorted({*boards, *ablations})
    ]
    return View(
        title="Leaderboards",
        before=markdown_html(NOTES),
        columns=COLUMNS,
        rows=tuple(rows),
        data={"kind": "index", "tables": [t.name for t, _ in tables]},
        empty="no tables yet",
    )


def _row(
    bench: str, board: tuple[Path, Mapping[str, Any]] | None, ablations: Sequence[Path]
) -> ViewRow:
    links = ", ".join(_link(t, _beside(t)) for t in ablations) or "—"
    if board is None:
        cells = (html.escape(bench), "—", "—", "—", "—", "—", "—", links)
        return ViewRow(cells, (bench, None, None, None, None, None, None, None), bench, bench)
    table, data = board
    protocol, dataset = data["benchmark"]["protocol"], data["benchmark"]["dataset"]
    rows = data["rows"]
    leader = rows[0] if rows else None
    values = (
        bench,
        protocol["label"],
        dataset["name"],
        len(rows),
        sum(int(r["n"]) for r in rows),
        leader["entry"] if leader else None,
        leader["mean_dice"] if leader else None,
        None,
    )
    cells = (
        _link(table, bench),
        f"{html.escape(protocol['label'])} <code>{html.escape(protocol['hash'])}</code>",
        html.escape(dataset["name"]),
        str(values[3]),
        str(values[4]),
        html.escape(leader["entry"]) if leader else "—",
        f"{leader['mean_dice']:.4f}" if leader else "—",
        links,
    )
    text = " ".join(str(v) for v in (bench, protocol["label"], dataset["name"], values[5]) if v)
    parts = {"protocol": str(protocol["label"]), "dataset": str(dataset["name"])}
    return ViewRow(cells, values, text, bench, parts)


def _beside(table: Path) -> str:
    """A table beside a leaderboard, as the index names it: an ablation's axis (``loss``,
    ``loss-tuned``), or ``select`` (``harness select``)."""
    stem = table.stem
    return stem.split(".ablation-", 1)[1] if ".ablation-" in stem else stem.rsplit(".", 1)[-1]


def _link(table: Path, label: str) -> str:
    return f'<a href="{quote(page_path(table).name)}">{html.escape(label)}</a>'
