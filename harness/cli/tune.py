"""``harness tune`` (and ``tune --vary``): the equal tuning budget, then the protocol's seeds."""

from __future__ import annotations

from typing import Annotated

import typer

from harness.cli import launch, options
from harness.cli.root import line, out, text
from harness.cli.tables import trials_table
from harness.runs.requests import RunRequest


@options.request_options(
    leave_out={"tuned", "hparams"},
    overrides={
        "model": options.Override("unetpp", "Model plugin (fixed unless varied)"),
        "loss": options.Override("dice", "Loss plugin (fixed unless varied)"),
    },
)
def tune(
    request: RunRequest,
    trials: Annotated[
        int | None,
        typer.Option(help="Trials per entry (default: tuning.trials in the protocol)"),
    ] = None,
    vary: Annotated[
        str | None,
        typer.Option(help="Tune each of AXIS=v1,v2,... and write a tuned ablation table"),
    ] = None,
) -> None:
    """Tune the entry's lr and weight decay with the protocol's equal budget (trials on a
    tuning fold, never on the protocol's), then run the chosen values on its seeds."""
    if vary is not None:
        return _tune_sweep(request, trials, vary)
    request.check_early()  # a bad protocol, name or parameter: one line before torch loads
    executor = launch.executor(request)
    from harness.results.leaderboard import leaderboard_path
    from harness.studies.tune import tune as run_tune
    from harness.studies.tune import tune_dry_run

    with launch.preparing(executor) as planner:
        planner.plan(request)  # every input checked, the dataset ready, before any trial
    if request.launch.dry_run:
        for said in tune_dry_run(request, trials, planner):
            line(said)
        return
    with launch.reporting(executor) as (observer, runs):
        outcome = run_tune(
            request, observer, trials=trials, jobs=runs, planner=planner, executor=executor
        )
    out.print(trials_table(outcome))
    for path, record in outcome.final.outcomes:
        dice = text(f"{record.mean_dice:.4f}", "bold")
        fold = outcome.final.benchmark.protocol.fold
        out.print(
            text(f"seed {record.seed}: mean Dice ") + dice + f" on fold {fold}; record {path}",
            soft_wrap=True,
        )
    line(f"tuning picture: {outcome.picture}")
    board = outcome.final.table or leaderboard_path(
        outcome.final.leaderboards_dir, outcome.final.benchmark.id
    )
    line(f"Leaderboard {board}:")
    out.print(
        launch.row_of(board, outcome.final.entry.label),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _tune_sweep(request: RunRequest, trials: int | None, vary: str) -> None:
    """``harness tune --vary``: each value tuned with the same budget; the tuned ablation table."""
    from harness.studies.axes import parse_vary

    axis = parse_vary(vary)
    for value in axis.values:  # a bad name or parameter is one line before torch loads
        request.replace(**{axis.name: value}).check_early()
    executor = launch.executor(request)
    from harness.studies.tune import tune_dry_run, tune_sweep

    with launch.preparing(executor) as planner:
        for value in axis.values:  # every value checked before any trial
            planner.plan(request.replace(**{axis.name: value}))
    if request.launch.dry_run:  # each value's budget, study and estimate; nothing trains
        for value in axis.values:
            value_request = request.replace(**{axis.name: value})
            for said in tune_dry_run(value_request, trials, planner):
                line(said)
        return
    with launch.reporting(executor) as (observer, runs):
        path, _ = tune_sweep(
            request, axis, observer, trials=trials, jobs=runs, planner=planner, executor=executor
        )
    if path is None:
        return
    out.print(text(path.read_text(encoding="utf-8")), highlight=False)
    line(f"wrote {path}")
