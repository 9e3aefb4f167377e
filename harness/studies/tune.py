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
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.atomic import atomic_write_bytes, atomic_write_text, cannot_write
from harness.data import sources
from harness.engine.events import TrainObserver
from harness.errors import HarnessError, NotWritten, RunFailed
from harness.pictures.charts import TUNING, TrialSeries, tuning_curves
from harness.protocol import SCHEDULES, Protocol, Range, Tuning
from harness.results import sensitivity
from harness.results.records import RECORD_NAME, Record, read_record
from harness.runs import executors
from harness.runs.dispatch import dispatch, estimate_hours
from harness.runs.executors import Executor
from harness.runs.planning import Plan, Planner, run_dir
from harness.runs.requests import ResumeHint, RunRequest
from harness.studies import audit as audits
from harness.studies import halving
from harness.studies.halving import Rung
from harness.studies.space import EntrySpace, entry_space
from harness.studies.sweep import Axis, write_ablation

#: The Optuna journal (the study's state) and the summary beside it.
STUDY_NAME = "study.log"
SUMMARY_NAME = "tuning.json"


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


@dataclass
class Trial:
    """One tuning trial: its configuration's number and values, its run, its rung."""

    number: int
    values: dict[str, float]
    plan: Plan
    record: Record | None = None
    #: The study was told its result (succeeded or failed) before: it is not trained again.
    told: bool = False
    #: The rung it trains at (0: the first, or the only one of a full schedule).
    rung: int = 0
    #: The epochs it trains (its rung's; the protocol's under a full schedule).
    epochs: int = 0

    @property
    def folder(self) -> Path:
        return run_dir(self.plan, self.plan.seeds[0])

    @property
    def dice(self) -> float | None:
        ok = self.record is not None and self.record.status == "succeeded"
        return float(self.record.mean_dice) if ok else None  # type: ignore[union-attr, arg-type]

    @property
    def device_hours(self) -> float:
        hours = self.record.device_hours if self.record is not None else None
        return hours or 0.0

    def to_dict(self, staged: bool) -> dict[str, Any]:
        """As a tuned record lists it (``staged``: with its rung and epochs, under halving)."""
        out: dict[str, Any] = {
            "number": self.number,
            "values": self.values,
            "mean_dice": self.dice,
            "status": self.record.status if self.record else "missing",
            "device_hours": self.device_hours,
            "record": self.folder.relative_to(self.plan.runs_dir).as_posix(),
        }
        if staged:
            out.update(rung=self.rung + 1, epochs=self.epochs)
        return out


@dataclass
class TuneOutcome:
    """What ``tune`` did: the study folder, every trial, the chosen one and the final plan.

    ``failed`` says why the entry has no row (every trial failed, or a final seed did);
    then ``chosen`` is None when no trial succeeded, and ``final`` the untuned plan.
    ``unwritten`` says what a full disk kept from being written (a table, a picture: the
    same line on every outcome of one command; '' when everything was written)."""

    folder: Path
    #: The entry's budget: the protocol's, over the entry's space.
    tuning: Tuning
    trials: list[Trial]
    chosen: Trial | None
    final: Plan
    picture: Path
    failed: str = ""
    unwritten: str = ""
    #: The entry's space (what its components declare, the protocol's for the rest).
    space: EntrySpace | None = None
    #: The rungs (one under a full schedule).
    rungs: tuple[Rung, ...] = ()
    #: The budget in words, as the entry's records say it (without ``tuned: ``).
    budget: str = ""
    #: The budget every entry of the command shares, in words (its space left out when an
    #: entry has its own).
    shared: str = ""
    #: Under halving: the default configuration's Dice and what tuning gained over it.
    default: dict[str, Any] | None = None
    #: ``--audit``: the audit's JSON, beside the study (None: not audited).
    audit: Path | None = None


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


@dataclass(frozen=True)
class TrialSpec:
    """What a trial's run is made from besides its values: the entry's space and resolved
    entry (own parameters go into its components), and the epochs of its rung (None: the
    protocol's)."""

    space: EntrySpace | None = None
    entry: Any = None
    epochs: int | None = None


