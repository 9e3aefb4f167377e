"""``harness cost``: re-measure recorded entries' throughput in a quiet pass."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from harness.cli.root import line, say


def cost(
    target: Annotated[
        str,
        typer.Argument(
            metavar="RUN_DIR|TABLE",
            help="A run's folder (runs/<benchmark>/<entry>/seed-N), or a table: a leaderboard "
            "file or benchmark id, whose records are under --runs-dir",
        ),
    ],
    runs_dir: Annotated[
        Path, typer.Option(help="Where a table's run records are (published: leaderboards/records)")
    ] = Path("runs"),
    plugin: Annotated[
        list[str] | None, typer.Option(help="Plugin the entries' components came from")
    ] = None,
    wait: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            help="Wait up to SECONDS for a quiet machine before each entry (default: refuse at "
            "once when it is busy)",
        ),
    ] = 0.0,
    anyway: Annotated[
        bool,
        typer.Option(
            help="Measure on a busy machine anyway; figures taken under contention are marked ᶜ"
        ),
    ] = False,
    clock: Annotated[
        str,
        typer.Option(
            help="What times a step: wall, or cpu (the process's CPU time, for one-thread CPU "
            "runs on a machine other jobs keep busy: their waits for a CPU left out)"
        ),
    ] = "wall",
    unrecorded: Annotated[
        bool,
        typer.Option(
            help="Also measure records that name no machine (older ones), taking them as made on "
            "this machine's kind"
        ),
    ] = False,
) -> None:
    """Re-measure train and inference images/s of recorded entries on this machine, with
    nothing else running: seconds per entry (its model, a synthetic batch at the protocol's
    size, warm-up then timed steps). The figures go into each record (cost.quiet), which the
    tables prefer; records made on another kind of machine are left as they are."""
    from harness.engine.cost import CostRequest, quiet_pass
    from harness.errors import HarnessError

    if wait < 0:
        raise HarnessError(f"--wait {wait:g}: give a number of seconds, 0 or more")
    request = CostRequest(
        target,
        runs_dir,
        tuple(plugin or ()),
        wait_s=wait,
        anyway=anyway,
        unrecorded=unrecorded,
        clock=clock,
    )
    report = quiet_pass(request, say=line)
    for reason, n in sorted(Counter(why for _, why in report.untouched).items()):
        records = f"{n} records as they were" if n > 1 else "1 record as it was"
        say(f"harness: left {records}: {reason}")
    written = sum(len(m.records) for m in report.measured)
    line(f"updated {written} record{'s' * (written != 1)} (cost.quiet)")
    if written and not Path(target).is_dir():
        table = Path(target)
        folder = f" --leaderboards-dir {table.parent}" if table.is_file() else ""
        line(f"to show them: harness leaderboard {table.name} --runs-dir {runs_dir}{folder}")
