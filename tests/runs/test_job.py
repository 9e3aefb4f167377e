"""A job (``harness.runs.job``): the decision table, the earlier-success rule, and the one job
spec every other process is handed (a Ray task, each rank of ``--nproc``): plain values that
survive pickling and rebuild the same job."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import pytest

from harness.runs.job import Action, Job, JobSpec, decide, job_of, keeps_earlier, rebuild
from harness.runs.planning import plan
from harness.runs.requests import RunRequest
from tests.helpers import make_record

SUCCEEDED = make_record("dice", 0, 0.5)
FAILED = make_record("dice", 0, 0.5, status="failed")

#: (--resume, the record there, a checkpoint there, --rerun) -> what the run does.
DECISIONS = [
    (False, None, False, False, Action.TRAIN),
    (False, None, True, False, Action.REFUSE),  # an interrupted run's checkpoint, no --resume
    (False, SUCCEEDED, False, False, Action.SKIP),  # a finished run is never replaced silently
    (False, SUCCEEDED, True, False, Action.SKIP),
    (False, FAILED, True, False, Action.TRAIN),
    (False, FAILED, False, False, Action.TRAIN),  # a failed run is not finished: trained again
    (True, None, False, False, Action.TRAIN),  # nothing to resume: from the beginning
    (True, None, True, False, Action.RESUME),
    (True, FAILED, True, False, Action.RESUME),
    (True, FAILED, False, False, Action.TRAIN),
    (True, SUCCEEDED, False, False, Action.SKIP),
    (True, SUCCEEDED, True, False, Action.SKIP),
    (False, SUCCEEDED, False, True, Action.TRAIN),  # --rerun starts afresh
    (False, SUCCEEDED, True, True, Action.TRAIN),
    (False, None, True, True, Action.TRAIN),  # --rerun of an interrupted run: afresh
    (False, FAILED, False, True, Action.TRAIN),
]


@pytest.mark.parametrize("resume, record, interrupted, rerun, action", DECISIONS)
def test_the_decision_table(resume, record, interrupted, rerun, action) -> None:
    assert decide(resume, record, interrupted, rerun) is action


def test_an_earlier_success_is_kept_only_from_a_rerun_that_does_not_succeed() -> None:
    assert keeps_earlier(SUCCEEDED, "failed") and keeps_earlier(SUCCEEDED, "stopped")
    assert not keeps_earlier(SUCCEEDED, "succeeded")
    assert not keeps_earlier(FAILED, "failed") and not keeps_earlier(None, "failed")


# --- the job spec ---------------------------------------------------------------------------


def _request(tmp: Path, **changes) -> RunRequest:
    return RunRequest.from_options(
        model="unet", loss="dice", protocol="tiny", seeds="0,3", device="cpu",
        runs_dir=tmp / "runs", leaderboards_dir=tmp / "boards", **changes,
    )  # fmt: skip


def same_job(rebuilt: Job, job: Job) -> None:
    """The same run: folder, seed, fold, decision, benchmark, entry, tuning, settings."""
    assert rebuilt.folder == job.folder and rebuilt.seed == job.seed and rebuilt.fold == job.fold
    assert rebuilt.action is job.action
    assert rebuilt.plan.benchmark.id == job.plan.benchmark.id
    assert rebuilt.plan.entry.key == job.plan.entry.key
    assert rebuilt.plan.tuning == job.plan.tuning
    assert rebuilt.plan.launch == job.plan.launch
    assert rebuilt.protocol.hash == job.protocol.hash


def test_a_spec_is_the_job_as_values_for_its_seed_alone(tmp_path: Path) -> None:
    planned = plan(_request(tmp_path, jobs=2))
    planned.tuning = {"budget": "tuned: 2 trials"}
    job = job_of(planned, 3)
    spec = JobSpec.of(job, device="cpu")
    assert spec.request.benchmark.seeds == (3,)  # its seed alone, not the command's 0 and 3
    assert spec.request.launch.jobs is None and spec.request.launch.cluster is None
    assert (spec.seed, spec.action, spec.fold, spec.tuning) == (
        3,
        Action.TRAIN,
        None,
        job.plan.tuning,
    )
    # the request has no --jobs of its own: how many runs go at once travels beside it
    assert spec.concurrent_runs == 2 == rebuild(spec).plan.launch.concurrent_runs
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.seed = 4  # type: ignore[misc]
    moved = spec.replace(runs_dir=tmp_path / "elsewhere")
    assert moved.request.launch.runs_dir == tmp_path / "elsewhere" and moved.seed == 3
    assert spec.request.launch.runs_dir == tmp_path / "runs"  # the original stays


def test_a_spec_survives_pickling_and_rebuilds_the_same_job(tmp_path: Path) -> None:
    planned = plan(_request(tmp_path, folds="0,2"))
    planned.tuning = {"chosen": {"trial": 1}}
    job = job_of(planned, 3, fold=2)
    spec = pickle.loads(pickle.dumps(JobSpec.of(job)))
    assert spec == JobSpec.of(job)
    rebuilt = rebuild(spec)
    same_job(rebuilt, job)
    assert rebuilt.fold == 2 and rebuilt.folder.name == "fold-2-seed-3"
    assert rebuilt.plan.seeds == [3]
