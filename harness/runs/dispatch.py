"""The dispatcher: every run of a command goes through here, whatever carries it out.

``dispatch`` turns plans into jobs (one per seed), decides once what each job does
(``harness.runs.job.decide``: train, resume, skip, or refuse), reports the skipped ones,
hands the rest to the executor chosen for the command (``harness.runs.executors``: in this
process, or elsewhere: Ray, a batch system) and lands each outcome as it comes back: the
files a remote worker sent, the failed record of a run that failed (unless an earlier
success is kept: ``harness.runs.job.keeps_earlier``), the leaderboard, the progress.
``harness run``, ``harness sweep`` and ``harness tune`` (its trials and its finals) all call
it, so a run-level feature is written once, here.

A run never costs more than its last epoch and never damages what other runs wrote: it
checkpoints as it trains, ``--resume`` continues it after a crash, a kill or a Ctrl-C
(which prints the command to do so), and a run that fails leaves a record with status
``failed`` and the reason, and no leaderboard row.

A full disk costs no run either. Each succeeded run's Dice is said as it lands, before
anything later can fail; a table (or a failed record, or a run's pictures) that cannot be
written is remembered and the other runs go on; at the end one line names the folder and
what was not written (``NotWritten``, exit 1), and ``harness leaderboard`` writes the table
once there is space.
"""

from __future__ import annotations

import shlex
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.atomic import atomic_write_bytes, cannot_write, out_of_space
from harness.engine import checkpoint, distributed
from harness.engine.control import Interrupted
from harness.engine.events import TrainObserver
from harness.errors import HarnessError, NotWritten, RunFailed
from harness.results.leaderboard import regenerate
from harness.results.records import RECORD_NAME, Record, Unusable, iter_records, read_record
from harness.results.records import write_record as _write_record
from harness.runs import executors
from harness.runs.job import Action, Job, Outcome, job_of, keeps_earlier
from harness.runs.planning import Plan, run_dir

Progress = Callable[[int, int], None]


def dispatch(
    plans: Sequence[Plan],
    observer: TrainObserver,
    progress: Progress | None = None,
    executor: executors.Executor | None = None,
) -> list[tuple[Path, Record]]:
    """Carry out every run of ``plans``; return each plan's ``(record path, record)``.

    Each record a run writes, and each table it updates, is landed as the run ends; a run
    that fails leaves its failed record and the others go on; at the end ``RunFailed``
    names the failed runs (a plugin that broke its contract stops the command at once with
    its ``HarnessError``), or ``NotWritten`` what a full disk kept from being written.
    ``observer`` hears every line for the user and the training progress; ``progress`` the
    runs done of all (Ray). Ctrl-C stops, says where, and prints the command that resumes.
    ``executor``: the one chosen for the command (``executors.choose``; None: chosen here).
    """
    jobs = decide_all(plans)
    executor = executor or executors.choose(plans[0].request)
    for p in plans:  # each record names what carried its run out
        p.executor = executor.name
    landing = _Landing(plans, observer, progress, executor.announces)
    for job in jobs:
        if job.action is Action.SKIP:
            landing.skipped(job)
    todo = [job for job in jobs if job.action is not Action.SKIP]
    _bound_concurrency(plans, len(todo))
    for job in todo:
        if job.plan.resume and job.action is Action.TRAIN and landing.main:
            where = checkpoint.directory(job.folder)
            observer.message(f"{job.unit}: no checkpoint in {where}; starting from the beginning")
    landing.start(len(todo))
    try:
        _carry_out(executor, todo, landing, observer)
    except KeyboardInterrupt as exc:
        job = getattr(exc, "job", None)
        if isinstance(job, Job):
            landing.stopped(job, exc)
        raise
    landing.finish()
    return [o for p in plans for o in p.outcomes]


def _bound_concurrency(plans: Sequence[Plan], runs: int) -> None:
    """No more runs train at once than there are to train (``--jobs 4`` with one run to
    train runs it alone): what each run's timed windows keep (``concurrent_runs``)."""
    for p in plans:
        if p.launch.concurrent_runs is not None and runs < p.launch.concurrent_runs:
            p.launch = replace(p.launch, concurrent_runs=max(1, runs))


