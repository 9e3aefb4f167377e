"""A table's files, and never losing a row: its JSON twin (its bytes, reading it) and where a
table may be written.

Every table this project writes (a benchmark's leaderboard, an ablation) has a twin beside
it: ``<table>.json`` holds its rows as data (each row's statistics and the records it was
made from, by their path inside the runs folder). The markdown and the page are views of
the twin, and every reader reads the twin, never the rendered markdown. A table is
published through ``harness.results.publish``, which places and writes it with what is here.

A twin is input too (another table's, in a folder others write to): every reader checks it
against its schema (``harness.results.schema``), and one that fails is named in one line with
the field that is wrong, never a traceback (``inspect_twin``, ``load_twin``).

A table is regenerated from one runs folder. When the table already there holds runs that
this folder has no record of (the published tables of a fresh clone, made from
``leaderboards/records``, against a first ``harness run`` in ``./runs``), writing would drop
them without a word. It is left as it is instead, and this command's table goes beside its
runs, under ``<runs folder>/leaderboards/``, with one line saying so; a table is replaced
with fewer runs only when the missing ones are named in its header as records that could
not be used, or when its user deletes it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, hidden, visible
from harness.results.legacy import run_counts
from harness.results.records import read_json
from harness.results.schema import TWINS, problem

#: The twin's format; a reader refuses a twin of another major format.
FORMAT = "harness-table/1"
#: Where a runs folder's own tables go when the ones in --leaderboards-dir are kept.
LOCAL_TABLES = "leaderboards"

#: Hears the one line a kept table is worth (``harness.engine.events.TrainObserver.message``).
Say = Callable[[str], None]

_log = logging.getLogger("harness")


def twin_path(table: Path) -> Path:
    """``<table>.json`` beside ``<table>.md``."""
    return Path(table).with_suffix(".json")


def heatmap_path(board: Path) -> Path:
    """``<table>.heatmap.png`` beside a leaderboard's ``<table>.md``: its per-class Dice."""
    return Path(board).with_name(f"{Path(board).stem}.heatmap.png")


def inspect_twin(table: Path) -> dict[str, Any] | str | None:
    """The JSON twin of ``table`` (``<table>.json``): its data when it is a twin this harness
    can use (``harness.results.schema``: every field a reader uses, checked); None when there
    is no such file, or it is not a table's twin (no ``"format": "harness-table/..."``); else
    why it cannot be used, in one phrase (``rows[0].mean_dice: not a number``)."""
    path = twin_path(table)
    if not os.path.lexists(path):
        return None
    if any(hidden(c) for c in path.name):
        return "its name holds a line break, a control character or bytes that are not UTF-8"
    data = read_json(path)
    if isinstance(data, str):
        return data
    found = data.get("format") if isinstance(data, dict) else None
    if not isinstance(found, str) or not found.startswith("harness-table/"):
        return None
    if found.split(".")[0] != FORMAT:
        return (
            f"a twin of format {visible(repr(found), 60)}, which this harness cannot read (it "
            f"reads {FORMAT!r}); regenerate it with this harness's `harness leaderboard`"
        )
    model = TWINS.get(data.get("kind"))  # type: ignore[arg-type]
    if model is None:
        kinds = ", ".join(TWINS)
        return f"kind: {visible(repr(data.get('kind')), 40)} is not one of {kinds}"
    wrong = problem(model, data)
    return data if wrong is None else wrong


def read_twin(table: Path) -> dict[str, Any] | None:
    """The JSON twin of ``table`` (None when there is none, or it cannot be used)."""
    found = inspect_twin(table)
    return found if isinstance(found, dict) else None


