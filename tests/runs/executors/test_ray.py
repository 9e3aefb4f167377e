"""Many runs at once on Ray (``harness.runs.executors.ray``: ``--jobs``, ``--cluster``,
``--dry-run``): every record lands in the local runs folder, runs overlap in time, a run whose
worker dies is retried and resumes, a worker that does not see the runs folder sends the run's
files back, Ctrl-C stops the runs with a checkpoint, and a killed driver leaves no Ray process
and nothing trained twice.

One local Ray instance serves the in-process tests (``local_ray`` in tests/conftest.py,
started once per session: Ray takes seconds to start); the cluster test starts its own with
``ray start --head``. Reaching a cluster is tested in test_ray_cluster.py, the markers a
command leaves in test_markers.py.
"""

from __future__ import annotations

import dataclasses
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

from harness import protocol as protocols
from harness.components.entry import Entry, parse_component
from harness.components.registry import Registry
from harness.engine import checkpoint
from harness.engine.events import NullObserver
from harness.results.records import read_record, write_record
from harness.runs import processes
from harness.runs.dispatch import dispatch
from harness.runs.executors import markers as job_markers
from harness.runs.planning import plan, run_dir
from harness.runs.requests import RunRequest
from harness.studies import tune
from harness.studies.space import entry_space
from harness.studies.trials import draw_points, load_study
from tests.helpers import PLUGIN, make_record, subprocess_env

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
    assert len(rows) == 1 and rows[0].split("|")[6].strip() == "2"  # both Dice seeds, one row
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
            for marker in (tmp_path / "runs").rglob(job_markers.MARKER):
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
        assert not (path.parent / job_markers.MARKER).exists()  # trained elsewhere, sent back
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


def test_a_worker_that_does_not_see_the_runs_folder_sends_the_runs_files_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker side (``train_task``, called here without Ray) on a worker that does not
    see the runs folder: the run's files it sends back include the record, the final weights,
    ``metrics.jsonl`` and the TensorBoard event files."""
    from harness.runs.executors.ray import train_task
    from harness.runs.job import JobSpec, job_of
    from harness.runs.tracking.metrics import METRICS_NAME
    from harness.runs.tracking.tensorboard import TENSORBOARD_DIR

    monkeypatch.setenv(job_markers.COPY_ENV, "1")
    plugin = tmp_path / "small_cnn.py"
    plugin.write_text(PLUGIN)
    request = RunRequest.from_options(
        model="small-cnn", loss="dice", plugins=(str(plugin),), protocol="tiny",
        sets=("epochs=2",), device="cpu", track="tensorboard", runs_dir=tmp_path / "runs",
    )  # fmt: skip
    spec = JobSpec.of(job_of(plan(request), 0), runs_dir=tmp_path / "runs")
    outcome = train_task(spec, token="t", threads=1)
    assert outcome.status == "succeeded", outcome.reason
    assert {"record.json", "weights-final.safetensors", METRICS_NAME} <= set(outcome.files)
    epochs = [json.loads(line)["epoch"] for line in outcome.files[METRICS_NAME].splitlines()]
    assert epochs == [1, 2]
    sent = [name for name in outcome.files if name.startswith(f"{TENSORBOARD_DIR}/")]
    assert len(sent) == 1 and "tfevents" in sent[0] and outcome.files[sent[0]]
    assert not (tmp_path / "runs").exists()  # trained elsewhere: nothing written here


# ---------------------------------------------------------------------------- faults


SLOW_LOSS = """
import time

import torch.nn.functional as F

from harness import hookimpl


def slow_bce(delay=1.5):
    def loss(logits, target):
        time.sleep(float(delay))
        return F.binary_cross_entropy_with_logits(logits, target)

    return loss


@hookimpl
def harness_losses():
    return {"slow-bce": slow_bce}
