"""One job over N processes (``harness.runs.ranks``): ``train`` is the one branch between
``--nproc`` ranks and this process; ``launch`` reads the main rank's outcome back (a stop is
a stop, bad input said by a rank is said once, an exit without an outcome is a failure);
``run_rank`` writes that outcome. The ranks themselves (torch's launcher) are made up here:
real ones train in tests/engine/test_distributed.py and executors/test_ray.py."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.engine.control import Interrupted
from harness.errors import HarnessError
from harness.runs import ranks
from harness.runs.job import Outcome
from tests.helpers import Recorder


def _job(nproc: int = 2, main: bool = True, folder: Path = Path("nowhere")) -> SimpleNamespace:
    world = SimpleNamespace(is_main=main)
    return SimpleNamespace(
        plan=SimpleNamespace(launch=SimpleNamespace(processes=nproc), world=world), folder=folder
    )


@pytest.fixture
def ranks_end(monkeypatch: pytest.MonkeyPatch) -> dict:
    """How the made-up ranks end: ``outcome`` (bytes written beside the job's file, or None)
    and ``code``; ``seen`` keeps what they were handed."""
    ending: dict = {"outcome": None, "code": 0, "seen": []}

    def launch(nproc: int, args: list[str]) -> int:
        job_file = Path(args[1])
        ending["seen"].append((nproc, args[0], pickle.loads(job_file.read_bytes()), job_file))
        if ending["outcome"] is not None:
            job_file.with_name(ranks.OUTCOME_NAME).write_bytes(ending["outcome"])
        return ending["code"]

    monkeypatch.setattr(ranks.distributed, "launch", launch)
    monkeypatch.setattr(ranks.JobSpec, "of", staticmethod(lambda job, nproc: {"nproc": nproc}))
    return ending


def test_the_main_ranks_outcome_comes_back(ranks_end: dict) -> None:
    ranks_end["outcome"] = pickle.dumps(Outcome("succeeded", reason="all ranks"))
    outcome = ranks.launch(_job(), 2)
    assert outcome.status == "succeeded" and outcome.reason == "all ranks"
    ((nproc, command, spec, job_file),) = ranks_end["seen"]
    assert (nproc, command, spec) == (2, "rank", {"nproc": 2})  # values, not command text
    assert not job_file.parent.exists()  # the scratch folder goes


@pytest.mark.parametrize(
    "code, outcome, said",
    [
        (3, None, "failed: 2 processes: exit code 3"),
        (1, b"not a pickle", "failed: 2 processes: exit code 1"),
        (2, None, "HarnessError: 2 processes: bad input (said above)"),
        (130, None, "Interrupted: stopped at the processes' start"),
    ],
)
def test_ranks_that_end_without_an_outcome(
    ranks_end: dict, code: int, outcome: bytes | None, said: str
) -> None:
    ranks_end.update(code=code, outcome=outcome)
    try:
        got = ranks.launch(_job(), 2)
    except (HarnessError, Interrupted) as exc:
        assert f"{type(exc).__name__}: {exc}" == said
        assert not isinstance(exc, HarnessError) or exc.echoed  # the rank said it: once
    else:
        assert f"{got.status}: {got.reason}" == said


def test_a_stopped_rank_stops_the_job_with_its_checkpoint(ranks_end: dict) -> None:
    extra = {"where": "epoch 2, batch 3 of 8", "checkpoint": Path("ck/last.pt")}
    ranks_end.update(code=130, outcome=pickle.dumps(Outcome("stopped", extra=extra)))
    with pytest.raises(Interrupted) as caught:
        ranks.launch(_job(), 2)
    assert caught.value.checkpoint == Path("ck/last.pt")
    assert caught.value.where == "epoch 2, batch 3 of 8"


def test_train_chooses_ranks_only_for_nproc_outside_a_launched_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    went: list[str] = []
    monkeypatch.setattr(ranks, "launch", lambda job, n: went.append(f"ranks {n}") or Outcome("r"))
    monkeypatch.setattr(ranks.seeds, "train_job", lambda job, obs: went.append("here") or None)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(ranks.distributed, "launched", lambda: False)
    ranks.train(_job(nproc=1), Recorder())
    ranks.train(_job(nproc=3), Recorder(), threads=7)  # a Ray task's 7 CPUs over 3 ranks
    assert went == ["here", "ranks 3"] and os.environ["OMP_NUM_THREADS"] == "2"
    monkeypatch.setattr(ranks.distributed, "launched", lambda: True)  # under torchrun
    ranks.train(_job(nproc=3), Recorder())
    assert went[-1] == "here"


@pytest.mark.parametrize("main", [True, False])
def test_a_rank_writes_its_outcome_only_as_the_main_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, main: bool
) -> None:
    job = _job(main=main, folder=tmp_path / "run")
    monkeypatch.setattr(ranks, "rebuild", lambda spec: job)

    def stopped(job: SimpleNamespace, observer: object) -> Outcome:
        raise Interrupted(None, "epoch 1, batch 2 of 4")

    monkeypatch.setattr(ranks.seeds, "train_job", stopped)
    job_file = tmp_path / "job.pickle"
    job_file.write_bytes(pickle.dumps({"spec": 1}))
    assert ranks.run_rank(job_file, Recorder()) == 130
    written = tmp_path / ranks.OUTCOME_NAME
    assert written.exists() is main
    if main:
        outcome = pickle.loads(written.read_bytes())
        assert outcome.status == "stopped"
        assert outcome.extra == {"where": "epoch 1, batch 2 of 4", "checkpoint": None}
