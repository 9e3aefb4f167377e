"""Many runs at once on Ray (``--jobs``, ``--cluster``, ``--dry-run``): every record lands in
the local runs folder, runs overlap in time, a run whose worker dies is retried and resumes.

One local Ray instance serves the in-process tests (``local_ray`` in conftest, started once
per session: Ray takes seconds to start); the cluster test starts its own with ``ray start
--head``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.engine.events import NullObserver
from harness.results.records import read_record, write_record
from harness.runs import executors as jobs
from harness.runs.dispatch import dispatch
from harness.runs.planning import plan, run_dir
from harness.runs.requests import RunRequest
from tests.helpers import make_record

pytest.importorskip("ray")
BIN = Path(sys.executable).parent


def _records(runs: Path) -> list:
    return [read_record(p) for p in sorted(runs.rglob("record.json"))]


def test_sweep_with_jobs_trains_two_at_once_and_a_failed_run_stops_no_other(
    local_ray, cli, tmp_path: Path
) -> None:
    """One sweep (Ray's workers start per run, so each sweep costs seconds): two seeds of
    Dice loss, which succeed, and two of a loss that turns NaN, which fail."""
    plugin = tmp_path / "broken.py"
    plugin.write_text(
        "import torch\nfrom harness import hookimpl\n\n"
        "def nan_loss():\n"
        "    return lambda logits, target: logits.mean() * float('nan')\n\n"
        "@hookimpl\ndef harness_losses():\n    return {'nan-loss': nan_loss}\n"
    )
    runs, boards = tmp_path / "runs", tmp_path / "boards"
    result = cli(
        "sweep", "--vary", "loss=dice,nan-loss", "--model", "unet", "--protocol", "tiny",
        "--seeds", "2", "--jobs", "2", "--plugin", plugin, "--device", "cpu",
        "--runs-dir", runs, "--leaderboards-dir", boards,
    )  # fmt: skip
    assert result.code == 1, result.err[-3000:]
    assert "2 of 4 runs failed: unet · nan-loss" in result.err
    records = _records(runs)
    assert sorted(r.status for r in records) == ["failed"] * 2 + ["succeeded"] * 2
    assert result.err.count(": succeeded, mean Dice") == 2  # one line per run as it ends
    (main,) = [p for p in boards.glob("*.md") if "ablation" not in p.name]
    rows = [line for line in main.read_text().splitlines() if line.startswith("| 1 ")]
    assert len(rows) == 1 and rows[0].split("|")[5].strip() == "2"  # both Dice seeds, one row
    # Two ran at once: some run started before another one finished and ended after it started.
    spans = sorted((r.started_at, r.finished_at) for r in records)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False)), spans


def test_a_killed_worker_is_retried_and_resumes(local_ray, tmp_path: Path) -> None:
    request = RunRequest.from_options(
        model="unet", loss="dice", protocol="tiny", seeds="1", jobs=2, device="cpu",
        sets=("epochs=3",), runs_dir=tmp_path / "runs", leaderboards_dir=tmp_path / "boards",
    )  # fmt: skip
    killed: list[int] = []
    done = threading.Event()

    def kill_one_after_its_first_checkpoint() -> None:
        while not done.is_set() and not killed:
            for marker in (tmp_path / "runs").rglob(jobs.MARKER):
                if (marker.parent / "checkpoints" / "last.pt").is_file():
                    try:
                        pid = json.loads(marker.read_text())["pid"]
                        os.kill(pid, signal.SIGKILL)
                    except (OSError, ValueError, KeyError):
                        continue
                    killed.append(pid)
                    return
            time.sleep(0.02)

    watcher = threading.Thread(target=kill_one_after_its_first_checkpoint, daemon=True)
    watcher.start()
    try:
        outcomes = dispatch([plan(request)], NullObserver())
    finally:
        done.set()
        watcher.join()
    assert killed, "no task was killed: the test did not test anything"
    records = _records(tmp_path / "runs")
    assert [r.status for r in records] == ["succeeded"] and len(outcomes) == 1
    assert records[0].resumes  # the killed run was retried and resumed its checkpoint


def test_dry_run_lists_runs_and_estimates_from_records(local_ray, cli, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    request = RunRequest.from_options(
        model="unet", loss="dice", protocol="tiny", seeds="2", runs_dir=runs
    )
    args = ("run", "--model", "unet", "--loss", "dice", "--protocol", "tiny", "--seeds", "2",
            "--jobs", "2", "--runs-dir", runs)  # fmt: skip
    first = cli(*args, "--dry-run")
    assert first.code == 0, first.err
    assert "2 of 2 runs to train:" in first.out and "estimate: none" in first.out
    assert not runs.exists() or not list(runs.rglob("record.json"))  # nothing trained
    resolved = plan(request)  # seed 0 as if it had succeeded: something to estimate from
    done = make_record("unet", 0, 0.5)
    done.benchmark = resolved.benchmark.to_dict()
    write_record(run_dir(resolved, 0) / "record.json", done)
    again = cli(*args, "--resume", "--dry-run")
    assert "1 of 2 runs to train:" in again.out and "skip   unet" in again.out
    assert "estimate: " in again.out and "device-hours" in again.out


def test_a_data_parallel_run_on_a_worker(local_ray, cli, tmp_path: Path) -> None:
    """``--nproc 2 --jobs 1``: the worker launches both processes; the record says 2."""
    result = cli(
        "run", "--model", "unet", "--loss", "dice", "--protocol", "tiny", "--nproc", "2",
        "--jobs", "1", "--device", "cpu", "--runs-dir", tmp_path / "runs",
        "--leaderboards-dir", tmp_path / "boards",
    )  # fmt: skip
    assert result.code == 0, result.err[-3000:]
    (record,) = _records(tmp_path / "runs")
    assert record.status == "succeeded" and record.cost["processes"] == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cluster_runs_come_back_to_the_local_runs_folder(tmp_path: Path) -> None:
    port = _free_port()
    # As if the workers saw another disk (files sent back); no token on a throwaway local head.
    env = {**os.environ, "HARNESS_JOBS_COPY": "1", "RAY_AUTH_MODE": "disabled"}
    log = tmp_path / "head.log"
    with log.open("w") as sink:
        head = subprocess.Popen(
            [BIN / "ray", "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
             "--include-dashboard=false"],
            env=env, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in log.read_text() and time.monotonic() < deadline:
            assert head.poll() is None, log.read_text()[-2000:]
            time.sleep(0.5)
        result = subprocess.run(
            [BIN / "harness", "run", "--model", "unet", "--loss", "dice", "--protocol", "tiny",
             "--seeds", "2", "--cluster", f"127.0.0.1:{port}", "--device", "cpu",
             "--runs-dir", tmp_path / "runs", "--leaderboards-dir", tmp_path / "boards"],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops what it started
        head.wait(timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    records = _records(tmp_path / "runs")
    assert [r.status for r in records] == ["succeeded", "succeeded"]
    for path in (tmp_path / "runs").rglob("record.json"):
        assert (path.parent / "weights-final.safetensors").stat().st_size > 0
        assert not (path.parent / jobs.MARKER).exists()  # trained elsewhere, sent back
    assert list((tmp_path / "boards").glob("*.md"))


def test_ctrl_c_stops_the_runs_with_a_checkpoint_and_says_how_to_resume(tmp_path: Path) -> None:
    """Ctrl-C at the terminal (SIGINT to the command's process group): the waiting run is
    cancelled, the running ones stop at their next step with a checkpoint, exit 130 and the
    resume command; no record claims a stopped run."""
    runs = tmp_path / "runs"
    args = [sys.executable, "-m", "harness", "run", "--model", "unet", "--loss", "dice",
            "--protocol", "tiny", "--set", "epochs=30", "--seeds", "3", "--jobs", "2",
            "--device", "cpu", "--runs-dir", str(runs),
            "--leaderboards-dir", str(tmp_path / "boards")]  # fmt: skip
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        started = [p for p in runs.rglob("metrics.jsonl") if p.read_text().strip()]
        if len(started) >= 2:  # both running runs are past their first epoch
            break
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        pytest.fail(f"still running 120 s after Ctrl-C; its stderr: {err[-3000:]}")
    assert proc.returncode == 130, err[-2000:]
    assert "1 waiting runs cancelled" in err and "Resume with:" in err
    assert "--jobs 2" in err.split("Resume with:")[1] and "--resume" in err
    assert not list(runs.rglob("record.json"))
    saved = list(runs.rglob("last.pt"))
    assert len(saved) == 2, saved