def load_twin(path: Path) -> dict[str, Any]:
    """The twin at ``path`` (a ``<table>.json``) for a reader that needs it: a file that cannot
    be read, is not JSON, is not a twin of this format or fails the twin's schema is a
    ``HarnessError`` naming it and what is wrong, in one line."""
    path = Path(path)
    if path.is_dir():
        raise HarnessError(f"{visible(path)}: is a folder; pass a table's .json (or .md) file")
    found = inspect_twin(path)
    if found is None:
        if not os.path.lexists(path):
            raise HarnessError(f"{visible(path)}: cannot read (No such file or directory)")
        raise HarnessError(
            f'{visible(path)}: not a table\'s JSON twin (no "format": "{FORMAT}"); '
            "pass a file written by `harness leaderboard`, `sweep` or `tune`"
        )
    if isinstance(found, str):
        if found.startswith(("is not valid JSON", "cannot be read", "is not a plain")):
            raise HarnessError(f"{visible(path)}: not a table's JSON twin ({found})")
        raise HarnessError(f"{visible(path)}: {found}")
    return found


def twin_text(data: Mapping[str, Any]) -> str:
    """A twin's bytes: sorted keys, fixed indent, so the same rows give the same bytes."""
    text = json.dumps({"format": FORMAT, **data}, indent=1, sort_keys=True, ensure_ascii=False)
    return text + "\n"


@dataclass(frozen=True)
class Contents:
    """What a regenerated table holds, for the check against the table already there."""

    #: Each succeeded run in it, by its record's path inside the runs folder.
    runs: frozenset[str]
    #: Runs of this table that could not be used and are named in its header.
    excluded: frozenset[str]
    #: Runs per row, keyed by the row's first column (an old table without a twin is
    #: compared by these).
    counts: Mapping[str, int]


def contents_of(data: Mapping[str, Any]) -> Contents:
    """What a table's data (a leaderboard's twin, or an ablation's) holds, as ``place`` checks
    it."""
    name = "value" if data.get("kind") == "ablation" else "entry"
    return Contents(
        runs=frozenset(run for row in data["rows"] for run in row["runs"]),
        excluded=frozenset(u["path"] for u in data["excluded"]),
        counts={row[name]: row["n"] for row in data["rows"]},
    )


def lost_runs(table: Path, new: Contents, say: Say | None = None) -> int:
    """How many runs of the table at ``table`` the ``new`` one would leave out unnamed (read
    from its twin; a table from before twins, or one whose twin cannot be used (``say`` hears
    why), from its markdown: ``harness.results.legacy``)."""
    twin = inspect_twin(table)
    if isinstance(twin, dict):
        old = {run for row in twin["rows"] for run in row["runs"]}
        return len(old - new.runs - new.excluded)
    if isinstance(twin, str) and say is not None:
        say(f"{visible(twin_path(table))}: {twin}; its runs are counted from its markdown")
    if not Path(table).is_file():
        return 0
    counts = run_counts(Path(table).read_text(encoding="utf-8"))
    lost = sum(max(0, n - new.counts.get(name, 0)) for name, n in counts.items())
    return max(0, lost - len(new.excluded))


def place(table: Path, new: Contents, runs_dir: Path, say: Say | None = None) -> Path | None:
    """Where ``new`` may be written: ``table`` itself, or (when that would lose runs) the
    same name under ``<runs_dir>/leaderboards/``, said in one line; None when that one too
    would lose runs (then nothing is written, and that is said)."""
    tell = say or _log.warning
    lost = lost_runs(table, new, tell)
    if not lost:
        return table
    local = Path(runs_dir) / LOCAL_TABLES / Path(table).name
    if Path(table).resolve() != local.resolve() and not lost_runs(local, new):
        tell(
            f"{table} is left as it is: {_runs(lost)} in it {_have(lost)} no record under "
            f"{runs_dir}; this command's table is {local} (delete {table} to let it be "
            "replaced, or pass --runs-dir where all its records are)"
        )
        return local
    tell(
        f"{table} is left as it is: {_runs(lost)} in it {_have(lost)} no record under "
        f"{runs_dir} (delete it to let it be replaced, or pass --runs-dir where its records are)"
    )
    return None


def _runs(count: int) -> str:
    return f"{count} run{'s' if count != 1 else ''}"


def _have(count: int) -> str:
    return "have" if count != 1 else "has"
