"""One job over N processes (``--nproc N``): data-parallel training, whichever executor
carries the job out (this process, or a Ray worker).

``launch`` hands the job to N ranks started by torch's launcher (``harness.engine.distributed.
launch``), as a file holding the job as values (the request, the seed, the decision), never
as command-line text; each rank runs ``harness rank FILE`` (``run_rank``), which plans the
request (the data is ready: the caller prepared it) and trains its share; the main rank
writes the run's files and the outcome, which ``launch`` reads back for the dispatcher.

A run launched by hand under ``torchrun`` needs none of this: every rank runs the whole
command, and the in-process executor trains each job as this process's rank.
"""

from __future__ import annotations

import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.engine import checkpoint
from harness.engine.control import Interrupted
from harness.engine.events import TrainObserver
from harness.errors import HarnessError
from harness.runs import seed as seeds
from harness.runs.job import Action, Job, Outcome
from harness.runs.planning import plan as plan_request
from harness.runs.planning import run_dir
from harness.runs.requests import RunRequest

#: The file a rank's outcome is written to, beside the job's.
OUTCOME_NAME = "outcome.pickle"


@dataclass(frozen=True)
class RankJob:
    """What each rank is handed: the run's request (one seed), its decision, its tuning."""

    request: RunRequest
    seed: int
    action: Action
    tuning: dict[str, Any] = field(default_factory=dict)
    fold: int | None = None


def launch(job: Job, nproc: int) -> Outcome:
    """Train ``job`` over ``nproc`` processes here; its outcome, from the main rank. A stop
    (Ctrl-C) raises ``Interrupted`` as a run in this process would."""
    from harness.engine import distributed

    assert job.plan.request is not None
    request = job.plan.request.replace(seeds=(job.seed,), nproc=nproc, jobs=None, cluster=None)
    spec = RankJob(request, job.seed, job.action, job.plan.tuning, job.fold)
    with tempfile.TemporaryDirectory(prefix="harness-ranks-") as scratch:
        path = Path(scratch) / "job.pickle"
        path.write_bytes(pickle.dumps(spec))
        code = distributed.launch(nproc, ["rank", str(path)])
        outcome = _read(path.with_name(OUTCOME_NAME))
    if outcome is None:
        if code == 130:
            raise Interrupted(None, "the processes' start")
        if code == 2:  # bad input, which the rank has said
            raise HarnessError(f"{nproc} processes: bad input (said above)", echoed=True)
        return Outcome("failed", reason=f"{nproc} processes: exit code {code}")
    if outcome.status == "stopped":
        where = outcome.extra.get("where", "a step")
        raise Interrupted(outcome.extra.get("checkpoint"), where)
    return outcome


def _read(path: Path) -> Outcome | None:
    try:
        outcome = pickle.loads(path.read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError):
        return None
    return outcome if isinstance(outcome, Outcome) else None


def run_rank(path: Path, observer: TrainObserver) -> int:
    """One rank of ``launch``: plan the job's request, train this rank's share; the main
    rank writes the outcome beside the job's file. The exit code: 0, or 130 on a stop."""
    spec: RankJob = pickle.loads(Path(path).read_bytes())
    resolved = plan_request(spec.request)
    resolved.tuning = spec.tuning
    folder = run_dir(resolved, spec.seed, spec.fold)
    job = Job(resolved, spec.seed, folder, spec.action, fold=spec.fold)
    code = 0
    try:
        outcome = seeds.train_job(job, observer)
    except Interrupted as exc:
        saved = exc.checkpoint or _last(job)
        outcome = Outcome("stopped", extra={"where": exc.where, "checkpoint": saved})
        code = 130
    except KeyboardInterrupt:
        outcome = Outcome("stopped", extra={"where": "a step", "checkpoint": _last(job)})
        code = 130
    if resolved.world.is_main:
        Path(path).with_name(OUTCOME_NAME).write_bytes(pickle.dumps(outcome))
    return code


def _last(job: Job) -> Path | None:
    folder = checkpoint.directory(job.folder)
    return checkpoint.paths(folder, "last")[0] if checkpoint.exists(folder) else None
