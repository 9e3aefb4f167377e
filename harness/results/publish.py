"""Publishing a table: the one way every table is written, whoever made it.

``harness leaderboard`` and every finished run (``harness.results.leaderboard.regenerate``),
``harness sweep`` and ``harness tune --vary`` (``harness.results.ablation``) and the refresh of
every table (``harness.results.refresh``) publish through ``publish``. Under the table's lock
it makes the table's data (so records read then include every run finished before), finds
where the table may go without losing a run (``harness.results.tables.place``), and writes
there its pictures, its JSON twin, its markdown (``harness.results.markdown``), its page
(``harness.results.pages``) and the folder's index, each atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from filelock import FileLock

from harness.pictures.charts import heatmap
from harness.results.markdown import leaderboard_picture, render
from harness.results.pages import write_page
from harness.results.tables import Say, contents_of, heatmap_path, place, write_table

#: A table's data (its JSON twin), made when its lock is held.
Make = Callable[[], Mapping[str, Any]]


def lock(table: Path) -> FileLock:
    """The lock a table is published under (``<table>.md.lock``)."""
    return FileLock(str(table) + ".lock")


def publish(table: Path, make: Make, runs_dir: Path, say: Say | None = None) -> Path | None:
    """Publish the table at ``table`` from the data ``make`` returns (``runs_dir``: where its
    records are); return the path written: ``table``, or the runs folder's own copy when that
    would lose runs (``say`` hears the one line), or None when neither may be written."""
    table = Path(table)
    table.parent.mkdir(parents=True, exist_ok=True)
    with lock(table):
        data = make()
        target = place(table, contents_of(data), Path(runs_dir), say)
        if target is None:
            return None
        if target == table:
            _write(target, data, Path(runs_dir))
        else:
            with lock(target):
                _write(target, data, Path(runs_dir))
    return target


def _write(table: Path, data: Mapping[str, Any], runs_dir: Path) -> None:
    """The table's pictures (a leaderboard's heatmap), twin and markdown, then its page and the
    folder's index."""
    picture = leaderboard_picture(table, data) if data.get("kind") == "leaderboard" else None
    draws = [lambda path: _heatmap(data, heatmap_path(path))] if picture else []
    write_table(table, render(data, picture), data, draws)
    write_page(table, data, runs_dir)


def _heatmap(data: Mapping[str, Any], path: Path) -> Path:
    """A leaderboard's per-class Dice, every entry a row (``harness.pictures.charts``)."""
    rows = data["rows"]
    return heatmap([r["entry"] for r in rows], [r["per_class_dice"] for r in rows], path)
