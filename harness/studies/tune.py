"""Tuning: every entry gets the same budget before it is compared (``harness tune``).

An entry run at a learning rate chosen for someone else measures which component suits
that rate, not which is better. ``harness tune`` gives each entry the same number of
trials over the same space (the protocol's ``[tuning]`` table, ``harness.protocol.Tuning``),
drawn by the same quasi-random sequence: Optuna's ``QMCSampler`` (scrambled Sobol) with the
protocol's seed, so two entries are tried at the same points and a rerun draws the same
values. Optuna draws its first point with its seeded independent sampler and the rest from
the Sobol sequence; the points depend only on the seed and the space, never on the scores.

Each trial is an ordinary run of the entry with its sampled values (``Entry.hparams``) on a
derived benchmark: the protocol with ``fold`` set to the tuning fold and the protocol's own
fold in ``exclude_folds``, so a trial neither trains nor validates on the fold the final
table is scored on. The trial with the best final-epoch Dice (the first on a tie) chooses
the values; the entry then runs on the protocol's seeds on the protocol's fold, as an entry
that says so (``... · tuned 8: lr=0.03``), its records carrying the budget, every trial and
their device-hours (a leaderboard adds them to the row's).

The study's state is an Optuna journal file in the study folder
(``RUNS/<benchmark>/tuning/<entry>-<tuning hash>/study.log``): a killed ``harness tune``
continued with ``--resume`` asks no new point for a trial it had drawn, keeps every trial
whose result the study was told (a failed one is not tried again) and resumes an interrupted
one from its checkpoint. Trials are runs, so ``--jobs``/``--cluster`` send them to Ray like
any runs; only this process writes the study, and a lock beside its folder keeps a second
``harness tune`` of the same entry and budget out until this one ends.
No pruner: every trial trains its full protocol, so trials stay equal.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.atomic import atomic_write_bytes, atomic_write_text, cannot_write
from harness.data import sources
from harness.engine.events import TrainObserver
from harness.errors import HarnessError, NotWritten, RunFailed
from harness.pictures.charts import TUNING, TrialSeries, tuning_curves
from harness.protocol import Protocol, Tuning
from harness.results.records import RECORD_NAME, Record, read_record
from harness.runs import executors
from harness.runs.dispatch import dispatch, estimate_hours
from harness.runs.executors import Executor
from harness.runs.planning import Plan, Planner, run_dir
from harness.runs.requests import ResumeHint, RunRequest
from harness.studies.sweep import Axis, write_ablation

#: The Optuna journal (the study's state) and the summary beside it.
STUDY_NAME = "study.log"
SUMMARY_NAME = "tuning.json"


@dataclass
class Trial:
    """One tuning trial: its number in the study, its sampled values and its run."""

    number: int
    values: dict[str, float]
    plan: Plan
    record: Record | None = None
    #: The study was told its result (succeeded or failed) before: it is not trained again.
    told: bool = False

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


@dataclass
class TuneOutcome:
    """What ``tune`` did: the study folder, every trial, the chosen one and the final plan.

    ``failed`` says why the entry has no row (every trial failed, or a final seed did);
    then ``chosen`` is None when no trial succeeded, and ``final`` the untuned plan.
    ``unwritten`` says what a full disk kept from being written (a table, a picture: the
    same line on every outcome of one command; '' when everything was written)."""

    folder: Path
    tuning: Tuning
    trials: list[Trial]
    chosen: Trial | None
    final: Plan
    picture: Path
    failed: str = ""
    unwritten: str = ""


def budget_of(proto: Protocol, trials: int | None) -> Tuning:
    """The protocol's tuning budget (``--trials`` overriding its count), checked."""
    tuning = proto.tuning if trials is None else dataclasses.replace(proto.tuning, trials=trials)
    if tuning.trials < 1:
        raise HarnessError(f"--trials {tuning.trials}: give at least one trial")
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


def study_folder(base: Plan, tuning: Tuning) -> Path:
    """``RUNS/<benchmark>/tuning/<entry slug>-<entry key>-<tuning hash>``."""
    key = hashlib.sha256(base.entry.key.encode()).hexdigest()[:8]
    name = f"{sources.slug(base.entry.label)[:60]}-{key}-{tuning.hash}"
    return base.runs_dir / base.benchmark.id / "tuning" / name


