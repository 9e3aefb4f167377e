"""What ``run``, ``sweep`` and ``tune`` share: checking ``--jobs`` and ``--nproc``, starting
the ranks of a data-parallel run, the preparation bar, what the dispatcher reports to, the
``--dry-run`` listing, a board's row."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from harness.cli import bars
from harness.cli.progress import TrainingProgress
from harness.cli.root import err, out
from harness.engine.events import TrainObserver
from harness.errors import HarnessError
from harness.runs.requests import RunRequest

if TYPE_CHECKING:
    from harness.runs.planning import Planner


def check_jobs(request: RunRequest) -> None:
    """``--jobs``/``--cluster`` are checked before any work."""
    if request.jobs is not None and request.jobs < 1:
        raise HarnessError(f"--jobs {request.jobs}: give a positive number of runs at once")


def dry_run(plans: list[Any]) -> None:
    """``--dry-run``: the runs that would train, those skipped, the estimate; nothing trains."""
    from harness.runs.dispatch import schedule

    for line in schedule(plans).lines():
        out.print(line, markup=False, highlight=False, soft_wrap=True)


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
    if request.jobs or request.cluster:
        with bars.bar("Runs", err) as runs:
            yield observer, runs
    else:
        yield observer, None


def ranks(nproc: int) -> bool:
    """Check ``--nproc``; True when this process must start the ranks itself.

    In a rank other than 0 of a data-parallel run, this process's consoles go quiet: the
    main rank is the one voice (errors still show, marked with their rank: ``root.say``).
    """
    from harness.engine import distributed

    if nproc < 1:
        raise HarnessError(f"--nproc {nproc}: give a positive number of processes")
    if os.environ.get("RANK", "0") != "0":
        err.quiet = out.quiet = True
    return nproc > 1 and not distributed.launched()


def start_ranks(nproc: int, device: Any) -> NoReturn:
    """Run N copies of this command under torch's launcher (each finds its rank there); exit
    with their code. The caller has checked the input, so a bad option fails once, here."""
    import torch

    from harness.engine import distributed

    if device.type == "cuda" and nproc > torch.cuda.device_count():
        raise HarnessError(
            f"--nproc {nproc}: this machine has {torch.cuda.device_count()} CUDA device(s); "
            "use at most that many processes (one per GPU)"
        )
    raise typer.Exit(distributed.launch(nproc, without_nproc(sys.argv[1:])))


def without_nproc(argv: list[str]) -> list[str]:
    """The command line minus ``--nproc N`` / ``--nproc=N``: what each launched rank runs."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def row_of(board: Path, label: str) -> str:
    lines = board.read_text(encoding="utf-8").splitlines()
    header = next(line for line in lines if line.startswith("| # |"))
    row = next((line for line in lines if line.startswith("| ") and f"| {label} |" in line), "")
    return f"{header}\n{row}"
