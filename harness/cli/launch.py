"""What ``run``, ``sweep`` and ``tune`` share: checking ``--jobs``, quiet ranks, the
preparation bar, what the dispatcher reports to, the ``--dry-run`` listing, a board's row."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.cli import bars
from harness.cli.progress import TrainingProgress
from harness.cli.root import err, out
from harness.engine.events import TrainObserver
from harness.errors import HarnessError
from harness.runs.requests import RunRequest

if TYPE_CHECKING:
    from harness.runs.planning import Planner


def check_jobs(request: RunRequest) -> None:
    """``--jobs``/``--cluster`` are checked before any work (a cluster must answer, unless
    this is a ``--dry-run``, which needs none)."""
    if request.launch.jobs is not None and request.launch.jobs < 1:
        raise HarnessError(f"--jobs {request.launch.jobs}: give a positive number of runs at once")
    if request.launch.cluster and not request.launch.dry_run:
        from harness.runs.executors import check_cluster

        check_cluster(request.launch.cluster)


def dry_run(plans: list[Any]) -> None:
    """``--dry-run``: the runs that would train, those skipped, the estimate; nothing trains."""
    from harness.runs.dispatch import schedule

    for line in schedule(plans).lines():
        out.print(line, markup=False, emoji=False, highlight=False, soft_wrap=True)


@contextmanager
def preparing() -> Iterator[Planner]:
    """A planner whose dataset preparation shows a bar while the block runs (every input
    checked, the data ready, before anything trains); later plans reuse what it prepared."""
    from harness.runs.planning import Planner

    planner = Planner()
    with bars.bar("Preparing the dataset", err) as progress:
        planner.progress = progress
        yield planner
    planner.progress = None


@contextmanager
def reporting(request: RunRequest) -> Iterator[tuple[TrainObserver, bars.Update | None]]:
    """What the dispatcher reports to: the training bars and lines, and with
    ``--jobs``/``--cluster`` a bar of runs done."""
    observer = TrainingProgress(err)
    if request.launch.jobs or request.launch.cluster:
        with bars.bar("Runs", err) as runs:
            yield observer, runs
    else:
        yield observer, None


def quiet_ranks() -> None:
    """In a rank other than 0 of a data-parallel run, this process's consoles go quiet: the
    main rank is the one voice (errors still show, marked with their rank: ``root.say``)."""
    if os.environ.get("RANK", "0") != "0":
        err.quiet = out.quiet = True


def row_of(board: Path, label: str) -> str:
    """The header line and the row of ``label`` of a written table (from its JSON twin)."""
    from harness.results.markdown import row_text

    return row_text(board, label)