def trial_request(request: RunRequest, proto: Protocol, tuning: Tuning, values: dict) -> RunRequest:
    """A trial: the entry with ``values``, one seed, validated on the tuning fold with the
    protocol's fold (and any it already excludes) left out of training."""
    excluded = tuple(sorted({*proto.exclude_folds, proto.fold}))
    return request.replace(
        overrides=(
            *request.benchmark.overrides,
            ("fold", tuning.fold),
            ("exclude_folds", excluded),
        ),
        seeds=(tuning.trial_seed,),
        folds=None,  # a trial is one run on the tuning fold, even for cross-validated finals
        hparams=tuple(sorted(values.items())),
        tuned=None,
    )


def tune_hint(request: RunRequest, trials: int | None, lead: Sequence[str] = ()) -> ResumeHint:
    """The ``harness tune ... --resume`` command that continues this tuning (``lead``: the
    options that come first, ``--vary``)."""
    tail = ("--trials", str(trials)) if trials is not None else ()
    return ResumeHint(request, "tune", tuple(lead), tail)


def tune(
    request: RunRequest,
    observer: TrainObserver,
    *,
    trials: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    jobs: Callable[[int, int], None] | None = None,
    planner: Planner | None = None,
    executor: Executor | None = None,
) -> TuneOutcome:
    """Tune the entry of ``request`` with its protocol's budget, then run the chosen values
    on the protocol's seeds; write the study, the trials' and the final runs' records, the
    leaderboards and the tuning picture. ``observer`` hears every line for the user;
    ``progress`` the dataset's preparation (or ``planner``'s, whose prepared data is
    reused); ``jobs`` the runs done of all (Ray); ``executor``: the command's (None: chosen
    here, once for trials and finals)."""
    executor = executor or executors.choose(request)
    planner = planner or Planner(progress, executor.remote)
    (outcome,) = tune_many(
        [request],
        observer,
        trials=trials,
        jobs=jobs,
        resume=tune_hint(request, trials),
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
    """One entry's tuning under way: its plan, budget, study folder, Optuna study, trials."""

    request: RunRequest
    base: Plan
    tuning: Tuning
    folder: Path
    study: Any
    trials: list[Trial]


def tune_many(
    requests: Sequence[RunRequest],
    observer: TrainObserver,
    *,
    trials: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    jobs: Callable[[int, int], None] | None = None,
    resume: ResumeHint,
    planner: Planner | None = None,
    executor: Executor | None = None,
) -> list[TuneOutcome]:
    """Tune several entries with the same budget: every entry's trials first (sent to Ray
    together with ``--jobs``, so no slot idles between entries), then every chosen entry's
    seeds. ``resume`` is the command a Ctrl-C prints. An entry whose trials all failed, or
    whose final seed failed, says so in its outcome's ``failed``; the others go on. A table
    or picture a full disk kept from being written is in every outcome's ``unwritten``.
    ``executor``: the command's (None: chosen here, once for trials and finals)."""
    executor = executor or executors.choose(requests[0])
    planner = planner or Planner(progress, executor.remote)  # the data prepared once
    with contextlib.ExitStack() as held:
        try:
            studies = _open_all(requests, trials, observer, planner, held)
            for s in studies:
                for t in s.trials:
                    t.plan.resume_hint = resume  # Ctrl-C in a trial: continue the tuning
            found = [t for s in studies for t in s.trials]
            unwritten = [_run_trials(found, observer, jobs, executor)]
            for s in studies:
                _tell(s.study, s.trials)
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
    for o in outcomes:
        o.unwritten = said
    return outcomes


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
    trials: int | None,
    observer: TrainObserver,
    planner: Planner,
    held: contextlib.ExitStack,
) -> list[_Study]:
    """Every entry planned and its budget checked, every study folder free (none there
    without ``--resume``; none in use by another ``harness tune``, whose lock this process
    then holds until ``held`` closes), before any study is written; then each study opened
    and its points drawn."""
    for request in requests:
        if request.entry.hparams or request.entry.tuned:
            raise HarnessError("--hparam: harness tune chooses these values itself; leave it out")
    bases = [planner.plan(r) for r in requests]
    tunings = [budget_of(b.benchmark.protocol, trials) for b in bases]
    folders = [study_folder(b, t) for b, t in zip(bases, tunings, strict=True)]
    for request, folder in zip(requests, folders, strict=True):
        if (folder / STUDY_NAME).exists() and not request.launch.resume:
            raise HarnessError(
                f"{folder}: a tuning study of this entry and budget is here already; continue "
                "it with --resume (its finished trials are kept)"
            )
    for folder in dict.fromkeys(folders):  # one entry twice in a --vary holds one lock
        held.enter_context(_lock(folder))
    return [
        _open(_Study(r, b, t, f, None, []), observer, planner)
        for r, b, t, f in zip(requests, bases, tunings, folders, strict=True)
    ]


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
    """The entry's study opened and its points drawn (those drawn before kept)."""
    proto = s.base.benchmark.protocol
    study = _study(s.folder, s.tuning)
    found = [
        Trial(n, v, planner.plan(trial_request(s.request, proto, s.tuning, v)), told=told)
        for n, v, told in _points(study, s.tuning)
    ]
    observer.message(
        f"tuning {s.base.entry.label}: {s.tuning.budget}; trials on {found[0].plan.benchmark.id}"
    )
    return dataclasses.replace(s, study=study, trials=found)


