"""What a command that sends runs elsewhere leaves in the runs folder
(``harness.runs.executors.markers``): the driver's token (does a worker see the runs
folder?), each run's job marker (is this task a retry?), and the next command clearing what a
killed one left, said in one line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.runs import processes
from harness.runs.executors import markers as job_markers
from tests.helpers import Recorder


def _dead_driver() -> dict:
    """What the token of a command that was killed says: a pid no longer running as itself."""
    killed = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    start = processes.started(killed.pid)
    killed.kill()
    killed.wait()
    return {"pid": killed.pid, "started": start, "host": socket.gethostname()}


def _marked(runs: Path, entry: str, token: str) -> Path:
    """A run folder three levels down (``planning.run_dir``) holding a task's job marker."""
    folder = runs / "bench" / entry / "seed-0"
    folder.mkdir(parents=True)
    (folder / job_markers.MARKER).write_text(json.dumps({"token": token, "pid": 4321}))
    return folder / job_markers.MARKER


def test_the_next_command_clears_what_a_killed_one_left(tmp_path: Path) -> None:
    """A token whose driver is gone goes, with its runs' markers (and a marker whose token
    is gone); a live driver's, and one on another machine, stay."""
    runs = tmp_path / "runs"
    shared = runs / job_markers.SHARED_DIR
    shared.mkdir(parents=True)
    drivers = {
        "dead": _dead_driver(),
        "live": json.loads(job_markers.driver()),
        "elsewhere": {"pid": 1, "started": 0, "host": socket.gethostname() + "-other"},
    }
    for token, driver in drivers.items():
        (shared / token).write_text(json.dumps(driver))
    markers = {token: _marked(runs, f"entry-{token}", token) for token in (*drivers, "vanished")}
    removed = job_markers.clear_stale(runs)
    assert sorted(removed) == sorted([shared / "dead", markers["dead"], markers["vanished"]])
    assert sorted(p.name for p in shared.iterdir()) == ["elsewhere", "live"]
    assert markers["live"].exists() and markers["elsewhere"].exists()


def test_an_unreadable_token_or_marker_is_cleared(tmp_path: Path) -> None:
    """A token that names no driver (cut short, or from before tokens named theirs) is a
    killed command's; so is a marker that names no token."""
    runs = tmp_path / "runs"
    job_markers.token_path(runs, "cut").parent.mkdir(parents=True)
    job_markers.token_path(runs, "cut").write_text('{"pid": ')
    marker = _marked(runs, "entry", "x")
    marker.write_text("not json")
    cut = job_markers.token_path(runs, "cut")
    assert sorted(job_markers.clear_stale(runs)) == sorted([cut, marker])
    assert job_markers.clear_stale(runs) == []  # nothing left to clear


def test_an_arrays_token_outlives_its_command_and_a_placed_marker_is_no_try(
    tmp_path: Path,
) -> None:
    """A killed command's token goes with its markers (``markers.clear_stale``), unless it
    names an owner (an executor whose runs outlive the command: Slurm judges it, asking
    squeue); the driver's marker placed before its task starts is not an earlier try, the
    task's own is, and the task id stays in it."""
    gone = {"pid": 2**22 + 7, "started": "0", "host": socket.gethostname()}
    for name, owner in (("killed", {}), ("array", {"owner": "slurm", "job": "12"})):
        job_markers.token_path(tmp_path, name).parent.mkdir(exist_ok=True)
        job_markers.token_path(tmp_path, name).write_text(json.dumps({**gone, **owner}))
        job_markers.place(tmp_path / "bench" / name / "seed-0", name, slurm="12_0")
    removed = job_markers.clear_stale(tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in removed) == [
        ".harness-jobs/killed",
        "bench/killed/seed-0/.job.json",
    ]
    folder = tmp_path / "bench" / "array" / "seed-0"
    assert job_markers.read(folder) == {"token": "array", "slurm": "12_0"}
    assert not job_markers.retried(folder, "array")  # the task's first try
    assert job_markers.retried(folder, "array")  # requeued: its own marker
    assert job_markers.read(folder)["slurm"] == "12_0"


def test_a_retry_is_a_marker_of_the_same_token_left_by_a_task(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    assert not job_markers.retried(folder, "first")  # nothing there: a first try
    assert job_markers.read(folder) == {"token": "first", "pid": os.getpid()}
    assert not job_markers.retried(folder, "second")  # another command's marker: no retry
    assert job_markers.retried(folder, "second")
    job_markers.place(folder, "second", slurm="3_1")  # placed after the task started
    assert job_markers.read(folder) == {"token": "second", "pid": os.getpid(), "slurm": "3_1"}


def test_a_worker_trains_in_place_only_where_it_sees_the_drivers_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(job_markers.COPY_ENV, raising=False)
    assert not job_markers.shared(tmp_path, "t")
    job_markers.token_path(tmp_path, "t").parent.mkdir()
    job_markers.token_path(tmp_path, "t").write_text(job_markers.driver(owner="x"))
    assert job_markers.shared(tmp_path, "t") and not job_markers.shared(tmp_path, "u")
    monkeypatch.setenv(job_markers.COPY_ENV, "1")  # files sent back even so
    assert not job_markers.shared(tmp_path, "t")
    ((path, said),) = job_markers.tokens(tmp_path)
    assert path.name == "t" and said["owner"] == "x" and said["pid"] == os.getpid()


def test_clearing_says_what_it_removed_in_one_line_or_nothing(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    heard = Recorder()
    job_markers.clear(runs, heard)  # no runs folder yet: nothing to say
    assert heard.named("message") == []
    job_markers.token_path(runs, "dead").parent.mkdir(parents=True)
    job_markers.token_path(runs, "dead").write_text(json.dumps(_dead_driver()))
    _marked(runs, "a", "dead")
    _marked(runs, "b", "dead")
    job_markers.clear(runs, heard)
    assert heard.named("message") == [
        f"{runs}: removed what a killed command left (2 job marker(s), 1 token(s))"
    ]