def execute(plan: Plan, observer: TrainObserver) -> list[tuple[Path, Record]]:
    """Every seed of one plan (``dispatch`` of it alone)."""
    return dispatch([plan], observer)


def _carry_out(
    executor: executors.Executor, jobs: Sequence[Job], landing: _Landing, observer: TrainObserver
) -> None:
    """``jobs`` carried out, each landed as it ends. A run in this process whose own write
    finds the disk full (its folder, weights, record or pictures) ends that run, not the
    command: it is landed as its folder shows it, and the next one goes on. (A Ray worker's
    error comes back as its run's failure.)"""
    todo = list(jobs)
    while todo:
        try:
            executor.run(todo, landing.land, observer)
            return
        except OSError as exc:
            if executor.remote or not out_of_space(exc):
                raise
            job = next(j for j in todo if not landing.has_landed(j))
            landing.out_of_space(job, exc)
            todo = todo[todo.index(job) + 1 :]


# ---------------------------------------------------------------------------- deciding


def decide_all(plans: Sequence[Plan]) -> list[Job]:
    """Every job of ``plans``, decided by the main rank (the others follow its decision, so
    ranks on other machines need no shared runs folder); a refused job is one line, on
    every rank."""
    world = plans[0].world
    decided: list[str] | str | None = None
    if world.is_main:
        try:
            decided = [job.action.value for job in _jobs(plans)]
        except HarnessError as exc:
            decided = str(exc)
    if world.active:
        decided = distributed.broadcast_object(decided, world)
    if isinstance(decided, str):
        raise HarnessError(decided, echoed=not world.is_main)
    assert decided is not None
    units = [(p, fold, seed) for p in plans for fold in p.folds for seed in p.seeds]
    return [
        job_of(p, seed, fold)
        if world.is_main
        else Job(p, seed, run_dir(p, seed, fold), Action(action), fold=fold)
        for (p, fold, seed), action in zip(units, decided, strict=True)
    ]


def _jobs(plans: Sequence[Plan]) -> list[Job]:
    """Each job decided; one that would lose an interrupted run's checkpoint is refused."""
    jobs = [job_of(p, seed, fold) for p in plans for fold in p.folds for seed in p.seeds]
    for job in jobs:
        if job.action is Action.REFUSE:
            raise HarnessError(_refusal(job))
    return jobs


def _refusal(job: Job) -> str:
    ckpt_dir = checkpoint.directory(job.folder)
    state = checkpoint.load_state(checkpoint.paths(ckpt_dir, "last")[0])
    where = f"epoch {state['epoch']} of {job.plan.benchmark.protocol.epochs} done"
    return (
        f"{ckpt_dir}: an interrupted run of {job.unit} left a checkpoint here ({where}); "
        f"continue it with `{_resume(job.plan)}`, or delete that folder to start over"
    )


def _resume(plan: Plan) -> str:
    """The command that continues ``plan``'s runs, in words."""
    return plan.resume_hint.text()


# ---------------------------------------------------------------------------- landing