def _conclude(s: _Study, observer: TrainObserver, planner: Planner) -> TuneOutcome:
    """The chosen trial, the summary and picture in the study folder, the final plan (the
    untuned one, never run, when every trial failed)."""
    proto = s.base.benchmark.protocol
    chosen = _choose(s.trials)
    summary = _summary(s.tuning, proto, s.trials, chosen, s.folder)
    atomic_write_text(s.folder / SUMMARY_NAME, json.dumps(summary, indent=2) + "\n")
    picture = _picture(s.folder, s.tuning, s.trials, chosen, s.base.entry.label)
    if chosen is None:
        failed = (
            f"{s.base.entry.label}: all {len(s.trials)} tuning trials failed; see their records"
        )
        observer.message(failed)
        return TuneOutcome(s.folder, s.tuning, s.trials, None, s.base, picture, failed)
    observer.message(
        f"{s.base.entry.label}: chose trial {chosen.number + 1} ({_values(chosen.values)}), "
        f"mean Dice {chosen.dice:.4f} on fold {s.tuning.fold}; now the protocol's seeds on "
        f"fold {proto.fold}"
    )
    final = planner.plan(
        s.request.replace(
            hparams=tuple(sorted(chosen.values.items())),
            tuned=f"{s.tuning.trials}-{s.tuning.hash}",
        )
    )
    final.tuning = summary
    return TuneOutcome(s.folder, s.tuning, s.trials, chosen, final, picture)


def _values(values: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.3g}" for k, v in sorted(values.items()))


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


def _points(study: Any, tuning: Tuning) -> list[tuple[int, dict[str, float], bool]]:
    """The budget's points in trial order, each with whether the study was told its result:
    those drawn before (a resumed study) and new ones.

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
    while len(points) < tuning.trials:
        trial = study.ask(space)
        points.append((trial.number, dict(trial.params), False))
    return points[: tuning.trials]


def _run_trials(
    found: Sequence[Trial],
    observer: TrainObserver,
    jobs: Callable[[int, int], None] | None,
    executor: Executor,
) -> str:
    """Every trial still to run (``harness.runs.dispatch``); a failed trial leaves its failed
    record and the others go on. A trial whose result the study was told (a resumed study)
    keeps it: a failed one is not tried again. Returns what a full disk kept from being
    written ('' when nothing)."""
    todo = [t for t in found if not (t.told and (t.folder / RECORD_NAME).is_file())]
    for i, trial in enumerate(todo, 1):
        trial.plan.title = f"trial {i} of {len(todo)}: {trial.plan.entry.label}"
    unwritten = ""
    if todo:
        try:
            dispatch([t.plan for t in todo], observer, jobs, executor)
        except RunFailed as exc:  # the dispatcher names each failed trial; a table a full
            unwritten = getattr(exc, "unwritten", "")  # disk kept out is said at the end
    for trial in found:
        trial.record = read_record(trial.folder / RECORD_NAME)
    return unwritten


def _tell(study: Any, found: Sequence[Trial]) -> None:
    """Each trial's Dice (or its failure) into the study, once."""
    from optuna.trial import TrialState

    told = {t.number for t in study.get_trials(deepcopy=False) if t.state != TrialState.RUNNING}
    for trial in found:
        if trial.number in told:
            continue
        if trial.dice is not None:
            study.tell(trial.number, trial.dice)
        else:
            study.tell(trial.number, state=TrialState.FAIL)


def _choose(found: Sequence[Trial]) -> Trial | None:
    """The trial with the best final-epoch Dice; the first (lowest number) on a tie; None
    when every trial failed."""
    done = [t for t in found if t.dice is not None]
    return max(done, key=lambda t: (t.dice, -t.number)) if done else None


