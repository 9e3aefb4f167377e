"""What ``run``, ``sweep`` and ``tune`` share: checking ``--jobs`` and ``--nproc``, starting
the ranks of a data-parallel run, the ``--dry-run`` listing, runs as jobs, a board's row."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer

from harness.cli import bars
from harness.cli.progress import TrainingProgress
from harness.cli.root import err, out
from harness.errors import HarnessError
from harness.runs.requests import RunRequest


def check_jobs(request: RunRequest) -> None:
    """``--jobs``/``--cluster`` are checked before any work."""
    if request.jobs is not None and request.jobs < 1:
        raise HarnessError(f"--jobs {request.jobs}: give a positive number of runs at once")


def dry_run(plans: list[Any]) -> None:
    """``--dry-run``: the runs that would train, those skipped, the estimate; nothing trains."""
    from harness.runs.jobs import schedule

    for line in schedule(plans).lines():
        out.print(line, markup=False, highlight=False, soft_wrap=True)


def run_jobs(plans: list[Any], nproc: int = 1) -> list[Any]:
    """``--jobs``/``--cluster``: the runs as Ray tasks (each over ``nproc`` processes), under a
    bar of runs done."""
    from harness.runs import jobs

    with bars.bar("Runs", err) as progress:
        return jobs.run_jobs(plans, TrainingProgress(err), progress, nproc)


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
