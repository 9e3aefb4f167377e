"""Reaching Ray (``harness.runs.executors.ray_cluster``): a ``--cluster`` that does not
answer is refused in one line within a bounded time, before Ray is handed the address (so
none of Ray's retries and warnings), and what Ray writes on stderr while connecting goes to
a log kept only when it holds anything."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.runs.executors import ray_cluster
from tests.helpers import subprocess_env


def _closed_port() -> int:
    """A local port nothing listens on (bound, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_closed_port_is_refused_at_once_in_one_line() -> None:
    pytest.importorskip("ray")
    address = f"127.0.0.1:{_closed_port()}"
    began = time.monotonic()
    with pytest.raises(HarnessError) as caught:
        ray_cluster.check_cluster(address, timeout=5)
    assert time.monotonic() - began < 5  # refused, not waited out
    said = str(caught.value)
    assert said.startswith(f"--cluster {address}: no Ray cluster answers there (")
    assert "`ray start --head`" in said and "\n" not in said


def test_a_ray_client_address_is_asked_whether_anything_listens() -> None:
    closed = f"ray://127.0.0.1:{_closed_port()}"
    with pytest.raises(HarnessError, match=rf"^--cluster {closed}: nothing answers there \("):
        ray_cluster.check_cluster(closed, timeout=2)
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        ray_cluster.check_cluster(f"ray://127.0.0.1:{listening.getsockname()[1]}", timeout=2)
    ray_cluster.check_cluster("auto")  # a running local instance: Ray says when there is none


def test_a_cluster_that_never_answers_is_given_up_on_in_bounded_time() -> None:
    """Something accepts the connection and says nothing (a wrong port, a black hole): the
    check gives up after its timeout, with one line."""
    pytest.importorskip("ray")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        began = time.monotonic()
        with pytest.raises(HarnessError) as caught:
            ray_cluster.check_cluster(address, timeout=2)
    assert time.monotonic() - began < 10
    assert str(caught.value).startswith(f"--cluster {address}: no Ray cluster answers there")
    assert "no answer in 2 s" in str(caught.value)


def test_an_unreachable_cluster_fails_fast_in_one_line_and_writes_nothing(
    cli, tmp_path: Path
) -> None:
    """Nothing answers at ``--cluster``: exit 2 well within 30 s, one error line naming the
    address, none of Ray's warnings (it is never handed the address), nothing written; a
    ``--dry-run`` needs no cluster."""
    pytest.importorskip("ray")
    runs, boards = tmp_path / "runs", tmp_path / "boards"
    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--model", "unet", "--loss", "dice",
         "--protocol", "tiny", "--cluster", "127.0.0.1:1",
         "--runs-dir", runs, "--leaderboards-dir", boards],
        env=subprocess_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    took = time.monotonic() - began
    assert result.returncode == 2, result.stderr[-3000:]
    assert took < 30, f"{took:.1f} s"
    errors = [line for line in result.stderr.splitlines() if line.startswith("harness: error:")]
    assert len(errors) == 1 and "--cluster 127.0.0.1:1" in errors[0], result.stderr
    assert "Traceback" not in result.stderr and "GCS" not in result.stderr, result.stderr
    for folder in (runs, boards):
        assert not folder.exists() or not list(folder.iterdir())
    dry = cli("run", "--model", "unet", "--loss", "dice", "--protocol", "tiny",
              "--cluster", "127.0.0.1:1", "--dry-run", "--runs-dir", runs)  # fmt: skip
    assert dry.code == 0 and "1 of 1 runs to train:" in dry.out, dry.err


def test_what_ray_writes_while_connecting_goes_to_a_log_kept_only_when_written(
    tmp_path: Path,
) -> None:
    """File descriptor 2 itself (a C++ core's writes, which no Python setting reaches) goes
    to the log, and comes back after; an empty log is removed."""
    log = tmp_path / "ray.log"
    with ray_cluster._stderr_into(log):
        pass
    assert not ray_cluster._kept(log) and not log.exists()
    before = os.fstat(2).st_ino
    with ray_cluster._stderr_into(log):
        os.write(2, b"[core] a warning\n")
    assert os.fstat(2).st_ino == before  # stderr is stderr again
    assert ray_cluster._kept(log) and log.read_bytes() == b"[core] a warning\n"
