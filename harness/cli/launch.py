"""What ``run``, ``sweep`` and ``tune`` share: the executor chosen once, quiet ranks, the
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
from harness.runs.requests import RunRequest

if TYPE_CHECKING:
    from harness.runs.executors import Executor
    from harness.runs.planning import Planner


def executor(request: RunRequest) -> Executor:
    """The executor of the command's runs, chosen once, before any work: its own options
    checked (``--jobs``; a ``--cluster`` must answer, unless this is a ``--dry-run``, which
    needs none). The command hands it to the planner and the dispatcher."""
    from harness.runs.executors import choose

    return choose(request)


def dry_run(plans: list[Any], chosen: Executor) -> None:
    """``--dry-run``: the runs that would train, those skipped, the estimate, and how the
    chosen executor would send them (a batch system's script); nothing trains."""
    from harness.runs.dispatch import schedule

    planned = schedule(plans)
    for line in planned.lines() + chosen.preview(planned.to_train):
        out.print(line, markup=False, emoji=False, highlight=False, soft_wrap=True)


@contextmanager
def preparing(chosen: Executor) -> Iterator[Planner]:
    """A planner whose dataset preparation shows a bar while the block runs (every input
    checked, the data ready, before anything trains); later plans reuse what it prepared.
    ``chosen``: the command's executor (whether its runs train elsewhere)."""
    from harness.runs.planning import Planner

    planner = Planner(remote=chosen.remote)
    with bars.bar("Preparing the dataset", err) as progress:
        planner.progress = progress
        yield planner
    planner.progress = None


@contextmanager
def reporting(chosen: Executor) -> Iterator[tuple[TrainObserver, bars.Update | None]]:
    """What the dispatcher reports to: the training bars and lines, and a bar of runs done
    when the runs have no bars of their own (``--jobs``/``--cluster``: the executor
    announces each run as it ends)."""
    observer = TrainingProgress(err)
    if chosen.announces:
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
