"""The trials of a tuning study (``harness tune``, ``harness.studies.tune``): each
configuration's run, its points drawn, its rungs run, the best chosen.

A ``Study`` is one entry's tuning under way. Its points come from its Optuna journal
(``study.log`` in the study folder), all drawn before any trial trains, so they depend on the
seed and the space alone; a resumed study keeps those drawn before. A trial is an ordinary run
of the entry with its configuration on the tuning fold (``trial_request``). The trials of one
rung are dispatched together (``harness.runs.dispatch``), then each study is told their results
and its best ``1/eta`` planned at the next rung (``harness.studies.halving``); the best trial
of the deepest rung is chosen. ``--audit`` trains every configuration at the full horizon too
and writes how well the rungs ranked them (``harness.studies.audit``).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.engine.events import TrainObserver
from harness.errors import RunFailed
from harness.protocol import Protocol, Tuning
from harness.results.records import RECORD_NAME, Record, read_record
from harness.runs.dispatch import dispatch
from harness.runs.executors import Executor
from harness.runs.planning import Plan, Planner, run_dir
from harness.runs.requests import ResumeHint, RunRequest
from harness.studies import audit as audits
from harness.studies import halving
from harness.studies.halving import Rung
from harness.studies.space import EntrySpace

#: The Optuna journal: the study's state.
STUDY_NAME = "study.log"


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


@dataclass
class Study:
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


@dataclass(frozen=True)
class Runner:
    """How trials are sent: to whom they report, the dispatcher's progress, the executor,
    the planner of the later rungs' trials, and the command a Ctrl-C prints."""

    observer: TrainObserver
    jobs: Callable[[int, int], None] | None
    executor: Executor
    planner: Planner
    resume: ResumeHint


def open_study(s: Study, observer: TrainObserver, planner: Planner) -> Study:
    """The entry's study opened, its points drawn (those drawn before kept), its first
    rung's trials planned."""
    s.study = load_study(s.folder, s.tuning)
    s.rungs = halving.rungs(s.tuning, s.base.benchmark.protocol.epochs)
    defaults = s.space.defaults if s.halving else None
    points = draw_points(s.study, s.tuning, defaults)
    s.configs = {n: s.space.rounded(v) for n, v, _ in points}
    s.trials = [s.trial(planner, n, s.rungs[0], told) for n, _, told in points]
    where = s.trials[0].plan.benchmark.id
    stages = f" ({halving.words(s.rungs)})" if s.halving else ""
    observer.message(f"tuning {s.base.entry.label}: {s.budget}; trials on {where}{stages}")
    return s


def run_rungs(studies: Sequence[Study], runner: Runner) -> list[str]:
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
        unwritten.append(run_trials(at_rung, runner.observer, runner.jobs, runner.executor))
        for s in studies:
            if s.depth == k + 1:
                _advance(s, k, runner)
    return unwritten


def _advance(s: Study, k: int, runner: Runner) -> None:
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


def load_study(folder: Path, tuning: Tuning) -> Any:
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


def draw_points(
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


def run_trials(
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


def choose(found: Sequence[Trial]) -> Trial | None:
    """The trial with the best final-epoch Dice at the deepest rung where one succeeded; the
    first (lowest number) on a tie; None when every trial failed."""
    for rung in sorted({t.rung for t in found}, reverse=True):
        done = [t for t in found if t.rung == rung and t.dice is not None]
        if done:
            return max(done, key=lambda t: (t.dice, -t.number))
    return None


def audit_all(studies: Sequence[Study], runner: Runner) -> str:
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
    unwritten = run_trials(found, runner.observer, runner.jobs, runner.executor)
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


def _audit_report(s: Study) -> dict[str, Any]:
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