def trial_request(
    request: RunRequest,
    proto: Protocol,
    tuning: Tuning,
    values: Mapping[str, float],
    spec: TrialSpec = TrialSpec(),
) -> RunRequest:
    """A trial: the entry with ``values``, one seed, validated on the tuning fold with the
    protocol's fold (and any it already excludes) left out of training; at a rung of
    ``spec.epochs`` epochs, the protocol compressed to them (its warm-up, and a tuned
    warm-up, scaled by the same factor)."""
    excluded = tuple(sorted({*proto.exclude_folds, proto.fold}))
    epochs = proto.epochs if spec.epochs is None else spec.epochs
    values = dict(values)
    if "warmup_epochs" in values:
        values["warmup_epochs"] = halving.scaled(proto, values["warmup_epochs"], epochs)
    trial = request.replace(
        overrides=(
            *request.benchmark.overrides,
            ("fold", tuning.fold),
            ("exclude_folds", excluded),
            *halving.overrides(proto, epochs),
        ),
        seeds=(tuning.trial_seed,),
        folds=None,  # a trial is one run on the tuning fold, even for cross-validated finals
        hparams=tuple(sorted(values.items())),
        tuned=None,
    )
    if spec.space is not None and spec.entry is not None:
        trial = spec.space.request(trial, spec.entry, values)
    return trial


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


@dataclass
class _Study:
    """One entry's tuning under way: its plan, budget, space, study folder, Optuna study,
    rungs and the trials made so far (each rung's, as it is reached)."""

    request: RunRequest
    base: Plan
    tuning: Tuning
    space: EntrySpace
    folder: Path
    study: Any = None
    trials: list[Trial] = field(default_factory=list)
    rungs: tuple[Rung, ...] = ()
    #: Each configuration's values, by number.
    configs: dict[int, dict[str, float]] = field(default_factory=dict)
    #: The rungs it has run (fewer than ``rungs`` when failures leave one configuration).
    depth: int = 1
    #: ``--audit``: every configuration's trial at the full horizon.
    audited: list[Trial] = field(default_factory=list)

    @property
    def halving(self) -> bool:
        return self.tuning.schedule == "halving"

    @property
    def budget(self) -> str:
        """The budget in words (a tuned record's, without ``tuned: ``)."""
        text = self.tuning.budget
        if self.halving:
            text += f"; rungs {halving.words(self.rungs)}"
        return text + (f"; {self.space.words()}" if self.space.own else "")

    def trial(self, planner: Planner, number: int, rung: Rung, told: bool = False) -> Trial:
        """Configuration ``number``'s trial at ``rung`` (past the last: the audit's run at
        the full horizon), planned; its records carry the space and where it stands."""
        proto = self.base.benchmark.protocol
        spec = TrialSpec(self.space, self.base.entry, rung.epochs)
        values = self.configs[number]
        plan = planner.plan(trial_request(self.request, proto, self.tuning, values, spec))
        stage: dict[str, Any] = {}
        if rung.index >= len(self.rungs):
            stage = {"audit": True, "epochs": rung.epochs}
        elif self.halving:
            stage = {"rung": rung.index + 1, "epochs": rung.epochs}
        plan.tuning = {
            "space": self.space.to_dict(),
            "tuning_hash": self.tuning.hash,
            "study": self.folder.relative_to(self.base.runs_dir).as_posix(),
            "config": number,
            **stage,
        }
        return Trial(number, values, plan, told=told, rung=rung.index, epochs=rung.epochs)


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
            runner = _Runner(observer, jobs, executor, planner, resume)
            unwritten = _run_rungs(studies, runner)
            if options.audit:
                unwritten.append(_audit_all(studies, runner))
            outcomes = [_conclude(s, observer, planner) for s in studies]
            finals = [o for o in outcomes if o.chosen is not None]
            for o in finals:
                o.final.resume_hint = resume
            unwritten.append(_run_finals(finals, observer, jobs, executor))
        except KeyboardInterrupt as exc:
            if not getattr(exc, "resume_said", False):  # a run's own message has said it
                observer.message(f"Resume the tuning with:\n  {resume.text()}")
            raise
    unwritten += [
        _copy_picture(o, seed, fold)
        for o in finals
        for fold in o.final.folds
        for seed in o.final.seeds
    ]
    said = "; ".join(dict.fromkeys(line for line in unwritten if line))
    shared = _shared_budget(studies)
    for o in outcomes:
        o.unwritten, o.shared = said, shared
    return outcomes


def _shared_budget(studies: Sequence[_Study]) -> str:
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


