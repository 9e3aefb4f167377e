"""Tuning: every entry gets the same budget before it is compared (``harness tune``).

An entry run at a learning rate chosen for someone else measures which component suits
that rate, not which is better. ``harness tune`` gives each entry the same number of
trials, the same schedule and the same sampler (the protocol's ``[tuning]`` table,
``harness.protocol.Tuning``), over the entry's space: what its components declare
(``harness.tunable``) and, for what none declares, the protocol's ``[tuning.space]``
(``harness.studies.space``). The points come from Optuna's ``QMCSampler`` (scrambled Sobol)
with the protocol's seed, so two entries with the same space are tried at the same points
and a rerun draws the same values; the points depend only on the seed and the space, never
on the scores. Optuna draws its first point with its seeded independent sampler and the rest
from the Sobol sequence; under successive halving the first configuration is instead the
entry's defaults (what it trains with untuned), so a tuned row can say what tuning gained.

Each trial is an ordinary run of the entry with its configuration (protocol fields as
``Entry.hparams``, own parameters as its components' parameters) on a derived benchmark: the
protocol with ``fold`` set to the tuning fold and the protocol's own fold in
``exclude_folds``, so a trial neither trains nor validates on the fold the final table is
scored on. ``schedule = "full"`` trains every configuration for the protocol's epochs;
``schedule = "halving"`` runs the rungs of ``harness.studies.halving``, each rung's trials a
run of the protocol compressed to the rung's epochs, one rung at a time (a barrier, under Ray
as in process), the best ``1/eta`` going on. The best trial of the deepest rung (the first on
a tie) chooses the values; the entry then runs on the protocol's seeds on the protocol's
fold, as an entry that says so (``... · tuned 8: lr=0.03``), its records carrying the budget,
the space, every trial and their device-hours (a leaderboard adds them to the row's).

The study's state is an Optuna journal file in the study folder
(``RUNS/<benchmark>/tuning/<entry>-<tuning hash>/study.log``): a killed ``harness tune``
continued with ``--resume`` asks no new point for a configuration it had drawn, keeps every
trial whose result the study was told (a failed one is not tried again), finds each rung's
finished trials in their run folders (the promotions follow from their records again) and
resumes an interrupted trial from its checkpoint. Trials are runs, so ``--jobs``/``--cluster``
send them to Ray or Slurm like any runs; only this process writes the study, and a lock
beside its folder keeps a second ``harness tune`` of the same entry and budget out until this
one ends. ``--audit`` also trains every configuration at the full horizon and writes how well
the rungs ranked them (``harness.studies.audit``).

This module holds the budget and the commands; a study's trials (its points drawn, its rungs
run, the best chosen) are ``harness.studies.trials``'s, and the study concluded (its summary
and picture, the final seeds) ``harness.studies.finals``'s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.atomic import cannot_write
from harness.data import sources
from harness.engine.events import TrainObserver
from harness.errors import HarnessError, NotWritten, RunFailed
from harness.protocol import SCHEDULES, Protocol, Tuning
from harness.results import sensitivity
from harness.runs import executors
from harness.runs.dispatch import estimate_hours
from harness.runs.executors import Executor
from harness.runs.planning import Plan, Planner
from harness.runs.requests import ResumeHint, RunRequest
from harness.studies import halving
from harness.studies.finals import SUMMARY_NAME, TuneOutcome, conclude, copy_picture, run_finals
from harness.studies.space import EntrySpace, entry_space
from harness.studies.sweep import Axis, write_ablation
from harness.studies.trials import (
    STUDY_NAME,
    Runner,
    Study,
    Trial,
    TrialSpec,
    audit_all,
    open_study,
    run_rungs,
    trial_request,
)

__all__ = [
    "STUDY_NAME",
    "SUMMARY_NAME",
    "Trial",
    "TrialSpec",
    "TuneOptions",
    "TuneOutcome",
    "budget_of",
    "entry_budget",
    "study_folder",
    "trial_request",
    "tune",
    "tune_dry_run",
    "tune_hint",
    "tune_many",
    "tune_sweep",
]


@dataclass(frozen=True)
class TuneOptions:
    """What ``harness tune`` was asked beyond the request: the protocol's budget changed
    (``--trials``, ``--schedule``, ``--eta``, ``--min-epochs``; None: the protocol's), and
    ``--audit`` (train every configuration of a halving study at the full horizon too)."""

    trials: int | None = None
    schedule: str | None = None
    eta: int | None = None
    min_epochs: int | None = None
    audit: bool = False

    def tail(self) -> tuple[str, ...]:
        """The options as the command that continues the tuning writes them."""
        given = (
            ("--trials", self.trials),
            ("--schedule", self.schedule),
            ("--eta", self.eta),
            ("--min-epochs", self.min_epochs),
        )
        out = [arg for flag, value in given if value is not None for arg in (flag, str(value))]
        return (*out, *(("--audit",) if self.audit else ()))


def budget_of(proto: Protocol, options: TuneOptions | int | None = None) -> Tuning:
    """The protocol's tuning budget with the command's changes (a number: ``--trials``),
    checked against the protocol."""
    if not isinstance(options, TuneOptions):
        options = TuneOptions(trials=options)
    changes = {
        k: v
        for k, v in dataclasses.asdict(options).items()
        if k in ("trials", "schedule", "eta", "min_epochs") and v is not None
    }
    tuning = dataclasses.replace(proto.tuning, **changes)
    if tuning.trials < 1:
        raise HarnessError(f"--trials {tuning.trials}: give at least one trial")
    _check_schedule(proto, tuning, options.audit)
    if not 0 <= tuning.fold < proto.folds or tuning.fold == proto.fold:
        raise HarnessError(
            f"protocol {proto.name!r}: [tuning] fold must be in 0..{proto.folds - 1} and not the "
            f"protocol's fold {proto.fold} (the trials never see it), got {tuning.fold}"
        )
    if tuning.fold in proto.exclude_folds:
        raise HarnessError(f"protocol {proto.name!r}: [tuning] fold {tuning.fold} is excluded")
    if not set(range(proto.folds)) - {proto.fold, tuning.fold, *proto.exclude_folds}:
        raise HarnessError(
            f"protocol {proto.name!r}: its {proto.folds} folds leave none to train the trials "
            f"on (fold {proto.fold} and the tuning fold {tuning.fold} are left out); use more folds"
        )
    return tuning


def _check_schedule(proto: Protocol, tuning: Tuning, audit: bool) -> None:
    """The schedule known, halving's numbers possible under ``proto``, ``--audit`` only of
    a halving study."""
    if tuning.schedule not in SCHEDULES:
        raise HarnessError(f"--schedule {tuning.schedule}: choose one of {', '.join(SCHEDULES)}")
    if tuning.eta < 2 or tuning.min_epochs < 1:
        raise HarnessError(
            f"--eta {tuning.eta}, --min-epochs {tuning.min_epochs}: successive halving needs "
            "eta >= 2 and min_epochs >= 1"
        )
    if tuning.schedule == "halving" and tuning.min_epochs >= proto.epochs:
        raise HarnessError(
            f"protocol {proto.name!r}: successive halving's first rung (min_epochs "
            f"{tuning.min_epochs}) must be shorter than the protocol's {proto.epochs} epochs"
        )
    if audit and tuning.schedule != "halving":
        raise HarnessError(
            "--audit checks successive halving's choice against the full horizon; this "
            'budget\'s schedule is "full" (give --schedule halving, or leave --audit out)'
        )


def entry_budget(base: Plan, options: TuneOptions | int | None = None) -> tuple[Tuning, EntrySpace]:
    """The budget of ``base``'s entry: the protocol's (``budget_of``) over the entry's space
    (``harness.studies.space``), whose hash names its study and its tuned rows; and the
    space."""
    proto = base.benchmark.protocol
    space = entry_space(base.entry, proto, base.registry)
    return dataclasses.replace(budget_of(proto, options), space=space.ranges), space


def study_folder(base: Plan, tuning: Tuning) -> Path:
    """``RUNS/<benchmark>/tuning/<entry slug>-<entry key>-<tuning hash>``."""
    key = hashlib.sha256(base.entry.key.encode()).hexdigest()[:8]
    name = f"{sources.slug(base.entry.label)[:60]}-{key}-{tuning.hash}"
    return base.runs_dir / base.benchmark.id / "tuning" / name


def tune_hint(
    request: RunRequest, options: TuneOptions | int | None = None, lead: Sequence[str] = ()
) -> ResumeHint:
    """The ``harness tune ... --resume`` command that continues this tuning (``lead``: the
    options that come first, ``--vary``; ``options``: the command's, or ``--trials``)."""
    if not isinstance(options, TuneOptions):
        options = TuneOptions(trials=options)
    return ResumeHint(request, "tune", tuple(lead), options.tail())


def tune(
    request: RunRequest,
    observer: TrainObserver,
    *,
    options: TuneOptions = TuneOptions(),
    progress: Callable[[int, int], None] | None = None,
    jobs: Callable[[int, int], None] | None = None,
    planner: Planner | None = None,
    executor: Executor | None = None,
) -> TuneOutcome:
    """Tune the entry of ``request`` with its protocol's budget (``options`` changes it),
    then run the chosen values on the protocol's seeds; write the study, the trials' and the
    final runs' records, the leaderboards and the tuning picture. ``observer`` hears every
    line for the user; ``progress`` the dataset's preparation (or ``planner``'s, whose
    prepared data is reused); ``jobs`` the runs done of all (Ray); ``executor``: the
    command's (None: chosen here, once for trials and finals)."""
    executor = executor or executors.choose(request)
    planner = planner or Planner(progress, executor.remote)
    (outcome,) = tune_many(
        [request],
        observer,
        options=options,
        jobs=jobs,
        resume=tune_hint(request, options),
        planner=planner,
        executor=executor,
    )
    if outcome.failed:
        raise RunFailed(
            outcome.failed + (f"; and {outcome.unwritten}" if outcome.unwritten else "")
        )
    if outcome.unwritten:
        raise NotWritten(outcome.unwritten)
    return outcome


def tune_many(
    requests: Sequence[RunRequest],
    observer: TrainObserver,
    *,
    options: TuneOptions = TuneOptions(),
    jobs: Callable[[int, int], None] | None = None,
    resume: ResumeHint,
    planner: Planner | None = None,
    executor: Executor | None = None,
) -> list[TuneOutcome]:
    """Tune several entries with the same budget: every entry's trials first, one rung at a
    time (sent to Ray together with ``--jobs``, so no slot idles between entries), then every
    chosen entry's seeds. ``resume`` is the command a Ctrl-C prints. An entry whose trials
    all failed, or whose final seed failed, says so in its outcome's ``failed``; the others
    go on. A table or picture a full disk kept from being written is in every outcome's
    ``unwritten``. ``executor``: the command's (None: chosen here, once for trials and
    finals)."""
    executor = executor or executors.choose(requests[0])
    planner = planner or Planner(None, executor.remote)  # the data prepared once
    with contextlib.ExitStack() as held:
        try:
            studies = _open_all(requests, options, observer, planner, held)
            runner = Runner(observer, jobs, executor, planner, resume)
            unwritten = run_rungs(studies, runner)
            if options.audit:
                unwritten.append(audit_all(studies, runner))
            outcomes = [conclude(s, observer, planner) for s in studies]
            finals = [o for o in outcomes if o.chosen is not None]
            for o in finals:
                o.final.resume_hint = resume
            unwritten.append(run_finals(finals, observer, jobs, executor))
        except KeyboardInterrupt as exc:
            if not getattr(exc, "resume_said", False):  # a run's own message has said it
                observer.message(f"Resume the tuning with:\n  {resume.text()}")
            raise
    unwritten += [
        copy_picture(o, seed, fold)
        for o in finals
        for fold in o.final.folds
        for seed in o.final.seeds
    ]
    said = "; ".join(dict.fromkeys(line for line in unwritten if line))
    shared = _shared_budget(studies)
    for o in outcomes:
        o.unwritten, o.shared = said, shared
    return outcomes


def _shared_budget(studies: Sequence[Study]) -> str:
    """The budget the entries share, in words: theirs when every one has the same; else the
    protocol's, saying that entries searched their own spaces."""
    budgets = {s.budget for s in studies}
    if len(budgets) == 1:
        return budgets.pop()
    first = studies[0]
    proto = first.base.benchmark.protocol
    shared = dataclasses.replace(first.tuning, space=proto.tuning.space).budget
    if first.halving:
        shared += f"; rungs {halving.words(first.rungs)}"
    return shared + "; each entry over its own space where its components declare one"


def _open_all(
    requests: Sequence[RunRequest],
    options: TuneOptions,
    observer: TrainObserver,
    planner: Planner,
    held: contextlib.ExitStack,
) -> list[Study]:
    """Every entry planned, its budget and space checked, every study folder free (none
    there without ``--resume``; none in use by another ``harness tune``, whose lock this
    process then holds until ``held`` closes), before any study is written; then each study
    opened and its points drawn."""
    for request in requests:
        if request.entry.hparams or request.entry.tuned:
            raise HarnessError("--hparam: harness tune chooses these values itself; leave it out")
    studies = []
    for request in requests:
        base = planner.plan(request)
        tuning, space = entry_budget(base, options)
        studies.append(Study(request, base, tuning, space, study_folder(base, tuning)))
    for s in studies:
        if (s.folder / STUDY_NAME).exists() and not s.request.launch.resume:
            raise HarnessError(
                f"{s.folder}: a tuning study of this entry and budget is here already; continue "
                "it with --resume (its finished trials are kept)"
            )
    for folder in dict.fromkeys(s.folder for s in studies):  # one entry twice: one lock
        held.enter_context(_lock(folder))
    return [open_study(s, observer, planner) for s in studies]


@contextlib.contextmanager
def _lock(folder: Path) -> Iterator[None]:
    """This process alone tunes in ``folder`` (two would tell one trial twice)."""
    from harness.locking import Lock  # removes its file when released

    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = Lock(f"{folder}.lock")
    try:
        lock.acquire(timeout=0)
    except TimeoutError:
        raise HarnessError(
            f"{folder}: another harness tune is tuning this entry with this budget now "
            f"(lock {lock.path}); wait for it to end, then continue with --resume"
        ) from None
    try:
        yield
    finally:
        lock.release()


def tune_dry_run(
    request: RunRequest, options: TuneOptions = TuneOptions(), planner: Planner | None = None
) -> list[str]:
    """``harness tune --dry-run``: the budget, the rungs, the runs it takes and an estimate
    against the entry's fixed runs; nothing trains and no point is drawn."""
    planner = planner or Planner()
    base = planner.plan(request)
    proto = base.benchmark.protocol
    tuning, space = entry_budget(base, options)
    s = Study(request, base, tuning, space, study_folder(base, tuning))
    s.rungs = halving.rungs(tuning, proto.epochs)
    state = "exists; --resume continues it" if (s.folder / STUDY_NAME).exists() else "new"
    seeds = f"then seeds {', '.join(map(str, base.seeds))} on {base.benchmark.id}"
    lines = [f"tuning {base.entry.label}: {s.budget}", f"study: {s.folder} ({state})"]
    for r in s.rungs:
        spec = TrialSpec(space, base.entry, r.epochs)
        trials = planner.resolve(trial_request(request, proto, tuning, {}, spec)).protocol
        where = f"{sources.slug(trials.name)}-{trials.hash}"
        if s.halving:
            lines.append(
                f"rung {r.index + 1}: {r.configs} configurations × {r.epochs} epochs = "
                f"{r.cost} trial-epochs (protocol {where}, its schedule compressed to "
                f"{r.epochs} epochs)"
            )
        else:
            lines.append(f"{tuning.trials} trials on protocol {where}, {seeds}")
    if s.halving:
        lines.append(seeds)
    return lines + _estimate(s, options.audit)


def _estimate(s: Study, audit: bool) -> list[str]:
    """The dry run's estimate of device-hours: the trials (trial-epochs at the mean hours per
    epoch of this benchmark's records), the seeds, and the ratio to the entry's fixed runs."""
    hours = estimate_hours(s.base)  # from the records alone: an interrupted run is no error here
    if hours is None:
        return ["estimate: none (no succeeded record of this benchmark yet)"]
    epochs = s.base.benchmark.protocol.epochs
    seeds = len(s.base.seeds) * hours
    if not s.halving:
        runs = s.tuning.trials + len(s.base.seeds)
        return [
            f"estimate: at most {runs * hours:.3g} device-hours ({runs} runs at the mean of this "
            "benchmark's records; finished trials and seeds are not trained again with --resume)"
        ]
    spent = halving.trial_epochs(s.rungs)
    trials = spent / epochs * hours
    lines = [
        f"estimate: at most {trials + seeds:.3g} device-hours: trials {trials:.3g} ({spent} "
        f"trial-epochs, {spent / epochs:.3g} runs of {epochs} epochs) + seeds {seeds:.3g}, "
        f"{(trials + seeds) / seeds:.2f}x the entry's fixed runs ({seeds:.3g}); a full "
        f"schedule's {s.tuning.trials} trials would take {s.tuning.trials * hours:.3g} "
        "(at the mean of this benchmark's records; finished trials and seeds are not trained "
        "again with --resume)"
    ]
    if audit:
        lines.append(
            f"audit: {s.tuning.trials} configurations at {epochs} epochs, at most "
            f"{s.tuning.trials * hours:.3g} device-hours more"
        )
    return lines


def tune_sweep(
    request: RunRequest,
    axis: Axis,
    observer: TrainObserver,
    *,
    options: TuneOptions = TuneOptions(),
    jobs: Callable[[int, int], None] | None = None,
    planner: Planner | None = None,
    executor: Executor | None = None,
) -> tuple[Path | None, list[TuneOutcome]]:
    """``harness tune --vary AXIS=...``: tune every value with the same budget (their trials
    together), then write the tuned ablation table beside the fixed one. ``executor``: the
    command's (None: chosen here)."""
    requests = [request.replace(**{axis.name: v}) for v in axis.values]
    resume = tune_hint(request, options, ["--vary", f"{axis.name}={','.join(axis.values)}"])
    outcomes = tune_many(
        requests,
        observer,
        options=options,
        jobs=jobs,
        resume=resume,
        planner=planner,
        executor=executor,
    )
    lost = ""
    try:
        path = _tuned_table(axis, outcomes, observer)
    except OSError as exc:  # a full disk: the runs are kept, the table waits for --resume
        path = None
        lost = (
            f"{cannot_write(exc)}; not written: the tuned ablation table (once there is "
            f"space, `{resume.text()}` writes it)"
        )
        for o in outcomes:
            o.unwritten = "; ".join(line for line in (o.unwritten, lost) if line)
    failed = [o.failed for o in outcomes if o.failed]
    unwritten = outcomes[0].unwritten
    if failed:
        table = "no table written" if lost else f"the table, without them: {path}"
        raise RunFailed(
            "; ".join(dict.fromkeys(failed))
            + f" ({table})"
            + (f"; and {unwritten}" if unwritten else "")
        )
    if unwritten:
        raise NotWritten(unwritten)
    return path, outcomes


def _tuned_table(
    axis: Axis, outcomes: Sequence[TuneOutcome], observer: TrainObserver
) -> Path | None:
    """The tuned ablation table of ``harness tune --vary`` and its picture of every trial
    (each value's configurations at the deepest rung they reached)."""
    budget = f"tuned: {outcomes[0].shared}"
    untuned = {i for i, o in enumerate(outcomes) if o.chosen is None}  # no row to show
    path = write_ablation(axis, [o.final for o in outcomes], observer, budget, untuned)
    picture = None if path is None else sensitivity.picture_path(path)
    if outcomes[0].final.world.is_main and picture is not None and picture.is_file():
        observer.message(f"wrote {picture}")
    return path
