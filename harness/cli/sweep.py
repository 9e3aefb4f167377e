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
    from harness.engine import distributed
    from harness.studies.sweep import parse_vary, run_sweep, sweep_plans

    launch.quiet_ranks()
    launch.check_jobs(request)
    axis = parse_vary(vary)
    # Every value checked, and the dataset prepared once, under the bar before anything trains.
    with launch.preparing() as planner:
        plans = sweep_plans(request, axis, planner)
    if request.launch.dry_run:
        return launch.dry_run(plans)
    try:
        with launch.reporting(request) as (observer, runs):
            path = run_sweep(plans, axis, observer, runs)
    finally:
        distributed.shutdown()
    if not plans[0].world.is_main or path is None:
        return
    out.print(text(path.read_text(encoding="utf-8")), highlight=False)
    line(f"wrote {path}")