@dataclass
class _Landing:
    """What the dispatcher does as each job ends: files, records, tables, lines, progress."""

    plans: Sequence[Plan]
    observer: TrainObserver
    progress: Progress | None
    #: Say one line per run that ends (Ray: runs end in any order, with no bar of their own).
    announce: bool
    failed: list[tuple[Job, Outcome]] = field(default_factory=list)
    #: What could not be written (a full disk), in words, with the error that said so.
    unwritten: list[tuple[str, OSError]] = field(default_factory=list)
    #: The runs folder and the leaderboards folder of a table that could not be written.
    boards: tuple[Path, Path] | None = None
    landed: set[int] = field(default_factory=set)
    done: int = 0
    total: int = 0

    def __post_init__(self) -> None:
        for p in self.plans[1:]:  # a record left out is named once for the whole command
            p.unusable_named = self.plans[0].unusable_named

    @property
    def main(self) -> bool:
        return self.plans[0].world.is_main

    def start(self, total: int) -> None:
        self.total = total
        if self.progress is not None:
            self.progress(0, total)

    def skipped(self, job: Job) -> None:
        """A run that already succeeded: said, counted, its table repaired."""
        record = job.earlier
        if not self.main or record is None:
            return
        label = job.unit if len(self.plans) == 1 else job.name
        self.observer.message(
            f"{label}: already succeeded (mean Dice {record.mean_dice:.4f}); "
            f"skipped (--rerun trains it again). Record: {job.record_path}"
        )
        job.plan.outcomes.append((job.record_path, record))
        # Same records, same bytes: this only repairs a table a kill left behind.
        self._table(job.plan)

    def has_landed(self, job: Job) -> bool:
        return id(job) in self.landed

    def land(self, job: Job, outcome: Outcome) -> None:
        """One job's end: its files written (record last), its record or failure, its table."""
        self.landed.add(id(job))
        for line in outcome.messages:
            self.observer.message(f"{job.name}: {line}")
        kept = keeps_earlier(job.earlier, outcome.status)
        if outcome.files and not kept and self.main:
            outcome = self._files(job, outcome)
            kept = keeps_earlier(job.earlier, outcome.status)
        self.done += 1
        if outcome.status == "succeeded":
            self._succeeded(job, outcome)
        else:
            self._failed(job, outcome, kept)
        if self.progress is not None:
            self.progress(self.done, self.total)

    def _files(self, job: Job, outcome: Outcome) -> Outcome:
        """A worker's files written into the run folder, the record last; a write that fails
        (a full disk) makes the run a failure (its record is not there), said with why."""
        try:
            for name, data in sorted(outcome.files.items(), key=lambda kv: kv[0] == RECORD_NAME):
                atomic_write_bytes(job.folder / name, data)
        except OSError as exc:
            why = f"{cannot_write(exc)}; its files did not land, continue it with --resume"
            return replace(outcome, status="failed", record=None, reason=why)
        return outcome

    def _succeeded(self, job: Job, outcome: Outcome) -> None:
        if not self.main:
            return
        record = outcome.record or read_record(job.record_path)
        if record is None:  # the worker said succeeded, and no record came: a failure
            self._failed(job, Outcome("failed", reason="no record came back"), False)
            return
        job.plan.outcomes.append((job.record_path, record))
        self._dice(job, record)  # said first: nothing later (a full disk) can cost the line
        self._table(job.plan)

    def _dice(self, job: Job, record: Record) -> None:
        """The one line of a succeeded run: its mean Dice and its record."""
        if self.announce:
            wall = record.cost.get("wall_s") or 0
            self.observer.message(
                f"[{self.done}/{self.total}] {job.name}: succeeded, mean Dice "
                f"{record.mean_dice:.4f}, {wall:.0f} s (record {job.record_path})"
            )
        else:
            label = job.unit if len(self.plans) == 1 else job.name
            self.observer.message(
                f"{label}: succeeded, mean Dice {record.mean_dice:.4f} (record {job.record_path})"
            )

    def _table(self, plan: Plan) -> None:
        """The plan's table regenerated; one that cannot be written (a full disk) costs no
        run: it is remembered, said once at the end, and written by the next regeneration."""
        try:
            regenerate_table(plan, self.observer)
        except OSError as exc:
            self.unwritten.append((f"the table of {plan.benchmark.id}", exc))
            self.boards = (plan.runs_dir, plan.leaderboards_dir)

    def out_of_space(self, job: Job, exc: OSError) -> None:
        """A run in this process whose own write found the disk full (``_carry_out``): a
        succeeded record that was written stands (only what came after it is missing);
        otherwise the run failed, and ``--resume`` continues it once there is space."""
        record = read_record(job.record_path)
        earlier = job.earlier.finished_at if job.earlier is not None else None
        if record is not None and record.status == "succeeded" and record.finished_at != earlier:
            label = job.unit if len(self.plans) == 1 else job.name
            self.unwritten.append((f"the pictures of {label} (its record is written)", exc))
            self.land(job, Outcome("succeeded", record))
            return
        why = cannot_write(exc)
        if not keeps_earlier(job.earlier, "failed"):
            why += f"; continue it with `{_resume(job.plan)}` once there is space"
        self.land(job, Outcome("failed", reason=why))

    def _failed(self, job: Job, outcome: Outcome, kept: bool) -> None:
        """A failed run's record, or the earlier success kept; a usage error stops here."""
        if kept:
            keep_earlier(job, "failed", self.observer)
        elif outcome.record is not None and self.main:
            try:
                _write_record(job.record_path, outcome.record)
                job.plan.outcomes.append((job.record_path, outcome.record))
            except OSError as exc:  # the reason is still said: here, and at the end
                reason = f"{outcome.reason}; its failed record was not written: {cannot_write(exc)}"
                outcome = replace(outcome, reason=reason)
        self.failed.append((job, outcome))
        if self.announce:
            self.observer.message(
                f"[{self.done}/{self.total}] {job.name}: failed: {outcome.reason}"
            )
        elif self.total > 1:  # one after another: the others go on, so say it now
            self.observer.message(f"{job.name} failed: {outcome.reason}")
        if outcome.usage:
            raise HarnessError(outcome.reason, echoed=outcome.echoed or not self.main)

    def stopped(self, job: Job, exc: KeyboardInterrupt) -> None:
        """Ctrl-C in ``job`` (in this process): the earlier success kept, or where it stopped
        and the command that resumes it."""
        if not self.main:
            return
        if keeps_earlier(job.earlier, "stopped"):
            keep_earlier(job, "was stopped", self.observer)
            return
        _report_interrupt(job, exc, self.observer)

    def finish(self) -> None:
        """``RunFailed`` naming each failed run (one failed run: its own message), and what
        could not be written; ``NotWritten`` when every run succeeded but something of
        theirs could not be written (a full disk)."""
        unwritten = self._unwritten()
        if not self.failed:
            if unwritten:
                error = NotWritten(unwritten)
                error.unwritten = unwritten  # type: ignore[attr-defined]  # as on RunFailed
                raise error
            return
        echoed = not self.main or all(o.echoed for _, o in self.failed)
        if len(self.failed) == 1 and not self.announce:
            job, outcome = self.failed[0]
            message = f"{job.unit} failed: {outcome.reason} (record: {job.record_path})"
        else:
            named = "; ".join(f"{job.name} ({outcome.reason})" for job, outcome in self.failed)
            message = f"{len(self.failed)} of {self.total} runs failed: {named}"
        error = RunFailed(message + (f"; and {unwritten}" if unwritten else ""), echoed=echoed)
        error.failures = list(self.failed)  # type: ignore[attr-defined]  # for harness tune
        error.unwritten = unwritten  # type: ignore[attr-defined]  # for harness tune
        raise error

    def _unwritten(self) -> str:
        """What a full disk kept from being written, in one line ('' when nothing was)."""
        if not self.unwritten:
            return ""
        what = ", ".join(dict.fromkeys(w for w, _ in self.unwritten))
        line = f"{cannot_write(self.unwritten[0][1])}; not written: {what}"
        if self.boards is not None:
            runs, boards = self.boards
            command = shlex.join(
                ["harness", "leaderboard", "--runs-dir", str(runs)]
                + ["--leaderboards-dir", str(boards)]
            )
            line += f" (the runs' records are kept; once there is space, `{command}` writes it)"
        return line


