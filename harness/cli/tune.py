"""``harness tune`` (and ``tune --vary``): the equal tuning budget, then the protocol's seeds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from harness.cli import launch, options
from harness.cli.root import line, out, text
from harness.cli.tables import trials_table
from harness.runs.requests import RunRequest

if TYPE_CHECKING:
    from harness.studies.axes import Axis
    from harness.studies.tune import TuneOptions, TuneOutcome


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
    schedule: Annotated[
        str | None,
        typer.Option(
            help="full (every trial the protocol's epochs) or halving (successive halving); "
            "default: tuning.schedule in the protocol"
        ),
    ] = None,
    eta: Annotated[
        int | None,
        typer.Option(help="Halving: the best 1/ETA go on, each rung ETA times longer"),
    ] = None,
    min_epochs: Annotated[int | None, typer.Option(help="Halving: the first rung's epochs")] = None,
    audit: Annotated[
        bool,
        typer.Option(
            "--audit",
            help="Halving: also train every configuration at the full horizon and write the "
            "rank correlation and regret of halving's choice beside the study",
        ),
    ] = False,
) -> None:
    """Tune the entry with the protocol's equal budget over its space (what its components
    declare, the protocol's for the rest; trials on a tuning fold, never on the protocol's),
    then run the chosen values on its seeds."""
    # A bad protocol, name or parameter (of any value of --vary): one line before torch loads.
    axis = None if vary is None else _checked_axis(request, vary)
    if axis is None:
        request.check_early()
    from harness.studies.tune import TuneOptions

    chosen = TuneOptions(trials, schedule, eta, min_epochs, audit)
    if axis is not None:
        return _tune_sweep(request, chosen, axis)
    executor = launch.executor(request)
    from harness.results.leaderboard import leaderboard_path
    from harness.studies.tune import tune as run_tune
    from harness.studies.tune import tune_dry_run

    with launch.preparing(executor) as planner:
        planner.plan(request)  # every input checked, the dataset ready, before any trial
    if request.launch.dry_run:
        for said in tune_dry_run(request, chosen, planner):
            line(said)
        return
    with launch.reporting(executor) as (observer, runs):
        outcome = run_tune(
            request, observer, options=chosen, jobs=runs, planner=planner, executor=executor
        )
    out.print(trials_table(outcome))
    _say_gain(outcome)
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


def _say_gain(outcome: TuneOutcome) -> None:
    """Under halving, what tuning gained over the default configuration; the audit's file."""
    default = outcome.default
    if default and default.get("gain") is not None:
        line(
            f"over the default configuration ({default['mean_dice']:.4f} at "
            f"{default['epochs']} epochs): {default['gain']:+.4f} Dice"
        )
    if outcome.audit is not None:
        line(f"audit: {outcome.audit}")


def _checked_axis(request: RunRequest, vary: str) -> Axis:
    """``--vary``'s axis, every value's request checked (light: no torch)."""
    from harness.studies.axes import parse_vary

    axis = parse_vary(vary)
    for value in axis.values:
        request.replace(**{axis.name: value}).check_early()
    return axis


def _tune_sweep(request: RunRequest, chosen: TuneOptions, axis: Axis) -> None:
    """``harness tune --vary``: each value tuned with the same budget; the tuned ablation table."""
    executor = launch.executor(request)
    from harness.studies.tune import tune_dry_run, tune_sweep

    with launch.preparing(executor) as planner:
        for value in axis.values:  # every value checked before any trial
            planner.plan(request.replace(**{axis.name: value}))
    if request.launch.dry_run:  # each value's budget, study and estimate; nothing trains
        for value in axis.values:
            value_request = request.replace(**{axis.name: value})
            for said in tune_dry_run(value_request, chosen, planner):
                line(said)
        return
    with launch.reporting(executor) as (observer, runs):
        path, _ = tune_sweep(
            request, axis, observer, options=chosen, jobs=runs, planner=planner, executor=executor
        )
    if path is None:
        return
    out.print(text(path.read_text(encoding="utf-8")), highlight=False)
    line(f"wrote {path}")
