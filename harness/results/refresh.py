"""``harness leaderboard``: every table of the benchmarks asked for, regenerated from the
records: each benchmark's leaderboard (``harness.results.leaderboard``), then each ablation
table beside it whose JSON twin names its entries (``harness.results.ablation``).

An ablation table whose runs are not all in this runs folder (it was made from another)
is left as it is; one line says how many were. A twin in the folder that fails its schema
(``harness.results.schema``) is named in one line, once, and left as it is; it stops no
other table. A table that cannot be written (a full disk) leaves the one there as it was,
and the others are still written; then ``NotWritten`` names the folder and the tables, in
one line.
"""

from __future__ import annotations

import glob
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.atomic import cannot_write
from harness.errors import HarnessError, NotWritten, visible
from harness.results.ablation import write_ablation_table
from harness.results.designs import design_of, design_table, read_designs, table_of
from harness.results.leaderboard import Report, benchmark_ids, leaderboard_path, regenerate, resolve
from harness.results.records import Unusable, scan_records
from harness.results.tables import Say, contents_of, inspect_twin, lost_runs


def regenerate_all(
    target: str | None,
    runs_dir: Path,
    leaderboards_dir: Path,
    report: Report | None = None,
    say: Say | None = None,
) -> list[Path | None]:
    """The tables named by ``target`` (None: every benchmark with records), each regenerated,
    then their ablation tables; ``report`` hears every record left out once, including (with
    no target) those that belong to no benchmark it could tell. Returns the paths written
    (None for a leaderboard kept as it was, which ``say`` heard). When a table could not be
    written (a full disk), the others are, and then ``NotWritten`` names what was not, with
    the paths that were written as its ``written``."""
    heard: set[Path] = set()
    say = _once(say)

    def once(unusable: Unusable) -> None:
        if unusable.path not in heard and report is not None:
            heard.add(unusable.path)
            report(unusable)

    if target is None and not benchmark_ids(runs_dir):
        _none_usable(runs_dir, scan_records(runs_dir)[1])
    ids = resolve(target, runs_dir)
    if target is not None:
        _has_records(ids[0], Path(runs_dir))
    failed: list[tuple[str, OSError]] = []
    paths = [
        _writing(f"the table of {b}", failed, regenerate, b, runs_dir, leaderboards_dir, once, say)
        for b in ids
    ]
    paths += _ablations(ids, Path(runs_dir), Path(leaderboards_dir), say, failed)
    if target is None:
        for unusable in scan_records(runs_dir)[1]:
            once(unusable)
    if failed:
        what = ", ".join(w for w, _ in failed)
        error = NotWritten(
            f"{cannot_write(failed[0][1])}; not written: {what} (the ones there are kept as "
            "they were; once there is space, run this again)"
        )
        error.written = paths  # type: ignore[attr-defined]  # for the command's "wrote" lines
        raise error
    return paths


def _writing(
    what: str,
    failed: list[tuple[str, OSError]],
    write: Callable[..., Path | None],
    *args: object,
) -> Path | None:
    """``write(*args)``; a write that fails (a full disk) is added to ``failed`` (None)."""
    try:
        return write(*args)
    except OSError as exc:
        failed.append((what, exc))
        return None


def _ablations(
    ids: Sequence[str],
    runs_dir: Path,
    leaderboards_dir: Path,
    say: Say | None,
    failed: list[tuple[str, OSError]],
) -> list[Path | None]:
    """Each ablation table of ``ids``, rebuilt from the records: those whose design is kept
    beside the runs (``harness.results.designs``), and those whose twin is in the folder (a
    table written before designs were kept)."""
    found, unusable = scan_records(runs_dir)
    written: list[Path | None] = []
    kept = 0
    for bench in ids:
        excluded = [
            Unusable(u.path.relative_to(runs_dir), u.reason)
            for u in unusable
            if u.benchmark == bench
        ]
        for table, design in sorted(_designs(bench, runs_dir, leaderboards_dir, say).items()):
            data = table_of(design, found, runs_dir, excluded)
            if lost_runs(table, contents_of(data), say):
                kept += 1
                continue
            written.append(
                _writing(table.name, failed, write_ablation_table, table, data, runs_dir, say)
            )
    if kept and say is not None:
        say(
            f"{kept} ablation table{'s' if kept > 1 else ''} in {leaderboards_dir} left as "
            f"{'they are' if kept > 1 else 'it is'}: made from records not all under {runs_dir}"
        )
    return written


def _designs(
    bench: str, runs_dir: Path, leaderboards_dir: Path, say: Say | None
) -> dict[Path, dict[str, Any]]:
    """The ablation tables of ``bench`` by path, each with its design: kept beside the runs,
    else read from the table's twin; a design or twin that cannot be used is named once."""
    main = leaderboard_path(leaderboards_dir, bench)
    designs, bad = read_designs(runs_dir, bench)
    tables = {design_table(main, d): d for d in designs}
    for twin in sorted(leaderboards_dir.glob(f"{glob.escape(main.stem)}.ablation-*.json")):
        table = twin.with_suffix(".md")
        if table in tables:
            continue
        checked = inspect_twin(table)
        if isinstance(checked, str):
            bad.append(f"{visible(twin)}: {checked}; left as it is")
        elif isinstance(checked, dict) and checked.get("kind") == "ablation":
            tables[table] = design_of(checked)
    for line in bad if say is not None else ():
        say(line)
    return tables


def _once(say: Say | None) -> Say | None:
    """``say``, hearing each line once (a damaged twin is met by every table's index)."""
    if say is None:
        return None
    said: set[str] = set()

    def tell(line: str) -> None:
        if line not in said:
            said.add(line)
            say(line)

    return tell


def _has_records(bench: str, runs_dir: Path) -> None:
    """A benchmark named on the command line has records under ``runs_dir``; else one line
    (naming those that could not be used), before any table or lock is touched."""
    found, unusable = scan_records(runs_dir)
    if any(r.benchmark_id == bench for _, r in found):
        return
    named = "".join(f"; {u}" for u in unusable if u.benchmark == bench)
    raise HarnessError(
        f"no records of benchmark {visible(repr(bench))} under {visible(runs_dir)}; "
        f"run `harness run ...` first or pass --runs-dir{named}"
    )


def _none_usable(runs_dir: Path, unusable: Sequence[Unusable]) -> None:
    """No table can be made: one line, naming the records that could not be used, if any."""
    if not unusable:
        raise HarnessError(f"{runs_dir}: no run records found; pass --runs-dir")
    more = f", and {len(unusable) - 1} more" if len(unusable) > 1 else ""
    raise HarnessError(
        f"{runs_dir}: no run records found that a table can use ({unusable[0]}{more}); "
        "fix or remove them, or pass --runs-dir"
    )