def keep_earlier(job: Job, outcome: str, observer: TrainObserver) -> None:
    """The earlier succeeded record and its weights-final stay; the rerun's checkpoints go
    (--resume skips a succeeded seed, so nothing would continue them, and best.* would no
    longer match the record)."""
    checkpoint.discard(checkpoint.directory(job.folder))
    earlier = job.earlier
    assert earlier is not None
    observer.message(
        f"{job.unit}: this rerun {outcome}; the earlier succeeded record (mean Dice "
        f"{earlier.mean_dice:.4f}) and its weights-final are kept: {job.record_path}"
    )


def _report_interrupt(job: Job, exc: KeyboardInterrupt, observer: TrainObserver) -> None:
    """Say where an interrupted seed stopped, what was saved and the command to continue."""
    ckpt_dir = checkpoint.directory(job.folder)
    if isinstance(exc, Interrupted) and exc.checkpoint is not None:
        saved = f"stopped at {exc.where}; checkpoint saved: {exc.checkpoint}"
    elif checkpoint.exists(ckpt_dir):
        saved = f"stopped; last checkpoint: {checkpoint.paths(ckpt_dir, 'last')[0]}"
    else:
        saved = "stopped before the first checkpoint; the resume starts from the beginning"
    observer.message(f"{job.unit}: {saved}\nResume with:\n  {_resume(job.plan)}")
    exc.resume_said = True  # type: ignore[attr-defined]  # a caller need not say it again


