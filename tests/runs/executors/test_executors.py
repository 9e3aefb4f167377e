"""Choosing the executor (``harness.runs.executors.choose``): once per command, by the
request's launch options; each executor checks its own options (``--jobs``, a ``--cluster``
that must answer: asked once per command, never for a ``--dry-run``), and the planner and the
command line ask the chosen executor rather than the options again. A job another process
carries out (a Ray task, a rank of ``--nproc``) is one ``JobSpec`` that rebuilds the same job.
"""

from __future__ import annotations

import ast
import pickle
from collections.abc import Sequence
from pathlib import Path

import pytest

from harness.engine.events import NullObserver, TrainObserver
from harness.errors import HarnessError
from harness.runs import executors, ranks
from harness.runs.executors import InProcess, Ray, choose, ray_cluster
from harness.runs.executors import ray as ray_executor
from harness.runs.job import Action, Job, JobSpec, Land, Outcome, job_of, rebuild
from harness.runs.planning import plan
from harness.runs.requests import Launch, RunRequest
from tests.helpers import REPO

CLUSTER = "10.9.9.9:6379"  # never reached: the probe is counted, and Ray is not started


def _request(tmp: Path | None = None, **launch) -> RunRequest:
    folders = {"runs_dir": tmp / "runs", "leaderboards_dir": tmp / "boards"} if tmp else {}
    return RunRequest.of(
        model="unet", loss="dice", protocol="tiny", device="cpu", **folders, **launch
    )


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every address the cluster probe is asked about (a cluster that always answers)."""
    asked: list[str] = []
    monkeypatch.setattr(
        ray_cluster, "check_cluster", lambda address, *a, **k: asked.append(address)
    )
    return asked


def test_the_launch_options_choose_the_executor(probes: list[str]) -> None:
    here = choose(_request())
    assert isinstance(here, InProcess) and not here.remote and not here.announces
    for launch in ({"jobs": 2}, {"cluster": CLUSTER}, {"jobs": 1, "cluster": CLUSTER}):
        chosen = choose(_request(**launch))
        assert isinstance(chosen, Ray) and chosen.remote and chosen.announces
    assert probes == [CLUSTER, CLUSTER]  # once per choice that names a cluster


@pytest.mark.parametrize("jobs", [0, -1])
def test_jobs_must_be_positive(jobs: int, probes: list[str]) -> None:
    with pytest.raises(HarnessError, match=rf"^--jobs {jobs}: give a positive number of runs"):
        choose(_request(jobs=jobs, cluster=CLUSTER))
    assert not probes  # refused before the cluster is asked


def test_a_dry_run_asks_no_cluster(probes: list[str]) -> None:
    assert isinstance(choose(_request(cluster=CLUSTER, dry_run=True)), Ray)
    assert not probes


def test_a_cluster_that_does_not_answer_is_refused_by_the_choice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(address: str, *args, **kwargs) -> None:
        raise HarnessError(f"--cluster {address}: no Ray cluster answers there")

    monkeypatch.setattr(ray_cluster, "check_cluster", refuse)
    with pytest.raises(HarnessError, match=f"^--cluster {CLUSTER}: no Ray cluster answers"):
        choose(_request(cluster=CLUSTER))


class _Serial:
    """A made-up executor, as a new module would write one: one class, one table entry."""

    name = "serial"
    announces = False
    remote = True
    detaches = False
    passes_options = False

    def __init__(self, request: RunRequest) -> None:
        self.request = request

    @classmethod
    def takes(cls, launch: Launch) -> bool:
        return bool(launch.cluster and launch.cluster.startswith("serial:"))

    @classmethod
    def check(cls, request: RunRequest) -> None:
        if request.launch.cluster == "serial:":
            raise HarnessError("--cluster serial: name a queue")

    def preview(self, jobs: Sequence[Job]) -> list[str]:
        return []

    def run(self, jobs: Sequence[Job], land: Land, observer: TrainObserver) -> None:
        for job in jobs:
            land(job, Outcome("failed", reason="serial"))


def test_a_new_executor_is_one_class_and_one_entry(
    monkeypatch: pytest.MonkeyPatch, probes: list[str]
) -> None:
    monkeypatch.setattr(executors, "ELSEWHERE", (_Serial, *executors.ELSEWHERE))
    chosen = choose(_request(cluster="serial:q"))
    assert isinstance(chosen, _Serial) and chosen.request.launch.cluster == "serial:q"
    with pytest.raises(HarnessError, match="name a queue"):
        choose(_request(cluster="serial:"))
    assert isinstance(choose(_request(cluster=CLUSTER)), Ray)  # the others as before
    assert isinstance(choose(_request()), InProcess)
    assert not [p for p in probes if p.startswith("serial:")]  # Ray's check is Ray's alone


# --- once per command --------------------------------------------------------------------


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch, probes: list[str]) -> list[str]:
    """A ``--cluster`` whose runs are carried out here (in process, as Ray's executor would
    land them): what is counted is how often the cluster is asked."""

    def here(self: Ray, jobs: Sequence[Job], land: Land, observer: TrainObserver) -> None:
        InProcess(self.request).run(jobs, land, observer)

    monkeypatch.setattr(Ray, "run", here)
    return probes


COMMAND = ("--model", "unet", "--loss", "dice", "--protocol", "tiny", "--set", "epochs=1",
           "--device", "cpu", "--cluster", CLUSTER)  # fmt: skip


@pytest.mark.parametrize(
    "command, asked",
    [
        (("run", "--seeds", "1"), 1),
        (("run", "--seeds", "1", "--dry-run"), 0),
        (("sweep", "--vary", "loss=dice,bce", "--seeds", "1"), 1),
        (("tune", "--trials", "1", "--seeds", "1"), 1),  # trials and finals: one question
        (("tune", "--trials", "1", "--dry-run"), 0),
    ],
)
def test_a_cluster_command_asks_the_cluster_once(
    cli, tmp_path: Path, cluster: list[str], command: tuple[str, ...], asked: int
) -> None:
    result = cli(*command, *COMMAND, "--runs-dir", tmp_path / "runs",
                 "--leaderboards-dir", tmp_path / "boards")  # fmt: skip
    assert result.code == 0, result.err[-3000:]
    assert cluster == [CLUSTER] * asked
    if command[0] == "tune" and not asked:
        assert "estimate:" in result.out
    elif command[0] == "tune":  # the finals ran too, on the executor chosen once
        assert "tuned 1: lr=" in result.out


def test_the_command_line_asks_the_chosen_executor_for_a_bar_of_runs(probes: list[str]) -> None:
    """A bar of runs done when the executor announces each run (no bars of their own)."""
    from harness.cli import launch

    with launch.reporting(choose(_request(jobs=2))) as (_, runs):
        assert runs is not None
    with launch.reporting(choose(_request())) as (_, runs):
        assert runs is None


def test_the_planner_asks_the_chosen_executor_whether_runs_train_here(
    cli, tmp_path: Path, cluster: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The planner bounds ``--nproc`` by this machine's GPUs only for runs trained here:
    it is told by the executor chosen for the command (``Executor.remote``)."""
    from harness.runs import settings

    told: list[bool] = []
    original = settings._check_nproc

    def record(request, proto, device, remote) -> None:
        told.append(remote)
        original(request, proto, device, remote)

    monkeypatch.setattr(settings, "_check_nproc", record)
    folders = ("--runs-dir", tmp_path / "runs", "--leaderboards-dir", tmp_path / "boards")
    here = cli("run", *COMMAND[:-2], "--seeds", "1", *folders)
    elsewhere = cli("run", *COMMAND, "--seeds", "1", "--dry-run", *folders)
    assert here.code == 0 and elsewhere.code == 0, here.err + elsewhere.err
    assert told == [False, True]


