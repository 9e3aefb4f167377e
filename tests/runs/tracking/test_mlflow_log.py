"""``--track mlflow`` against a real MLflow tracking server (``mlflow server``, SQLite, on
127.0.0.1): one MLflow run per run, with every step's loss, the validation Dice per class and
the protocol's hash; a ``kill -9`` and ``--resume`` continue the same MLflow run with each
step once; a server that stops mid-run costs one line and nothing else."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.classes import CLASSES
from harness.runs.tracking.about import STATE_NAME, TRACKED_RECORD
from harness.runs.tracking.metrics import METRICS_NAME, read_metrics
from tests.helpers import STEPS_PER_EPOCH, record_of, run_args, subprocess_env

mlflow = pytest.importorskip("mlflow")

#: How long the server may take to answer its first health check (a loaded CI machine).
START_TIMEOUT_S = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(uri: str) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def _stop(server: subprocess.Popen) -> None:
    """The server and the process group it started (uvicorn), by its PID."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGKILL)
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, subprocess.Popen]]:
    """A tracking server for this module: its URI and its process (the last test stops it)."""
    home = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no job runners
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
        "--artifacts-destination", str(home / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    log = (home / "server.log").open("wb")
    process = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while not _healthy(uri):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {(home / 'server.log').read_text()}")
            time.sleep(0.5)
        yield uri, process
    finally:
        _stop(process)
        log.close()


def _wait_for(done, proc: subprocess.Popen, what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended (rc {proc.returncode}) before {what}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"no {what} within {timeout} s")


def _epochs_written(runs: Path, count: int) -> bool:
    found = list(runs.rglob(METRICS_NAME))
    return bool(found) and len(read_metrics(found[0])) >= count


def _start(args: list[str], uri: str, **popen) -> subprocess.Popen:
    env = {**subprocess_env(), "MLFLOW_TRACKING_URI": uri}
    return subprocess.Popen([sys.executable, "-m", "harness", *args], env=env, **popen)


def _the_run(client, record: dict):
    experiment = client.get_experiment_by_name(record["benchmark"]["id"])
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    return run


def _steps(client, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def test_a_killed_and_resumed_run_is_one_mlflow_run_with_each_step_once(
    cli, plugin: Path, tmp_path: Path, server, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri, _ = server
    runs, boards = tmp_path / "runs", tmp_path / "boards"
    args = [*run_args(plugin, runs, boards), "--track", "mlflow"]
    proc = _start(args, uri, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(lambda: _epochs_written(runs, 2), proc, "epoch 2's line")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not list(runs.rglob("record.json")), "the kill came too late: the run had finished"
    assert list(runs.rglob(STATE_NAME)), "the MLflow run's id is kept in the run folder"

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    result = cli(*args, "--resume")
    assert result.code == 0, result.err
    assert "tracking stopped" not in result.out + result.err
    record = record_of(runs)

    client = mlflow.MlflowClient(tracking_uri=uri)
    run = _the_run(client, record)  # one run: the resume continued it
    run_id = run.info.run_id
    assert run.info.status == "FINISHED"
    total = 4 * STEPS_PER_EPOCH
    assert _steps(client, run_id, "train/loss") == list(range(1, total + 1))  # each once
    validated = [e * STEPS_PER_EPOCH for e in range(1, 5)]
    assert _steps(client, run_id, "val/mean_dice") == validated
    assert _steps(client, run_id, "train/lr") == validated
    for name in CLASSES:
        assert _steps(client, run_id, f"val_dice/{name}") == validated
        assert run.data.metrics[f"val_dice/{name}"] == pytest.approx(
            record["per_class_dice"][name], abs=1e-9
        )
    assert run.data.metrics["val/mean_dice"] == pytest.approx(record["mean_dice"], abs=1e-9)
    protocol = record["benchmark"]["protocol"]
    assert run.data.params["protocol.hash"] == protocol["hash"]
    assert run.data.params["protocol.epochs"] == str(protocol["fields"]["epochs"])
    assert run.data.params["seed"] == "0" and run.data.params["entry.model"] == "small-cnn"
    assert run.data.tags["harness.model.plugin"] == record["entry"]["model"]["plugin"]
    assert run.info.run_name.startswith("small-cnn") and run.info.run_name.endswith(" seed 0")
    files = {f.path for f in client.list_artifacts(run_id)}
    assert {TRACKED_RECORD, "metrics.jsonl", "curves.png", "prediction.png"} <= files


def test_a_server_that_stops_mid_run_costs_one_line_and_nothing_else(
    plugin: Path, tmp_path: Path, server
) -> None:
    """The last test of this module: it stops the server."""
    uri, process = server
    runs, boards = tmp_path / "runs", tmp_path / "boards"
    args = [*run_args(plugin, runs, boards), "--track", "mlflow"]
    proc = _start(args, uri, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # Epoch 2's line: epoch 1 reached the server (its end waited for it) before it.
        _wait_for(lambda: _epochs_written(runs, 2), proc, "epoch 2's line")
        _stop(process)  # the server is gone, two epochs before the end
        output, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, output
    stopped = [line for line in output.splitlines() if "tracking stopped" in line]
    assert len(stopped) == 1, output
    assert stopped[0].startswith("seed 0: mlflow tracking stopped (")
    assert stopped[0].endswith("the run goes on and its record is unaffected")
    record = record_of(runs)
    assert record["status"] == "succeeded"
    assert [h["epoch"] for h in record["history"]] == [1, 2, 3, 4]
    assert [line["epoch"] for line in read_metrics(next(runs.rglob(METRICS_NAME)))] == [1, 2, 3, 4]
