"""In process (``harness.runs.executors.local``): each job trained here, one after another,
through the one ``--nproc`` branch (``harness.runs.ranks.train``); each plan's title said
once, each outcome landed as it ends, what a killed command left cleared first (by the main
rank only), and a Ctrl-C names the job it stopped."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.runs.executors import local, markers
from harness.runs.job import Outcome
from harness.runs.requests import RunRequest
from tests.helpers import Recorder


def _job(seed: int, plan: SimpleNamespace) -> SimpleNamespace:
    return SimpleNamespace(seed=seed, plan=plan)


def _plan(runs: Path, title: str | None, main: bool = True) -> SimpleNamespace:
    return SimpleNamespace(runs_dir=runs, title=title, world=SimpleNamespace(is_main=main))


@pytest.fixture
def trained(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The seeds ``ranks.train`` was handed, in order; seed 13 is stopped by a Ctrl-C."""
    seen: list[int] = []

    def train(job: SimpleNamespace, observer: object) -> Outcome:
        seen.append(job.seed)
        if job.seed == 13:
            raise KeyboardInterrupt
        return Outcome("succeeded", reason=f"seed {job.seed}")

    monkeypatch.setattr(local.ranks, "train", train)
    return seen


def _stale(runs: Path) -> Path:
    """A marker whose command's token is gone: what a killed command leaves."""
    marker = runs / "bench" / "entry" / "seed-0" / markers.MARKER
    marker.parent.mkdir(parents=True)
    marker.write_text(json.dumps({"token": "gone", "pid": 1}))
    return marker


def test_jobs_train_here_in_order_each_landed_and_each_title_said_once(
    tmp_path: Path, trained: list[int]
) -> None:
    runs = tmp_path / "runs"
    stale = _stale(runs)
    first, second = _plan(runs, "sweep loss = bce"), _plan(runs, None)
    jobs = [_job(0, first), _job(1, first), _job(2, second)]
    landed: list[tuple[int, str | None]] = []
    heard = Recorder()
    executor = local.InProcess(RunRequest.of(model="unet", loss="dice", runs_dir=runs))
    executor.run(jobs, lambda job, outcome: landed.append((job.seed, outcome.reason)), heard)
    assert trained == [0, 1, 2]
    assert landed == [(0, "seed 0"), (1, "seed 1"), (2, "seed 2")]
    assert heard.named("message") == [
        f"{runs}: removed what a killed command left (1 job marker(s), 0 token(s))",
        "sweep loss = bce",
    ]
    assert not stale.exists()
    assert executor.preview(jobs) == [] and not executor.remote and not executor.announces


def test_a_rank_other_than_the_main_one_clears_nothing(tmp_path: Path, trained: list[int]) -> None:
    runs = tmp_path / "runs"
    stale = _stale(runs)
    local.InProcess(RunRequest.of(model="unet", loss="dice", runs_dir=runs)).run(
        [_job(0, _plan(runs, None, main=False))], lambda job, outcome: None, Recorder()
    )
    assert trained == [0] and stale.exists()  # the main rank's to clear


def test_with_nothing_to_train_the_requests_runs_folder_is_cleared(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    stale = _stale(runs)
    local.InProcess(RunRequest.of(model="unet", loss="dice", runs_dir=runs)).run(
        [], lambda job, outcome: None, Recorder()
    )
    assert not stale.exists()


def test_a_ctrl_c_names_the_job_it_stopped_and_lands_no_later_job(
    tmp_path: Path, trained: list[int]
) -> None:
    runs = tmp_path / "runs"
    plan = _plan(runs, None)
    jobs = [_job(0, plan), _job(13, plan), _job(2, plan)]
    landed: list[int] = []
    with pytest.raises(KeyboardInterrupt) as caught:
        local.InProcess(RunRequest.of(model="unet", loss="dice", runs_dir=runs)).run(
            jobs, lambda job, outcome: landed.append(job.seed), Recorder()
        )
    assert caught.value.job is jobs[1]  # for the dispatcher's report
    assert trained == [0, 13] and landed == [0]