# --- one job spec, one --nproc branch ----------------------------------------------------


def _calls(name: str) -> set[str]:
    """The modules of the package that call ``name``."""
    found = set()
    for path in sorted((REPO / "harness").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if called == name:
                    found.add(path.relative_to(REPO).as_posix())
    return found


def test_every_executor_trains_through_one_nproc_branch() -> None:
    """``ranks.train`` is the one place that chooses between ``--nproc`` ranks and this
    process; the executors call it, and nothing else trains a job directly."""
    assert _calls("train_job") == {"harness/runs/ranks.py"}
    assert _calls("train") >= {
        "harness/runs/executors/local.py",
        "harness/runs/executors/ray.py",
        "harness/runs/executors/slurm.py",
    }
    assert _calls("rebuild") == {
        "harness/runs/ranks.py",
        "harness/runs/executors/ray.py",
        "harness/runs/executors/slurm.py",
    }


class _FakeRay:
    """What ``Ray._submit`` asks of Ray, with the task's arguments kept."""

    def __init__(self) -> None:
        self.sent: list[tuple] = []

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": 4.0}

    def remote(self, **options):
        def wrap(fn):
            outer = self

            class Task:
                def remote(self, *args):
                    outer.sent.append((fn, options, args))
                    return object()

            return Task()

        return wrap


def test_a_spec_rebuilds_the_same_job_in_process_on_ray_and_on_ranks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, probes: list[str]
) -> None:
    """The job the dispatcher planned here (what ``InProcess`` trains) is the job a Ray task
    rebuilds from what ``Ray._submit`` sends, and the job each rank rebuilds from the file
    ``ranks.launch`` writes: through pickling, the same folder, seed, fold, decision,
    benchmark, entry, tuning and settings."""
    planned = plan(_request(tmp_path, jobs=2, seeds=(0, 1), nproc=2))
    planned.tuning = {"budget": "tuned: 3"}
    job = job_of(planned, 1)
    assert job.action is Action.TRAIN

    fake = _FakeRay()
    Ray(planned.request)._submit(fake, job)
    ((task, options, (spec, token, threads, files)),) = fake.sent
    assert task is ray_executor.train_task and options["max_calls"] == 1
    assert isinstance(spec, JobSpec) and files == {} and threads >= 1 and token
    on_ray = rebuild(pickle.loads(pickle.dumps(spec)))

    handed: list[JobSpec] = []

    def launch(nproc: int, args: list[str]) -> int:
        handed.append(pickle.loads(Path(args[1]).read_bytes()))
        return 3

    monkeypatch.setattr(ranks.distributed, "launch", launch)
    outcome = ranks.train(job, NullObserver())  # --nproc 2: over two ranks
    assert outcome.status == "failed" and "exit code 3" in outcome.reason
    (for_ranks,) = handed
    assert for_ranks.request.launch.nproc == 2
    on_ranks = rebuild(for_ranks)

    for rebuilt in (on_ray, on_ranks):
        assert rebuilt.folder.resolve() == job.folder.resolve()
        assert (rebuilt.seed, rebuilt.fold, rebuilt.action) == (1, None, Action.TRAIN)
        assert rebuilt.plan.benchmark.id == job.plan.benchmark.id
        assert rebuilt.plan.entry.key == job.plan.entry.key
        assert rebuilt.plan.tuning == {"budget": "tuned: 3"}
        assert rebuilt.plan.launch == job.plan.launch
        assert rebuilt.plan.request.launch.jobs is None  # where it runs, it runs
    assert not probes
