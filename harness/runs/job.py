"""A job: one run (one entry, one seed, on one benchmark) with what the dispatcher decided
for it, and the outcome an executor hands back.

``decide`` is the whole decision, as a table of facts about the run's folder: whether it
trains from the start, resumes from its checkpoint, is skipped, or is refused. ``keeps_earlier``
is the one rule for a rerun that does not succeed: an earlier succeeded record stays. Both
are pure; ``harness.runs.dispatch`` applies them, executors only carry jobs out.

A job that another process carries out (a Ray task, each rank of ``--nproc``, a cluster's
job) travels as a ``JobSpec``: plain values, frozen and picklable, which ``rebuild`` plans
again into the same job there.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.engine import checkpoint
from harness.engine.trainer import unit_of
from harness.protocol import Protocol
from harness.results.records import RECORD_NAME, Record, read_record
from harness.runs.planning import Plan, run_dir
from harness.runs.planning import plan as plan_request
from harness.runs.requests import RunRequest


class Action(enum.Enum):
    """What happens to a run."""

    TRAIN = "train"  # from the beginning (--rerun of a finished run starts afresh)
    RESUME = "resume"  # from the ``last`` checkpoint of an interrupted run (--resume)
    SKIP = "skip"  # already succeeded: only reported (--rerun trains it again)
    REFUSE = "refuse"  # an interrupted run's checkpoint is there and --resume was not given


def decide(resume: bool, record: Record | None, interrupted: bool, rerun: bool = False) -> Action:
    """The decision for one run from what its folder holds: its ``record`` (None: none) and
    whether an interrupted run left a checkpoint; ``resume``: ``--resume`` was given,
    ``rerun``: ``--rerun`` was (a finished run is never replaced without it)."""
    if rerun:
        return Action.TRAIN
    if record is not None and record.status == "succeeded":
        return Action.SKIP
    if interrupted and resume:
        return Action.RESUME
    if interrupted and record is None:
        return Action.REFUSE
    return Action.TRAIN


def keeps_earlier(earlier: Record | None, status: str) -> bool:
    """A rerun that fails or stops never costs a result: an earlier succeeded record (and
    its final weights) stays when this one's ``status`` is not ``succeeded``."""
    return status != "succeeded" and earlier is not None and earlier.status == "succeeded"


@dataclass(frozen=True)
class Job:
    """One run to carry out: a plan's entry, one seed, its folder, the decision."""

    plan: Plan
    seed: int
    folder: Path
    action: Action
    #: The record the folder held when the job was decided (kept if a rerun fails).
    earlier: Record | None = None
    #: The fold of a cross-validated benchmark this run validates on (None: the protocol's).
    fold: int | None = None

    @property
    def name(self) -> str:
        return f"{self.plan.entry.label} {self.unit}"

    @property
    def unit(self) -> str:
        """``seed 0``, or ``fold 2 seed 0`` for a fold of a cross-validated benchmark."""
        return unit_of(self.protocol, self.seed)

    @property
    def protocol(self) -> Protocol:
        """The protocol this run trains and validates under: the benchmark's, with its fold."""
        proto = self.plan.benchmark.protocol
        return proto if self.fold is None else dataclasses.replace(proto, fold=self.fold)

    @property
    def record_path(self) -> Path:
        return self.folder / RECORD_NAME


def job_of(plan: Plan, seed: int, fold: int | None = None, resume: bool | None = None) -> Job:
    """The job of ``seed`` (on ``fold``): what its folder holds, and what ``decide`` makes of
    it (with ``resume``, or the plan's ``--resume``; a ``resume`` given here is a retried task
    continuing its own run, never a ``--rerun``)."""
    folder = run_dir(plan, seed, fold)
    record = read_record(folder / RECORD_NAME)
    interrupted = checkpoint.exists(checkpoint.directory(folder))
    rerun = plan.request.launch.rerun if resume is None else False
    action = decide(plan.resume if resume is None else resume, record, interrupted, rerun)
    return Job(plan, seed, folder, action, record, fold)


@dataclass
class Outcome:
    """What an executor hands back for a job.

    ``succeeded``: the run wrote its record (``record``). ``failed``: ``record`` is the failed
    record the dispatcher writes, unless an earlier success is kept; ``usage`` marks a failure
    that is bad input (a plugin breaking its contract: exit 2, the command stops).
    """

    status: str
    record: Record | None = None
    reason: str = ""
    usage: bool = False
    #: Said already (by a data-parallel run's main rank): the other ranks stay quiet.
    echoed: bool = False
    #: The run's files, from a worker that cannot see this runs folder: relative path -> bytes.
    files: dict[str, bytes] = field(default_factory=dict)
    #: Lines a worker said, for the dispatcher to print.
    messages: list[str] = field(default_factory=list)
    #: Anything else an executor reports (its own field names).
    extra: dict[str, Any] = field(default_factory=dict)


#: What an executor calls as each job ends (``harness.runs.dispatch`` lands it).
Land = Callable[[Job, Outcome], None]


@dataclass(frozen=True)
class JobSpec:
    """A job as plain values, for another process to plan and carry out: the request of
    this run alone (its seed; no ``--jobs``/``--cluster`` of its own: it is where it runs),
    its seed and fold, the decision, a tuned entry's tuning (``Plan.tuning``) and the executor
    that sent it (``Plan.executor``). Frozen
    and picklable; ``rebuild`` makes the job again."""

    request: RunRequest
    seed: int
    action: Action
    fold: int | None = None
    tuning: dict[str, Any] = field(default_factory=dict)
    #: The executor that sent it (``Plan.executor``: its records say so).
    executor: str = "in-process"
    #: The most runs of its command that train at once (``LaunchSettings.concurrent_runs``;
    #: the request it holds has no ``--jobs`` of its own).
    concurrent_runs: int | None = 1

    @classmethod
    def of(cls, job: Job, **changes: Any) -> JobSpec:
        """``job`` as values; ``changes``: request fields set for where it goes, by name
        (``device=``, ``runs_dir=``)."""
        request = job.plan.request.replace(
            seeds=(job.seed,), jobs=None, cluster=None, cluster_opts=(), detach=False, **changes
        )
        plan = job.plan
        return cls(
            request,
            job.seed,
            job.action,
            job.fold,
            plan.tuning,
            plan.executor,
            plan.launch.concurrent_runs,
        )

    def replace(self, **changes: Any) -> JobSpec:
        """This spec with request fields changed by name (``RunRequest.replace``)."""
        return dataclasses.replace(self, request=self.request.replace(**changes))


def rebuild(spec: JobSpec) -> Job:
    """The job ``spec`` holds, planned in this process (its data made ready here, its
    launch settings resolved for this machine), in its run folder under the request's."""
    plan = plan_request(spec.request)
    plan.tuning = spec.tuning
    plan.executor = spec.executor
    plan.launch = dataclasses.replace(plan.launch, concurrent_runs=spec.concurrent_runs)
    folder = run_dir(plan, spec.seed, spec.fold)
    return Job(plan, spec.seed, folder, spec.action, fold=spec.fold)
