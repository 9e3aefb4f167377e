"""Slurm (``--cluster slurm:PARTITION``), tested against a real single-node Slurm started once
per session (``slurm_cluster`` in this folder's conftest; skipped where it cannot start): a
sweep lands both records with a local sweep's Dice, a requeued task resumes and a cancelled one
is retrained from its checkpoint by ``--resume`` alone, a queued run is never submitted twice,
``--detach`` then ``--resume`` collects, ``--dry-run`` prints the sbatch script, and each bad
input is one line before anything is submitted. Tasks run the ``tiny`` protocol.
"""

from __future__ import annotations

import ast
import threading
import time
from pathlib import Path

import pytest

from harness.engine import checkpoint
from harness.errors import HarnessError
from harness.results.records import read_record
from harness.runs import executors
from harness.runs.executors import InProcess, Ray, Slurm, choose, markers
from harness.runs.executors import slurm as executor
from harness.runs.requests import RunRequest
from tests.helpers import PLUGIN, REPO

TINY = ("--protocol", "tiny", "--cluster", "slurm:debug")


def _folders(tmp: Path, name: str = "") -> tuple[str, ...]:
    return ("--runs-dir", str(tmp / f"runs{name}"), "--leaderboards-dir", str(tmp / "boards"))


def _records(runs: Path) -> dict[str, dict]:
    """Each record under ``runs`` by its entry folder and seed (``unet-dice-.../seed-0``)."""
    found = {}
    for path in sorted(runs.rglob("record.json")):
        record = read_record(path)
        assert record is not None
        found[f"{path.parent.parent.name}/{path.parent.name}"] = record
    return found


def _error_line(err: str) -> str:
    (line,) = [x for x in err.splitlines() if x.startswith("harness: error:")]
    return line


# --- the same numbers as at home ------------------------------------------------------


class _Squeue(threading.Thread):
    """Polls squeue while a command runs: every task state it saw, by poll."""

    def __init__(self, cluster) -> None:
        super().__init__(daemon=True)
        self.cluster, self.seen, self.stop = cluster, [], threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.seen.append(self.cluster.live())
            time.sleep(0.5)