"""


def test_a_killed_driver_leaves_no_ray_process_and_resume_trains_nothing_twice(
    tmp_path: Path,
) -> None:
    """``kill -9`` of ``harness sweep --jobs 2`` once one run has its record and the other is
    between checkpoints: the Ray processes it started end within seconds, and ``--resume``
    keeps the finished run as it was, continues the other from its checkpoint, and leaves
    no job marker. The second run's loss sleeps, so it is still training when the first
    ends."""
    plugin = tmp_path / "slow.py"
    plugin.write_text(SLOW_LOSS)
    runs = tmp_path / "runs"
    args = [sys.executable, "-m", "harness", "sweep", "--vary", "loss=dice,slow-bce",
            "--model", "unet", "--protocol", "tiny", "--set", "epochs=2", "--jobs", "2",
            "--plugin", str(plugin), "--device", "cpu", "--runs-dir", str(runs),
            "--leaderboards-dir", str(tmp_path / "boards")]  # fmt: skip
    log = (tmp_path / "killed.log").open("w")
    driver = subprocess.Popen(args, env=subprocess_env(), stdout=log, stderr=log)
    done = _wait_for_one_done_one_between_checkpoints(driver, runs)
    ray_processes = [
        (pid, processes.started(pid)) for pid in processes.descendants([driver.pid])[1:]
    ]
    before = done.read_bytes()
    driver.kill()
    driver.wait()
    killed_at = time.monotonic()
    while any(processes.alive(*p) for p in ray_processes) and time.monotonic() < killed_at + 30:
        time.sleep(0.2)
    lingering = time.monotonic() - killed_at
    assert not [p for p in ray_processes if processes.alive(*p)], "Ray outlived its driver"
    assert lingering < 10, f"Ray's processes took {lingering:.1f} s to end"
    assert list(runs.rglob(job_markers.MARKER)), "the kill left no marker: nothing to clear"

    resumed = subprocess.run(
        [*args, "--resume"], env=subprocess_env(), capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "already succeeded" in resumed.stderr and "job marker" in resumed.stderr
    assert done.read_bytes() == before  # skipped, not trained again
    records = {
        p.parent.parent.name.split("-")[1]: read_record(p) for p in runs.rglob("record.json")
    }
    assert {k: r.status for k, r in records.items()} == {"dice": "succeeded", "slow": "succeeded"}
    assert records["slow"].resumes, "the interrupted run started over instead of resuming"
    assert not list(runs.rglob(job_markers.MARKER))
    assert not list((runs / job_markers.SHARED_DIR).iterdir())


def _wait_for_one_done_one_between_checkpoints(
    driver: subprocess.Popen, runs: Path, finished: int = 1
) -> Path:
    """The record of a run that finished, once ``finished`` runs have their record and
    another has a checkpoint and no record."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert driver.poll() is None, "the sweep ended before it could be killed"
        done = [p for p in runs.rglob("record.json")]
        busy = [
            m.parent
            for m in runs.rglob(job_markers.MARKER)
            if not (m.parent / "record.json").exists()
            and checkpoint.exists(checkpoint.directory(m.parent))
        ]
        if len(done) >= finished and busy:
            return done[0]
        time.sleep(0.05)
    driver.kill()
    pytest.fail("no moment with one run done and one between checkpoints")