def _summary(
    tuning: Tuning, proto: Protocol, found: Sequence[Trial], chosen: Trial | None, folder: Path
) -> dict[str, Any]:
    """The tuning as a tuned entry's records carry it."""
    return {
        "budget": f"tuned: {tuning.budget}",
        "tuning": tuning.to_dict(),
        "tuning_hash": tuning.hash,
        "protocol_fold": proto.fold,
        "trial_benchmark": found[0].plan.benchmark.id,
        "study": folder.relative_to(found[0].plan.runs_dir).as_posix(),
        "trials": [
            {
                "number": t.number,
                "values": t.values,
                "mean_dice": t.dice,
                "status": t.record.status if t.record else "missing",
                "device_hours": t.device_hours,
                "record": t.folder.relative_to(t.plan.runs_dir).as_posix(),
            }
            for t in found
        ],
        "chosen": (
            {"trial": chosen.number, "values": chosen.values, "mean_dice": chosen.dice}
            if chosen
            else None
        ),
        "trial_device_hours": sum(t.device_hours for t in found),
    }


def _picture(
    folder: Path, tuning: Tuning, found: Sequence[Trial], chosen: Trial | None, label: str
) -> Path:
    return tuning_curves(
        [_series("", found, chosen)],
        _space(tuning),
        folder / TUNING,
        title=f"{label}: {len(found)} trials on fold {tuning.fold}",
    )


def _series(label: str, found: Sequence[Trial], chosen: Trial | None) -> TrialSeries:
    point = (chosen.values, chosen.dice) if chosen is not None else None
    return (label, [(t.values, t.dice) for t in found], point)


def _space(tuning: Tuning) -> list[tuple[str, float, float, bool]]:
    return [(k, r.low, r.high, r.log) for k, r in tuning.space]


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
    request: RunRequest, trials: int | None, planner: Planner | None = None
) -> list[str]:
    """``harness tune --dry-run``: the budget, the runs it takes and an estimate; nothing trains
    and no point is drawn."""
    planner = planner or Planner()
    base = planner.plan(request)
    proto = base.benchmark.protocol
    tuning = budget_of(proto, trials)
    folder = study_folder(base, tuning)
    trial_bench = planner.plan(trial_request(request, proto, tuning, {})).benchmark.id
    state = "exists; --resume continues it" if (folder / STUDY_NAME).exists() else "new"
    seeds = ", ".join(map(str, base.seeds))
    hours = estimate_hours(base)  # from the records alone: an interrupted run is no error here
    runs = tuning.trials + len(base.seeds)
    estimate = (
        f"estimate: at most {runs * hours:.3g} device-hours ({runs} runs at the mean of this "
        "benchmark's records; finished trials and seeds are not trained again with --resume)"
        if hours is not None
        else "estimate: none (no succeeded record of this benchmark yet)"
    )
    return [
        f"tuning {base.entry.label}: {tuning.budget}",
        f"study: {folder} ({state})",
        f"{tuning.trials} trials on {trial_bench}, then seeds {seeds} on {base.benchmark.id}",
        estimate,
    ]


def tune_sweep(
    request: RunRequest,
    axis: Axis,
    observer: TrainObserver,
    *,
    trials: int | None = None,
    jobs: Callable[[int, int], None] | None = None,
    planner: Planner | None = None,
    executor: Executor | None = None,
) -> tuple[Path | None, list[TuneOutcome]]:
    """``harness tune --vary AXIS=...``: tune every value with the same budget (their trials
    together), then write the tuned ablation table beside the fixed one. ``executor``: the
    command's (None: chosen here)."""
    requests = [request.replace(**{axis.name: v}) for v in axis.values]
    resume = tune_hint(request, trials, ["--vary", f"{axis.name}={','.join(axis.values)}"])
    outcomes = tune_many(
        requests,
        observer,
        trials=trials,
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
    """The tuned ablation table of ``harness tune --vary`` and its picture of every trial."""
    budget = f"tuned: {outcomes[0].tuning.budget}"
    untuned = {i for i, o in enumerate(outcomes) if o.chosen is None}  # no row to show
    path = write_ablation(axis, [o.final for o in outcomes], observer, budget, untuned)
    if outcomes[0].final.world.is_main and path is not None:
        series = [
            _series(v, o.trials, o.chosen) for v, o in zip(axis.values, outcomes, strict=True)
        ]
        picture = tuning_curves(
            series,
            _space(outcomes[0].tuning),
            path.with_suffix(".png"),
            title=f"{axis.title}: every trial of each value ({budget})",
        )
        observer.message(f"wrote {picture}")
    return path