def test_a_sweep_lands_both_records_with_the_dice_of_a_local_sweep(
    slurm, cli, tmp_path: Path
) -> None:
    import torch

    sweep = ("sweep", "--vary", "loss=dice,bce", "--model", "unet", "--protocol", "tiny")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a task asking for one CPU trains (the sums' order is the same)
    try:
        local = cli(*sweep, *_folders(tmp_path, "-local"))
    finally:
        torch.set_num_threads(threads)
    assert local.code == 0, local.err[-3000:]

    watch = _Squeue(slurm)
    watch.start()
    try:
        result = cli(*sweep, "--cluster", "slurm:debug", "--jobs", "2", *_folders(tmp_path))
    finally:
        watch.stop.set()
        watch.join()
    assert result.code == 0, result.err[-3000:]
    assert "submitted 2 run(s) as Slurm job" in result.err
    # The array's two tasks ran side by side (at most --jobs 2 at once).
    assert any(len(poll) == 2 and all(t.endswith("RUNNING") for t in poll) for poll in watch.seen)
    assert {t.split()[0].split("_")[1] for poll in watch.seen for t in poll} == {"0", "1"}

    here, there = _records(tmp_path / "runs-local"), _records(tmp_path / "runs")
    assert sorted(here) == sorted(there) and len(there) == 2
    for key, record in there.items():
        assert record.status == "succeeded"
        assert record.mean_dice == here[key].mean_dice  # bit for bit
        assert record.per_class_dice == here[key].per_class_dice
        assert record.cost["executor"] == "slurm" and here[key].cost["executor"] == "in-process"
        assert record.hardware["cpu"]["threads"] == here[key].hardware["cpu"]["threads"] == 1
    # The tables do not show the executor; nothing is left in the runs folder but the runs.
    for table in (tmp_path / "boards").glob("*.md"):
        assert "executor" not in table.read_text() and "slurm" not in table.read_text()
    assert not list((tmp_path / "runs" / markers.SHARED_DIR).iterdir())
    assert not list((tmp_path / "runs").rglob(markers.MARKER))


# --- pre-emption and loss --------------------------------------------------------------


def _when_checkpointed(runs: Path, seeds: int, act) -> threading.Thread:
    """A thread that waits until ``seeds`` runs under ``runs`` have a ``last`` checkpoint,
    then calls ``act`` with each run folder's Slurm task (from its marker), by seed."""

    def wait() -> None:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            folders = sorted(runs.glob("*/*/seed-*"))
            done = [f for f in folders if checkpoint.exists(checkpoint.directory(f))]
            if len(done) == seeds:
                act({f.name: str((markers.read(f) or {}).get("slurm")) for f in done})
                return
            time.sleep(0.2)

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    return thread


def _start_now(cluster, task: str) -> None:
    """A requeued task waits two minutes (Slurm's requeue delay): let it start at once."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        cluster.run("scontrol", "update", f"jobid={task}", "starttime=now", check=False)
        query = ("squeue", "--noheader", f"--jobs={task}", "--format=%T %r")
        state = cluster.command(*query, check=False).split()
        if state[:1] == ["RUNNING"] or (state[:1] == ["PENDING"] and state[1:] != ["BeginTime"]):
            return
        time.sleep(0.3)


def test_a_requeued_task_resumes_and_a_cancelled_one_is_retrained_by_resume_alone(
    slurm, cli, tmp_path: Path
) -> None:
    """Two runs as one array; once both have checkpointed, Slurm requeues the first (as a
    pre-emption does) and the second is cancelled (``scancel``, as a lost node is lost). The
    first resumes from its checkpoint and succeeds; the second is a failed run, and
    ``--resume`` submits it alone, which continues from its checkpoint."""
    plugin = tmp_path / "small_cnn.py"
    plugin.write_text(PLUGIN)
    runs = tmp_path / "runs"
    command = (
        "run", "--model", "small-cnn:delay=0.1", "--loss", "dice", "--plugin", str(plugin),
        *TINY, "--set", "epochs=8", "--set", "batch_size=1", "--seeds", "2", *_folders(tmp_path),
    )  # fmt: skip
    acted: dict[str, str] = {}

    def requeue_and_cancel(tasks: dict[str, str]) -> None:
        acted.update(tasks)
        slurm.command("scontrol", "requeue", tasks["seed-0"])
        slurm.command("scancel", tasks["seed-1"])
        _start_now(slurm, tasks["seed-0"])

    thread = _when_checkpointed(runs, 2, requeue_and_cancel)
    first = cli(*command)
    thread.join(timeout=5)
    assert acted, first.err[-3000:]
    assert first.code == 1, first.err[-3000:]
    assert "Slurm requeued this task" in first.err
    assert f"Slurm task {acted['seed-1']} ended CANCELLED without a result" in first.err
    records = _records(runs)
    (requeued,) = [r for k, r in records.items() if k.endswith("seed-0")]
    assert requeued.status == "succeeded" and len(requeued.resumes) == 1
    assert not any(k.endswith("seed-1") for k in records)  # cancelled: no record, a checkpoint
    assert not list(runs.rglob(markers.MARKER))

    second = cli(*command, "--resume")
    assert second.code == 0, second.err[-3000:]
    assert "submitted 1 run(s) as Slurm job" in second.err
    assert "seed 0: already succeeded" in second.err
    resumed = _records(runs)
    (retrained,) = [r for k, r in resumed.items() if k.endswith("seed-1")]
    assert retrained.status == "succeeded" and len(retrained.resumes) == 1
    assert retrained.resumes[0]["epoch"] >= 1  # from its checkpoint, not from the start
    assert [r.finished_at for k, r in resumed.items() if k.endswith("seed-0")] == [
        requeued.finished_at
    ]  # trained once


# --- detached, queued, collected --------------------------------------------------------


def test_detach_then_a_second_command_submits_nothing_and_resume_collects(
    slurm, cli, tmp_path: Path
) -> None:
    command = ("run", "--model", "unet", "--loss", "dice", *TINY, "--seeds", "1",
               *_folders(tmp_path))  # fmt: skip
    later = ("--cluster-opt", "hold")  # queued, held: still there for the next command
    before = slurm.jobs()
    first = cli(*command, *later, "--detach")
    assert first.code == 0, first.err[-3000:]
    assert "detached: 1 run(s) with Slurm" in first.err and "--resume" in first.err
    assert "--detach" not in first.err.split("Collect them")[1].split("\n")[1]
    (queued,) = slurm.live()
    task, state = queued.split()
    assert state == "PENDING"

    again = cli(*command, *later, "--detach")
    assert again.code == 0, again.err[-3000:]
    assert f"already pending as Slurm task {task}; not submitted again" in again.err
    assert [line.split()[0] for line in slurm.live()] == [task]

    slurm.command("scontrol", "release", task)
    collected = cli(*command, "--resume")
    assert collected.code == 0, collected.err[-3000:]
    assert "submitted 1 run" not in collected.err
    (record,) = _records(tmp_path / "runs").values()
    assert record.status == "succeeded" and record.cost["executor"] == "slurm"
    assert [line.split()[0] for line in slurm.jobs() if line not in before] == [task]  # one
    assert not list((tmp_path / "runs" / markers.SHARED_DIR).glob("*.slurm"))


# --- dry run and bad input --------------------------------------------------------------


def test_dry_run_prints_the_sbatch_script_and_submits_nothing(slurm, cli, tmp_path: Path) -> None:
    before = slurm.jobs()
    result = cli(
        "sweep", "--vary", "loss=dice,bce", "--model", "unet", *TINY, "--jobs", "1",
        "--cluster-opt", "time=0:30:00", "--cluster-opt", "account=lab", "--dry-run",
        *_folders(tmp_path),
    )  # fmt: skip
    assert result.code == 0, result.err[-3000:]
    for line in (
        "2 of 2 runs to train:",
        "estimate: none (no succeeded record of this benchmark yet)",
        "#SBATCH --array=0-1%1",
        "#SBATCH --partition=debug",
        "#SBATCH --cpus-per-task=1",
        "#SBATCH --mem=4G",
        "#SBATCH --time=30",
        "#SBATCH --account=lab",
        "sbatch --test-only: Job",
    ):
        assert line in result.out, result.out
    assert slurm.jobs() == before
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "case, extra, said",
    [
        ("no sbatch", (), "--cluster slurm:debug: no sbatch on the PATH"),
        ("unknown partition", ("--cluster", "slurm:nope"),
         "Slurm knows no partition 'nope' (it has: debug)"),
        ("controller down", (), "--cluster slurm:debug: the Slurm controller does not answer"),
        ("sbatch refuses", ("--cluster-opt", "constraint=no-such-feature"),
         "sbatch refuses the job array with --cluster-opt constraint=no-such-feature "
         "(allocation failure: Invalid feature specification; each task asks for 1 CPU(s), "
         "4G memory, no GPU, 1440 min, device cpu, constraint=no-such-feature); "
         "nothing was submitted"),
        ("unknown option", ("--cluster-opt", "frobnicate=1"),
         "sbatch refuses the job array with --cluster-opt frobnicate=1 (unrecognized option"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_before_anything_is_submitted(
    slurm, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, extra, said: str
) -> None:
    if case == "no sbatch":
        monkeypatch.setenv("PATH", str(tmp_path))  # nothing there
    if case == "controller down":  # a configuration naming a port where nothing answers
        port = slurm.conf.read_text().split("SlurmctldPort=")[1].split()[0]
        dead = tmp_path / "dead.conf"
        dead.write_text(slurm.conf.read_text().replace(f"SlurmctldPort={port}", "SlurmctldPort=9"))
        monkeypatch.setenv("SLURM_CONF", str(dead))
        monkeypatch.setattr(executor, "PROBE_TIMEOUT_S", 3.0)
    before = slurm.jobs()
    start = time.monotonic()
    args = ("run", "--model", "unet", "--loss", "dice", *TINY, "--seeds", "1", *extra)
    result = cli(*args, *_folders(tmp_path))
    assert result.code == 2, result.err[-3000:]
    assert said in _error_line(result.err)
    assert time.monotonic() - start < 60
    assert slurm.jobs() == before
    assert not list((tmp_path / "runs").rglob("record.json"))


# --- its options, and one module -------------------------------------------------------


def _request(**launch) -> RunRequest:
    return RunRequest.of(model="unet", loss="dice", protocol="tiny", **launch)


@pytest.mark.parametrize(
    "launch, said",
    [
        ({"detach": True}, "--detach: these runs end with the command"),
        ({"detach": True, "jobs": 2}, "--detach: these runs end with the command"),
        ({"cluster_opts": ("time=10",), "jobs": 2}, "--cluster-opt time=10: no scheduler here"),
        ({"cluster": "slurm:"}, "--cluster slurm:: name a partition"),
        ({"cluster": "slurm:debug", "jobs": 0}, "--jobs 0: give a positive number of tasks"),
        ({"cluster": "slurm:debug", "cluster_opts": ("=3",)}, "--cluster-opt =3: give an sbatch"),
        ({"cluster": "slurm:debug", "cluster_opts": ("time=soon",)},
         "--cluster-opt time=soon: give a time limit as sbatch reads one"),
        ({"cluster": "slurm:debug", "cluster_opts": ("array=0-9",)},
         "--cluster-opt array=0-9: the harness sets --array itself"),
    ],
)  # fmt: skip
def test_options_that_cannot_be_honoured_are_one_line(launch: dict, said: str) -> None:
    """Checked when the executor is chosen: before any Slurm command runs."""
    with pytest.raises(HarnessError, match="^" + said.replace("(", r"\(")):
        choose(_request(**launch))


@pytest.mark.parametrize(
    "text, minutes",
    [("30", 30), ("90:30", 91), ("4:00:00", 240), ("1-0", 1440), ("2-3:30", 3090),
     ("0-0:0:1", 1), ("UNLIMITED", None), ("INFINITE", None)],
)  # fmt: skip
def test_time_limits_are_read_as_sbatch_reads_them(text: str, minutes: int | None) -> None:
    assert executor.minutes(text) == minutes


def test_the_slurm_executor_is_one_module_and_one_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """``harness.runs.executors.slurm`` is named by two lines of ``executors/__init__.py``
    alone (its import and its entry in ``ELSEWHERE``); no other module of the package names
    it, its class or submitit; and without its entry, ``slurm:`` goes where any ``--cluster``
    went before (nothing else branches on it)."""
    lines: dict[str, set[int]] = {}
    for path in sorted((REPO / "harness").rglob("*.py")):
        module = path.relative_to(REPO).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or "", *(a.name for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.Name):
                names = [node.id]
            elif isinstance(node, ast.Attribute):
                names = [node.attr]
            parts = {part for name in names for part in name.split(".")}
            if parts & {"Slurm", "slurm", "submitit"}:
                lines.setdefault(module, set()).add(node.lineno)
    init = "harness/runs/executors/__init__.py"
    assert set(lines) == {init, "harness/runs/executors/slurm.py"}, lines
    source = (REPO / init).read_text().splitlines()
    named = sorted(source[n - 1] for n in lines[init])
    assert named == [
        "ELSEWHERE: tuple[type[Executor], ...] = (Slurm, Ray)",
        "from harness.runs.executors.slurm import Slurm",
    ]
    assert executors.ELSEWHERE[0] is Slurm
    assert Slurm.takes(_request(cluster="slurm:q").launch)
    monkeypatch.setattr(executors, "ELSEWHERE", executors.ELSEWHERE[1:])
    assert isinstance(choose(_request(cluster="slurm:q", dry_run=True)), Ray)
    assert isinstance(choose(_request()), InProcess)
