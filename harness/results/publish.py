"""Publishing a table: the one way every table is written, whoever made it.

``harness leaderboard`` and every finished run (``harness.results.leaderboard.regenerate``),
``harness sweep`` and ``harness tune --vary`` (``harness.results.ablation``) and the refresh of
every table (``harness.results.refresh``) publish through ``publish``. Under the table's lock
it makes the table's data (so records read then include every run finished before), finds
where the table may go without losing a run (``harness.results.tables.place``), and writes
there its pictures, its JSON twin, its markdown (``harness.results.markdown``), its page
(``harness.results.pages``) and the folder's index (``harness.results.site``).

All or nothing: every one of those files is rendered in memory first (a failure while
rendering writes nothing), then written together (``harness.atomic.atomic_write_files``: each
to a temp file, and only when all are on disk, each renamed over its own), so a reader finds
the earlier set or the new one, never a new twin beside an old page. The locks remove their
files when released (``harness.locking``): no command leaves a ``.lock`` file behind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.atomic import atomic_write_files
from harness.locking import Lock
from harness.pictures.charts import heatmap_png
from harness.results.markdown import leaderboard_picture, render
from harness.results.page import page_path
from harness.results.pages import page_text
from harness.results.site import index_path, index_text
from harness.results.site import lock as index_lock
from harness.results.tables import Say, contents_of, heatmap_path, place, twin_path, twin_text

#: A table's data (its JSON twin), made when its lock is held.
Make = Callable[[], Mapping[str, Any]]


def lock(table: Path) -> Lock:
    """The lock a table is published under (``<table>.md.lock``, removed when released)."""
    return Lock(str(table) + ".lock")


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
            _write(target, data, Path(runs_dir), say)
        else:
            with lock(target):
                _write(target, data, Path(runs_dir), say)
    return target


def _write(table: Path, data: Mapping[str, Any], runs_dir: Path, say: Say | None = None) -> None:
    """The table's pictures (a leaderboard's heatmap), twin, markdown and page, and the
    folder's index with it: all rendered, then all written."""
    files = views(table, data, runs_dir)
    folder = table.parent
    with index_lock(folder):
        index = index_text(folder, {table: data}, say)
        atomic_write_files({**files, index_path(folder): index.encode("utf-8")})


def views(table: Path, data: Mapping[str, Any], runs_dir: Path) -> dict[Path, bytes]:
    """Every file of the table at ``table`` but the folder's index, rendered: path to bytes."""
    picture = leaderboard_picture(table, data) if data.get("kind") == "leaderboard" else None
    files: dict[Path, bytes] = {}
    if picture:
        files[heatmap_path(table)] = _heatmap(data)
    files[twin_path(table)] = twin_text(data).encode("utf-8")
    files[table] = render(data, picture).encode("utf-8")
    files[page_path(table)] = page_text(table, data, runs_dir).encode("utf-8")
    return files


def _heatmap(data: Mapping[str, Any]) -> bytes:
    """A leaderboard's per-class Dice, every entry a row (``harness.pictures.charts``)."""
    rows = data["rows"]
    return heatmap_png([r["entry"] for r in rows], [r["per_class_dice"] for r in rows])
