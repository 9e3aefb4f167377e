"""One job over N processes (``--nproc N``): data-parallel training, whichever executor
carries the job out (this process, or a Ray worker).

``train`` is the one place that chooses: a job of ``--nproc N`` goes over N processes
(``launch``), unless this process already is one of a data-parallel run's; else it trains
here (``harness.runs.seed.train_job``). Every executor trains a job through it.

``launch`` hands the job to N ranks started by torch's launcher (``harness.engine.distributed.
launch``), as a file holding the job as values (a ``JobSpec``: the request, the seed, the
decision), never as command-line text; each rank runs ``harness rank FILE`` (``run_rank``),
which rebuilds the job (the data is ready: the caller prepared it) and trains its share; the
main rank writes the run's files and the outcome, which ``launch`` reads back for the
dispatcher.

A run launched by hand under ``torchrun`` needs none of this: every rank runs the whole
command, and the in-process executor trains each job as this process's rank.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path

from harness.engine import checkpoint, distributed
from harness.engine.control import Interrupted
from harness.engine.events import TrainObserver
from harness.errors import HarnessError
from harness.runs import seed as seeds
from harness.runs.job import Job, JobSpec, Outcome, rebuild

#: The file a rank's outcome is written to, beside the job's.
OUTCOME_NAME = "outcome.pickle"


def train(job: Job, observer: TrainObserver, threads: int | None = None) -> Outcome:
    """``job`` trained here: over its ``--nproc`` processes (``launch``), unless this
    process already is one rank of a data-parallel run (started by torchrun), else in this
    process. ``threads``: the CPU threads the job may use (a Ray task's), shared out
    between its processes."""
    nproc = job.plan.launch.processes
    if nproc > 1 and not distributed.launched():
        if threads is not None:
            os.environ["OMP_NUM_THREADS"] = str(max(1, threads // nproc))
        return launch(job, nproc)
    return seeds.train_job(job, observer)


def launch(job: Job, nproc: int) -> Outcome:
    """Train ``job`` over ``nproc`` processes here; its outcome, from the main rank. A stop
    (Ctrl-C) raises ``Interrupted`` as a run in this process would."""
    spec = JobSpec.of(job, nproc=nproc)
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
    """One rank of ``launch``: rebuild the job, train this rank's share; the main rank
    writes the outcome beside the job's file. The exit code: 0, or 130 on a stop."""
    spec: JobSpec = pickle.loads(Path(path).read_bytes())
    job = rebuild(spec)
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
    if job.plan.world.is_main:
        Path(path).with_name(OUTCOME_NAME).write_bytes(pickle.dumps(outcome))
    return code


def _last(job: Job) -> Path | None:
    folder = checkpoint.directory(job.folder)
    return checkpoint.paths(folder, "last")[0] if checkpoint.exists(folder) else None