@dataclass(frozen=True)
class _Runner:
    """How trials are sent: to whom they report, the dispatcher's progress, the executor,
    the planner of the later rungs' trials, and the command a Ctrl-C prints."""

    observer: TrainObserver
    jobs: Callable[[int, int], None] | None
    executor: Executor
    planner: Planner
    resume: ResumeHint


def _copy_picture(outcome: TuneOutcome, seed: int, fold: int | None = None) -> str:
    """The tuning picture beside a record of the tuned entry; what a full disk kept from
    being written ('' when it was written, or the run has no folder)."""
    target = run_dir(outcome.final, seed, fold) / TUNING
    if not target.parent.is_dir():
        return ""
    try:
        atomic_write_bytes(target, outcome.picture.read_bytes())
    except OSError as exc:
        return f"{cannot_write(exc)}; not written: the tuning picture {target}"
    return ""


def _open_all(
    requests: Sequence[RunRequest],
    options: TuneOptions,
    observer: TrainObserver,
    planner: Planner,
    held: contextlib.ExitStack,
) -> list[_Study]:
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
        studies.append(_Study(request, base, tuning, space, study_folder(base, tuning)))
    for s in studies:
        if (s.folder / STUDY_NAME).exists() and not s.request.launch.resume:
            raise HarnessError(
                f"{s.folder}: a tuning study of this entry and budget is here already; continue "
                "it with --resume (its finished trials are kept)"
            )
    for folder in dict.fromkeys(s.folder for s in studies):  # one entry twice: one lock
        held.enter_context(_lock(folder))
    return [_open(s, observer, planner) for s in studies]


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


def _open(s: _Study, observer: TrainObserver, planner: Planner) -> _Study:
    """The entry's study opened, its points drawn (those drawn before kept), its first
    rung's trials planned."""
    s.study = _study(s.folder, s.tuning)
    s.rungs = halving.rungs(s.tuning, s.base.benchmark.protocol.epochs)
    defaults = s.space.defaults if s.halving else None
    points = _points(s.study, s.tuning, defaults)
    s.configs = {n: s.space.rounded(v) for n, v, _ in points}
    s.trials = [s.trial(planner, n, s.rungs[0], told) for n, _, told in points]
    where = s.trials[0].plan.benchmark.id
    stages = f" ({halving.words(s.rungs)})" if s.halving else ""
    observer.message(f"tuning {s.base.entry.label}: {s.budget}; trials on {where}{stages}")
    return s


def _run_rungs(studies: Sequence[_Study], runner: _Runner) -> list[str]:
    """Every rung of every study, one rung at a time: its trials dispatched together, then
    (the barrier) each study told its results and its best ``1/eta`` planned at the next
    rung. Returns what a full disk kept from being written."""
    unwritten = []
    for k in range(max(len(s.rungs) for s in studies)):
        at_rung = [t for s in studies for t in s.trials if t.rung == k]
        if not at_rung:
            break
        for t in at_rung:
            t.plan.resume_hint = runner.resume  # Ctrl-C in a trial: continue the tuning
        unwritten.append(_run_trials(at_rung, runner.observer, runner.jobs, runner.executor))
        for s in studies:
            if s.depth == k + 1:
                _advance(s, k, runner)
    return unwritten


def _advance(s: _Study, k: int, runner: _Runner) -> None:
    """After rung ``k``: the study told each result (a failed trial, a configuration that
    does not go on, the last rung's scores) and the configurations that go on planned at
    rung ``k + 1`` (none when ``k`` is the last, or fewer than two succeeded)."""
    from optuna.trial import TrialState

    at_rung = [t for t in s.trials if t.rung == k]
    going: list[int] = []
    if k + 1 < len(s.rungs):
        going = halving.promote({t.number: t.dice for t in at_rung}, s.rungs[k + 1].configs)
        going = going if len(going) >= 2 else []
    _tell(s.study, at_rung, going, last=not going)
    if going:
        states = {t.number: t.state for t in s.study.get_trials(deepcopy=False)}
        said = [t.number + 1 for t in sorted(at_rung, key=lambda t: t.number) if t.number in going]
        runner.observer.message(
            f"{s.base.entry.label}: configurations {', '.join(map(str, said))} go on to "
            f"rung {k + 2} ({s.rungs[k + 1].epochs} epochs)"
        )
        s.trials += [
            s.trial(runner.planner, n, s.rungs[k + 1], states[n] != TrialState.RUNNING)
            for n in sorted(going)
        ]
        s.depth = k + 2


