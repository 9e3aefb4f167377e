"""``harness sweep``: one axis varied, the rest fixed; the ablation table."""

from __future__ import annotations

from typing import Annotated

import typer

from harness.cli import launch, options
from harness.cli.root import line, out, text
from harness.runs.requests import RunRequest


@options.request_options(
    leave_out={"tta"},
    overrides={
        "model": options.Override("unetpp", "Model plugin (fixed unless varied)"),
        "loss": options.Override("dice", "Loss plugin (fixed unless varied)"),
        "resume": options.Override(False, "Keep finished runs; continue interrupted ones"),
    },
)
def sweep(
    vary: Annotated[str, typer.Option(help="AXIS=v1,v2,... e.g. loss=bce,dice,combo")],
    request: RunRequest,
) -> None:
    """Vary one axis with everything else fixed; write an ablation table beside the leaderboard."""
    from harness.studies.axes import parse_vary

    launch.quiet_ranks()
    axis = parse_vary(vary)
    for value in axis.values:  # a bad name or parameter is one line before torch loads
        request.replace(**{axis.name: value}).check_early()
    executor = launch.executor(request)
    from harness.studies.sweep import run_sweep, sweep_plans

    # Every value checked, and the dataset prepared once, under the bar before anything trains.
    with launch.preparing(executor) as planner:
        plans = sweep_plans(request, axis, planner)
    if request.launch.dry_run:
        return launch.dry_run(plans, executor)
    from harness.engine import distributed

    try:
        with launch.reporting(executor) as (observer, runs):
            path = run_sweep(plans, axis, observer, runs, executor)
    finally:
        distributed.shutdown()
    if not plans[0].world.is_main or path is None:
        return
    out.print(text(path.read_text(encoding="utf-8")), highlight=False)
    line(f"wrote {path}")