def regenerate_table(plan: Plan, observer: TrainObserver) -> Path | None:
    """Regenerate the plan's leaderboard; each record it cannot use is named once, one line.
    The path written is kept on the plan (``Plan.table``)."""
    path = regenerate(
        plan.benchmark.id,
        plan.runs_dir,
        plan.leaderboards_dir,
        report=lambda unusable: name_unusable(plan, unusable, observer),
        say=observer.message,
    )
    plan.table = path or plan.table
    return path


def name_unusable(plan: Plan, unusable: Unusable, observer: TrainObserver) -> None:
    """Say, once per command, that a record cannot be used and is left out of its table."""
    if unusable.path not in plan.unusable_named:
        plan.unusable_named.add(unusable.path)
        observer.message(f"warning: {unusable}; left out of its table")


# ---------------------------------------------------------------------------- dry run


@dataclass
class Schedule:
    """What a command will do (``--dry-run``): each job decided, and an estimate."""

    jobs: list[Job]
    #: Estimated device-hours per job to train (None: no record to estimate from).
    hours: list[float | None] = field(default_factory=list)

    @property
    def to_train(self) -> list[Job]:
        return [j for j in self.jobs if j.action is not Action.SKIP]

    def lines(self) -> list[str]:
        """The plan in words, one line per run, then the estimate (``--dry-run``)."""
        out = [f"{len(self.to_train)} of {len(self.jobs)} runs to train:"]
        for job, hours in zip(self.jobs, self.hours, strict=True):
            skip = job.action is Action.SKIP
            cost = "" if hours is None or skip else f", about {hours:.3g} h"
            out.append(f"  {job.action.value:<6} {job.name}{cost} ({job.folder})")
        known = [
            h for j, h in zip(self.jobs, self.hours, strict=True) if j.action is not Action.SKIP
        ]
        if not self.to_train:
            out.append("nothing to train")
        elif any(h is None for h in known):
            out.append("estimate: none (no succeeded record of this benchmark yet)")
        else:
            out.append(
                f"estimate: {sum(h for h in known if h is not None):.3g} device-hours "
                "(each run: the mean of its entry's succeeded records, else of the benchmark's)"
            )
        return out


def schedule(plans: Sequence[Plan]) -> Schedule:
    """Every run of ``plans`` decided, with an estimate of its device-hours from the records
    of the same benchmark; nothing trains."""
    jobs = _jobs(plans)
    return Schedule(jobs, [_estimate(j.plan, j.folder) for j in jobs])


def estimate_hours(p: Plan) -> float | None:
    """Device-hours one run of ``p``'s entry takes, from the records (None: no record)."""
    return _estimate(p, run_dir(p, p.seeds[0]))


def _estimate(plan: Plan, folder: Path) -> float | None:
    """Mean device-hours of the entry's succeeded records, else of the benchmark's."""
    bench = plan.benchmark.id
    spent: dict[bool, list[float]] = {True: [], False: []}
    for path, record in iter_records(plan.runs_dir):
        hours = record.device_hours
        if record.status == "succeeded" and record.benchmark_id == bench and hours is not None:
            spent[path.parent.parent == folder.parent].append(hours)
    chosen = spent[True] or spent[False]
    return statistics.fmean(chosen) if chosen else None
