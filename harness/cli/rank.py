"""``harness rank JOB`` (hidden): one rank of a data-parallel run that ``--nproc`` started
(``harness.runs.ranks``); not typed by users."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli import launch
from harness.cli.progress import TrainingProgress
from harness.cli.root import err


def rank(
    job: Annotated[Path, typer.Argument(help="The job file the launching process wrote")],
) -> None:
    """One rank of a data-parallel run started by --nproc (internal)."""
    from harness.engine import distributed
    from harness.runs.ranks import run_rank

    launch.quiet_ranks()
    try:
        code = run_rank(job, TrainingProgress(err))
    finally:
        distributed.shutdown()
    if code:
        raise typer.Exit(code)
