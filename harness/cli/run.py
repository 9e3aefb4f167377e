"""``harness run``: train an entry on its benchmark's seeds; per-class Dice and its row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.cli import launch, options
from harness.cli.root import err, line, out, text
from harness.cli.tables import per_class_table
from harness.errors import NotWritten
from harness.runs.requests import RunRequest


@options.request_options()
def run(request: RunRequest) -> None:
    """Train an entry on a benchmark, print per-class Dice, and update its leaderboard."""
    launch.quiet_ranks()
    request.check_early()  # a bad protocol, name or parameter: one line before torch loads
    executor = launch.executor(request)
    with launch.preparing(executor) as planner:  # every input checked, the data prepared once
        resolved = planner.plan(request)
    from harness.engine import distributed
    from harness.runs.dispatch import dispatch

    bench = resolved.benchmark
    dataset = bench.dataset
    cv = bool(bench.protocol.cv_folds)
    err.print(
        text("Benchmark", "bold")
        + text(
            f" {bench.id}\n"
            f"  dataset  {dataset.name} ({dataset.root}), fingerprint {dataset.fingerprint[:16]}\n"
            f"  protocol {bench.protocol.label}, hash {bench.protocol.hash}\n"
            f"  entry    {resolved.entry.label}\n"
            f"  seeds    {', '.join(map(str, resolved.seeds))} on {resolved.device}"
            + (f"\n  folds    {', '.join(map(str, bench.protocol.cv_folds))}" if cv else "")
        ),
        soft_wrap=True,
        highlight=False,
    )
    if request.launch.dry_run:
        return launch.dry_run([resolved], executor)
    unwritten: NotWritten | None = None
    try:
        with launch.reporting(executor) as (observer, runs):
            outcomes = dispatch([resolved], observer, runs, executor)
    except NotWritten as exc:  # every run succeeded; its table is for `harness leaderboard`
        unwritten, outcomes = exc, list(resolved.outcomes)
    finally:
        distributed.shutdown()
    if not resolved.world.is_main:
        return  # the main rank reports (and only it has written the record and the table)
    for path, record in outcomes:
        unit = (
            f"seed {record.seed}"
            if record.fold is None
            else f"fold {record.fold} seed {record.seed}"
        )
        out.print(
            per_class_table(
                record.per_class_dice, f"{unit.capitalize()}: per-class Dice (final epoch)"
            )
        )
        out.print(
            text(f"{unit}: mean Dice ")
            + text(f"{record.mean_dice:.4f}", "bold")
            + f" (best epoch {record.best['epoch']}: {record.best['mean_dice']:.4f}, "
            f"not used for ranking), {record.cost['wall_s'] / 60:.1f} min; record {path}",
            soft_wrap=True,
        )
    if unwritten is not None:
        raise unwritten  # one line, exit 1: the table could not be written
    from harness.results.leaderboard import leaderboard_path

    board = resolved.table or leaderboard_path(resolved.leaderboards_dir, bench.id)
    row = launch.row_of(board, resolved.entry.label)
    line(f"Leaderboard {board}:")
    out.print(row, markup=False, highlight=False, soft_wrap=True)
    _standing(resolved.runs_dir, [record for _, record in outcomes])


def _standing(runs_dir: Path, records: list[Any]) -> None:
    """Where the row would stand among the published runs of its benchmark (a checkout's
    ``leaderboards/``), in one line; nothing when there is no such table, or these records
    are the published ones."""
    from harness.results.standing import PUBLISHED, standing

    if Path(runs_dir).resolve().is_relative_to(PUBLISHED.resolve()):
        return
    found = standing(PUBLISHED, records)
    if found is not None:
        out.print(found.line(), markup=False, highlight=False, soft_wrap=True)