def _study(folder: Path, tuning: Tuning) -> Any:
    """The Optuna study of this entry and budget, in its journal file (created, or loaded)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = folder / STUDY_NAME
    folder.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    logging.getLogger("optuna").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # QMCSampler's notes on its first, independent draw
        storage = JournalStorage(JournalFileBackend(str(path)))
        sampler = optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=tuning.seed)
        return optuna.create_study(
            study_name="tune",
            storage=storage,
            sampler=sampler,
            direction="maximize",
            load_if_exists=True,
        )


def _points(
    study: Any, tuning: Tuning, defaults: Mapping[str, float] | None = None
) -> list[tuple[int, dict[str, float], bool]]:
    """The budget's points in trial order, each with whether the study was told its result:
    those drawn before (a resumed study) and new ones; ``defaults``: the first point of a
    new study (successive halving's default configuration), the rest drawn after it.

    All are drawn before any trial trains, so the points depend on the seed alone. A trial
    a kill left without all its values is marked failed and not counted.
    """
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState

    space = {k: FloatDistribution(r.low, r.high, log=r.log) for k, r in tuning.space}
    points = []
    for trial in study.get_trials(deepcopy=False):
        if set(trial.params) == set(space):
            points.append((trial.number, dict(trial.params), trial.state != TrialState.RUNNING))
        elif trial.state == TrialState.RUNNING:
            study.tell(trial.number, state=TrialState.FAIL)
    if defaults is not None and not study.get_trials(deepcopy=False):
        study.enqueue_trial(dict(defaults))
    while len(points) < tuning.trials:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a default outside its declared range is kept
            trial = study.ask(space)
        points.append((trial.number, dict(trial.params), False))
    return sorted(points, key=lambda p: p[0])[: tuning.trials]


def _run_trials(
    found: Sequence[Trial],
    observer: TrainObserver,
    jobs: Callable[[int, int], None] | None,
    executor: Executor,
) -> str:
    """Every trial still to run (``harness.runs.dispatch``); a failed trial leaves its failed
    record and the others go on. A trial whose result the study was told (a resumed study)
    keeps it: a failed one is not tried again; a succeeded one is never trained again.
    Returns what a full disk kept from being written ('' when nothing)."""
    todo = [t for t in found if not _settled(t)]
    for i, trial in enumerate(todo, 1):
        staged = "rung" in trial.plan.tuning
        stage = f" (rung {trial.rung + 1}, {trial.epochs} epochs)" if staged else ""
        trial.plan.title = f"trial {i} of {len(todo)}{stage}: {trial.plan.entry.label}"
    unwritten = ""
    if todo:
        try:
            dispatch([t.plan for t in todo], observer, jobs, executor)
        except RunFailed as exc:  # the dispatcher names each failed trial; a table a full
            unwritten = getattr(exc, "unwritten", "")  # disk kept out is said at the end
    for trial in found:
        trial.record = read_record(trial.folder / RECORD_NAME)
    return unwritten


def _settled(trial: Trial) -> bool:
    """Whether a trial's run is done: its record is there and says it succeeded, or the
    study was told its result."""
    record = read_record(trial.folder / RECORD_NAME)
    return record is not None and (trial.told or record.status == "succeeded")


def _tell(study: Any, at_rung: Sequence[Trial], going: Sequence[int], last: bool) -> None:
    """Each trial's result into the study, once: a failure; at the last rung its Dice; before
    it, a configuration that does not go on is pruned (one that does stays open)."""
    from optuna.trial import TrialState

    told = {t.number for t in study.get_trials(deepcopy=False) if t.state != TrialState.RUNNING}
    for trial in at_rung:
        if trial.number in told:
            continue
        if trial.dice is None:
            study.tell(trial.number, state=TrialState.FAIL)
        elif last:
            study.tell(trial.number, trial.dice)
        elif trial.number not in going:
            study.tell(trial.number, state=TrialState.PRUNED)


def _choose(found: Sequence[Trial]) -> Trial | None:
    """The trial with the best final-epoch Dice at the deepest rung where one succeeded; the
    first (lowest number) on a tie; None when every trial failed."""
    for rung in sorted({t.rung for t in found}, reverse=True):
        done = [t for t in found if t.rung == rung and t.dice is not None]
        if done:
            return max(done, key=lambda t: (t.dice, -t.number))
    return None


def _default_gain(s: _Study, chosen: Trial) -> dict[str, Any] | None:
    """Under halving, the default configuration (number 0) against the chosen one, at the
    deepest rung the default trained: its Dice there and what tuning gained over it."""
    if not s.halving:
        return None
    default = [t for t in s.trials if t.number == 0]
    deepest = max(default, key=lambda t: t.rung)
    mine = next(t for t in s.trials if t.number == chosen.number and t.rung == deepest.rung)
    gain = None if deepest.dice is None or mine.dice is None else mine.dice - deepest.dice
    return {
        "trial": 0,
        "values": deepest.values,
        "mean_dice": deepest.dice,
        "rung": deepest.rung + 1,
        "epochs": deepest.epochs,
        "chosen_dice": mine.dice,
        "gain": gain,
    }


def _conclude(s: _Study, observer: TrainObserver, planner: Planner) -> TuneOutcome:
    """The chosen trial, the summary and picture in the study folder, the final plan (the
    untuned one, never run, when every trial failed)."""
    proto = s.base.benchmark.protocol
    chosen = _choose(s.trials)
    default = _default_gain(s, chosen) if chosen is not None else None
    summary = _summary(s, chosen, default)
    atomic_write_text(s.folder / SUMMARY_NAME, json.dumps(summary, indent=2) + "\n")
    picture = _picture(s, chosen)
    outcome = TuneOutcome(
        s.folder, s.tuning, s.trials, chosen, s.base, picture, space=s.space,
        rungs=s.rungs, budget=s.budget, default=default,
        audit=s.folder / audits.AUDIT_JSON if s.audited else None,
    )  # fmt: skip
    if chosen is None:
        outcome.failed = (
            f"{s.base.entry.label}: all {len(s.configs)} tuning trials failed; see their records"
        )
        observer.message(outcome.failed)
        return outcome
    observer.message(
        f"{s.base.entry.label}: chose trial {chosen.number + 1} ({_values(chosen.values)}), "
        f"mean Dice {chosen.dice:.4f} on fold {s.tuning.fold}; now the protocol's seeds on "
        f"fold {proto.fold}"
    )
    request = s.space.request(s.request, s.base.entry, chosen.values)
    outcome.final = planner.plan(request.replace(tuned=f"{s.tuning.trials}-{s.tuning.hash}"))
    outcome.final.tuning = summary
    return outcome


def _values(values: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:.3g}" for k, v in sorted(values.items()))


def _summary(s: _Study, chosen: Trial | None, default: dict[str, Any] | None) -> dict[str, Any]:
    """The tuning as a tuned entry's records carry it."""
    found = s.trials
    out: dict[str, Any] = {
        "budget": f"tuned: {s.budget}",
        "tuning": s.tuning.to_dict(),
        "tuning_hash": s.tuning.hash,
        "space": s.space.to_dict(),
        "protocol_fold": s.base.benchmark.protocol.fold,
        "trial_benchmark": found[0].plan.benchmark.id,
        "study": s.folder.relative_to(found[0].plan.runs_dir).as_posix(),
        "trials": [t.to_dict(s.halving) for t in found],
        "chosen": (
            {"trial": chosen.number, "values": chosen.values, "mean_dice": chosen.dice}
            if chosen
            else None
        ),
        "trial_device_hours": sum(t.device_hours for t in found),
    }
    if s.halving:
        out["rungs"] = [
            {"rung": r.index + 1, "configs": r.configs, "epochs": r.epochs} for r in s.rungs
        ]
        if chosen is not None:
            out["chosen"].update(rung=chosen.rung + 1, epochs=chosen.epochs)
        out["default"] = default
    return out


def _picture(s: _Study, chosen: Trial | None) -> Path:
    """``tuning.png`` in the study folder: every trial against each tuned value (a colour
    per rung under halving)."""
    if s.halving:
        series = [
            _series(f"rung {r.index + 1}: {r.epochs} epochs",
                    [t for t in s.trials if t.rung == r.index],
                    chosen if chosen is not None and chosen.rung == r.index else None)
            for r in s.rungs[: s.depth]
        ]  # fmt: skip
        title = f"{s.base.entry.label}: {len(s.configs)} configurations, rungs "
        title += halving.words(s.rungs)
    else:
        series = [_series("", s.trials, chosen)]
        title = f"{s.base.entry.label}: {len(s.trials)} trials"
    return tuning_curves(
        series, _space(s.tuning.space), s.folder / TUNING, title=f"{title} on fold {s.tuning.fold}"
    )


def _series(label: str, found: Sequence[Trial], chosen: Trial | None) -> TrialSeries:
    point = (chosen.values, chosen.dice) if chosen is not None else None
    return (label, [(t.values, t.dice) for t in found], point)


def _space(space: Sequence[tuple[str, Range]]) -> list[tuple[str, float, float, bool]]:
    return [(k, r.low, r.high, r.log) for k, r in space]


def _audit_all(studies: Sequence[_Study], runner: _Runner) -> str:
    """``--audit``: every configuration of every study trained at the full horizon (those
    the last rung trained there are not trained again; a trial with a record, failed or
    not, is kept), then each study's audit written beside it. Returns what a full disk
    kept from being written."""
    full = Rung(len(studies[0].rungs), 0, studies[0].base.benchmark.protocol.epochs)
    for s in studies:
        at_full = {t.number: t for t in s.trials if t.epochs == full.epochs}
        s.audited = [at_full.get(n) or s.trial(runner.planner, n, full) for n in sorted(s.configs)]
        for t in s.audited:
            t.told = t.told or (t.folder / RECORD_NAME).is_file()
            t.plan.resume_hint = runner.resume
    found = [t for s in studies for t in s.audited]
    runner.observer.message(f"audit: {len(found)} configurations at the full horizon")
    unwritten = _run_trials(found, runner.observer, runner.jobs, runner.executor)
    for s in studies:
        report = _audit_report(s)
        path, _ = audits.write(s.folder, report, s.base.entry.label)
        tau = report["rungs"][0]["kendall_tau"]
        runner.observer.message(
            f"{s.base.entry.label}: audit: rung 1's Kendall tau "
            f"{'—' if tau is None else f'{tau:.2f}'}, regret {report['regret']:.4f} Dice; "
            f"{report['rule']['text']} ({path})"
        )
    return unwritten


def _audit_report(s: _Study) -> dict[str, Any]:
    """The audit of one study from its trials' records (``harness.studies.audit``)."""
    full = {t.number: t for t in s.audited}
    scores = [
        audits.Scores(
            number=n,
            values=values,
            rungs={t.rung: t.dice for t in s.trials if t.number == n},
            full=full[n].dice,
        )
        for n, values in sorted(s.configs.items())
    ]
    report = audits.audit(scores, s.rungs[: s.depth], s.tuning.seed)
    report.update(
        entry=s.base.entry.label,
        full_epochs=s.base.benchmark.protocol.epochs,
        schedule=[{"rung": r.index + 1, "configs": r.configs, "epochs": r.epochs} for r in s.rungs],
        device_hours=sum(t.device_hours for t in s.audited if t not in s.trials),
        records=[t.folder.relative_to(t.plan.runs_dir).as_posix() for t in s.audited],
    )
    return report


def _run_finals(
    finals: Sequence[TuneOutcome],
    observer: TrainObserver,
    jobs: Callable[[int, int], None] | None,
    executor: Executor,
) -> str:
    """The chosen entries on the protocol's seeds, together (``harness.runs.dispatch``); a
    failed seed marks its outcome failed and the others go on. Returns what a full disk
    kept from being written ('' when nothing)."""
    if not finals:
        return ""
    try:
        dispatch([o.final for o in finals], observer, jobs, executor)
    except RunFailed as exc:  # it names the failed runs, after all have ended
        for o in finals:
            failed = [
                f"{job.unit} failed: {outcome.reason} (record: {job.record_path})"
                for job, outcome in getattr(exc, "failures", [])
                if job.plan is o.final
            ]
            if failed:
                o.failed = f"{o.final.entry.label}: {'; '.join(failed)}"
        return str(getattr(exc, "unwritten", ""))
    return ""


def tune_dry_run(
    request: RunRequest, options: TuneOptions = TuneOptions(), planner: Planner | None = None
) -> list[str]:
    """``harness tune --dry-run``: the budget, the rungs, the runs it takes and an estimate
    against the entry's fixed runs; nothing trains and no point is drawn."""
    planner = planner or Planner()
    base = planner.plan(request)
    proto = base.benchmark.protocol
    tuning, space = entry_budget(base, options)
    s = _Study(request, base, tuning, space, study_folder(base, tuning))
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


def _estimate(s: _Study, audit: bool) -> list[str]:
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