def test_a_killed_tune_driver_resumes_without_training_a_trial_twice(tmp_path: Path) -> None:
    """``kill -9`` of ``harness tune --jobs 2`` once a trial has its record and another is
    between checkpoints: ``--resume`` keeps the finished trials as they were, continues the
    interrupted one from its checkpoint, draws no new point (the trials are a clean tune's
    points) and chooses the best trial; no job marker is left."""
    plugin = tmp_path / "slow.py"
    plugin.write_text(SLOW_LOSS)
    runs = tmp_path / "runs"
    args = [sys.executable, "-m", "harness", "tune", "--model", "unet", "--loss", "slow-bce",
            "--protocol", "tiny", "--trials", "3", "--seeds", "1", "--jobs", "2",
            "--plugin", str(plugin), "--device", "cpu", "--runs-dir", str(runs),
            "--leaderboards-dir", str(tmp_path / "boards")]  # fmt: skip
    log = (tmp_path / "killed.log").open("w")
    driver = subprocess.Popen(args, env=subprocess_env(), stdout=log, stderr=log)
    # Trials 1 and 2 train together and end within moments of each other: the third,
    # alone, is the one caught between its checkpoints.
    _wait_for_one_done_one_between_checkpoints(driver, runs, finished=2)
    ray_processes = [
        (pid, processes.started(pid)) for pid in processes.descendants([driver.pid])[1:]
    ]
    driver.kill()
    driver.wait()
    killed_at = time.monotonic()
    while any(processes.alive(*p) for p in ray_processes) and time.monotonic() < killed_at + 30:
        time.sleep(0.2)
    before = {p: p.read_bytes() for p in runs.rglob("record.json")}
    interrupted = [
        m.parent for m in runs.rglob(job_markers.MARKER) if m.parent / "record.json" not in before
    ]
    assert len(interrupted) == 1, "the trial caught between checkpoints ended before its worker"

    resumed = subprocess.run(
        [*args, "--resume"], env=subprocess_env(), capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert all(p.read_bytes() == data for p, data in before.items())  # not trained again
    (summary_path,) = runs.rglob(tune.SUMMARY_NAME)
    summary = json.loads(summary_path.read_text())
    trials = summary["trials"]
    records = [read_record(runs / t["record"] / "record.json") for t in trials]
    assert [r.status for r in records] == ["succeeded"] * 3
    continued = [runs / t["record"] for t, r in zip(trials, records, strict=True) if r.resumes]
    assert continued == interrupted, "the interrupted trial started over instead of resuming"
    proto = protocols.load("tiny")
    texts = ("unet", "bce", "adamw", "warmup-cosine", "none")
    entry = Entry(*(parse_component(t, "--x") for t in texts))
    space = entry_space(entry, proto, Registry.load([]))  # AdamW declares its own space
    budget = dataclasses.replace(tune.budget_of(proto, 3), space=space.ranges)
    clean = draw_points(load_study(tmp_path / "clean", budget), budget)  # nothing trained
    assert [t["values"] for t in trials] == [values for _, values, _ in clean]
    best = max(trials, key=lambda t: (t["mean_dice"], -t["number"]))
    assert summary["chosen"]["values"] == best["values"]
    assert len([p for p in runs.rglob("record.json") if "tuned-3" in str(p)]) == 1  # the final
    assert not list(runs.rglob(job_markers.MARKER))
    assert not list((runs / job_markers.SHARED_DIR).iterdir())


def test_ctrl_c_while_ray_starts_is_heard_and_stops_before_any_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl-C that arrives while Ray is being connected (seconds, inside its extension code,
    where an interrupt can be swallowed) is held by the flag and acted on once it has: no run
    is sent, and the command says how to resume."""
    import contextlib

    from harness.runs.executors import ray as executor
    from harness.runs.job import job_of

    @contextlib.contextmanager
    def connecting(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C during the connection
        yield

    def submit(*args, **kwargs):
        raise AssertionError("a run was sent after Ctrl-C")

    monkeypatch.setattr(executor.ray_cluster, "connected", connecting)
    monkeypatch.setattr(executor.Ray, "_submit", submit)
    plugin = tmp_path / "small_cnn.py"
    plugin.write_text(PLUGIN)
    request = RunRequest.from_options(
        model="small-cnn", loss="dice", plugins=(str(plugin),), protocol="tiny", jobs=2,
        device="cpu", runs_dir=tmp_path / "runs",
    )  # fmt: skip
    job = job_of(plan(request), 0)
    said: list[str] = []
    observer = NullObserver()
    monkeypatch.setattr(observer, "message", said.append)
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN where the suite runs in background
    with pytest.raises(KeyboardInterrupt) as info:
        executor.Ray(request).run([job], lambda *a: None, observer)
    assert getattr(info.value, "resume_said", False)
    assert "0 running and 1 waiting runs cancelled" in said[-1] and "--resume" in said[-1]
    assert signal.getsignal(signal.SIGINT) is before  # restored
