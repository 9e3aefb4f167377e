"""Sweeps: vary one axis of the entry, keep everything else fixed, under one protocol.

``harness sweep --vary loss=bce,dice,combo --model unetpp`` runs every value with the
same seeds and writes an ablation table in the shape papers publish (Loss | Dice) next
to the benchmark's main leaderboard. Parameters stay attached to their value:
``--vary loss=dice,combo:dice=0.7,bce=0.3`` is two values, because a piece with ``=``
and no ``:`` continues the previous value's parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from harness.atomic import cannot_write
from harness.engine.events import TrainObserver
from harness.errors import HarnessError, NotWritten, RunFailed
from harness.results.ablation import ablation_data, ablation_file, write_ablation_table
from harness.results.designs import write_design
from harness.results.leaderboard import leaderboard_path
from harness.results.records import Unusable, scan_records
from harness.results.rows import rows
from harness.runs import executors
from harness.runs.dispatch import dispatch, name_unusable
from harness.runs.executors import Executor
from harness.runs.planning import Plan, Planner
from harness.runs.requests import ResumeHint, RunRequest
from harness.studies.axes import AXES, Axis, parse_vary

__all__ = [
    "AXES",
    "Axis",
    "ablation_path",
    "parse_vary",
    "run_sweep",
    "sweep",
    "sweep_plans",
    "write_ablation",
]


def ablation_path(plan_: Plan, axis: Axis, tuned: bool = False) -> Path:
    """``<benchmark>.ablation-<axis>.md`` (``-tuned`` for the table of tuned entries)."""
    main = leaderboard_path(plan_.leaderboards_dir, plan_.benchmark.id)
    return ablation_file(main, axis.name, tuned)


def sweep(
    base: RunRequest,
    axis: Axis,
    observer: TrainObserver,
    progress: Callable[[int, int], None] | None = None,
    jobs: Callable[[int, int], None] | None = None,
) -> tuple[Path | None, list[Plan]]:
    """Run every value of ``axis`` with ``base``'s other settings; write the ablation table.

    Training progress and every line for the user go to ``observer``; ``progress`` hears
    the dataset's preparation (once for the whole sweep); ``jobs`` the runs done of all
    (``harness.runs.dispatch``).
    """
    executor = executors.choose(base)
    plans = sweep_plans(base, axis, Planner(progress, executor.remote))
    return run_sweep(plans, axis, observer, jobs, executor), plans


def run_sweep(
    plans: Sequence[Plan],
    axis: Axis,
    observer: TrainObserver,
    jobs: Callable[[int, int], None] | None = None,
    executor: Executor | None = None,
) -> Path | None:
    """Every run of the sweep's ``plans`` (``sweep_plans``), then its ablation table (also
    when a run failed: the table shows those that finished, then the failure is raised). A
    table a full disk keeps from being written costs no run: ``NotWritten`` says so at the
    end, with the failures if any. ``executor``: the command's (None: chosen here)."""
    try:
        dispatch(plans, observer, jobs, executor)
    except RunFailed as failed:
        lost = _ablation(axis, plans, observer)
        if isinstance(lost, Path) or lost is None:
            raise
        error = type(failed)(f"{failed}; and {lost}", echoed=failed.echoed)
        error.__dict__.update(failed.__dict__)
        raise error from None
    written = _ablation(axis, plans, observer)
    if isinstance(written, str):
        raise NotWritten(written)
    return written


def _ablation(axis: Axis, plans: Sequence[Plan], observer: TrainObserver) -> Path | str | None:
    """``write_ablation``; a table that cannot be written (a full disk) is the line that says
    so instead."""
    try:
        return write_ablation(axis, plans, observer)
    except OSError as exc:
        return (
            f"{cannot_write(exc)}; not written: the ablation table (the runs' records are kept; "
            "once there is space, this sweep with --resume writes it)"
        )


def sweep_plans(base: RunRequest, axis: Axis, planner: Planner) -> list[Plan]:
    """One plan per value of ``axis``, every value checked and the data prepared once."""
    plans = [planner.plan(base.replace(**{axis.name: v})) for v in axis.values]
    ids = {p.benchmark.id for p in plans}
    if len(ids) != 1:  # pragma: no cover - the axis never touches the protocol or data
        raise HarnessError(f"a sweep must stay on one benchmark, got {sorted(ids)}")
    # A stop, a refusal or --detach says the sweep's own command, which continues every value.
    option = next(name for name, field in AXES.items() if field == axis.name)
    hint = ResumeHint(base, "sweep", ("--vary", f"{option}={','.join(axis.values)}"))
    for value, p in zip(axis.values, plans, strict=True):
        p.title = f"sweep {axis.name} = {value}"
        p.resume_hint = hint
    return plans


def write_ablation(
    axis: Axis,
    plans: Sequence[Plan],
    observer: TrainObserver,
    budget: str | None = None,
    untuned: Collection[int] = (),
) -> Path | None:
    """The ablation table of a finished sweep, from every record under its runs folder (of
    tuned entries, under ``budget``, for ``harness tune --vary``; the values at ``untuned``
    positions, whose trials all failed, have no row to show). Returns the path written
    (``harness.results.tables.place``: a table there whose runs this folder lacks is kept)."""
    first = plans[0]
    found, unusable = scan_records(first.runs_dir)
    excluded = [u for u in unusable if u.benchmark == first.benchmark.id]
    for u in excluded:
        name_unusable(first, u, observer)
    mine = [(p, r) for p, r in found if r.benchmark_id == first.benchmark.id]
    by_key = {row.entry.key: row for row in rows((r for _, r in mine), first.benchmark.id)}
    table = [
        (v, None, None) if i in untuned else (v, p.entry.key, by_key.get(p.entry.key))
        for i, (v, p) in enumerate(zip(axis.values, plans, strict=True))
    ]
    shown = [Unusable(u.path.relative_to(first.runs_dir), u.reason) for u in excluded]
    data = ablation_data(
        axis.name,
        table,
        first.benchmark.id,
        runs_of={id(r): p.relative_to(first.runs_dir).as_posix() for p, r in mine},
        excluded=shown,
        budget=budget,
    )
    path = ablation_path(first, axis, tuned=budget is not None)
    if not first.world.is_main:  # in a data-parallel sweep the main rank writes, as for records
        return path
    write_design(first.runs_dir, data)  # beside the runs: the table comes back from them alone
    return write_ablation_table(path, data, first.runs_dir, observer.message)
