"""Processes by pid (``harness.runs.processes``): a pid names a process only with its start
time (a later process reusing the pid is another one); a process's descendants; and the
watchdog script, which kills the processes it was given, those still alive as themselves,
when its standard input ends (its command closed it, or died)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from harness.runs import processes

pytestmark = pytest.mark.skipif(not processes.PROC.is_dir(), reason="needs /proc (Linux)")

SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen]:
    """A child that sleeps a minute; killed at the end if still there."""
    child = subprocess.Popen(SLEEP)
    yield child
    if child.poll() is None:
        child.kill()
    child.wait()


def _gone(child: subprocess.Popen, within: float = 10.0) -> bool:
    try:
        child.wait(timeout=within)
    except subprocess.TimeoutExpired:
        return False
    return True


def test_a_pid_is_alive_only_as_the_process_that_started_then(sleeper: subprocess.Popen) -> None:
    mine = processes.started(os.getpid())
    assert isinstance(mine, int) and processes.alive(os.getpid(), mine)
    start = processes.started(sleeper.pid)
    assert start is not None and processes.alive(sleeper.pid, start)
    assert not processes.alive(sleeper.pid, start + 1)  # the pid reused by a later process
    assert not processes.alive(sleeper.pid, None)
    sleeper.kill()
    sleeper.wait()
    assert processes.started(sleeper.pid) is None and not processes.alive(sleeper.pid, start)


def test_descendants_are_the_processes_below_now() -> None:
    nested = f"import subprocess; subprocess.Popen({SLEEP!r}).wait()"
    parent = subprocess.Popen([sys.executable, "-c", nested])
    try:
        deadline = time.monotonic() + 30
        found = processes.descendants([parent.pid])
        while len(found) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
            found = processes.descendants([parent.pid])
        assert found[0] == parent.pid and len(found) == 2  # it and its child
        assert parent.pid in processes.descendants([os.getpid()])
    finally:
        for pid in reversed(processes.descendants([parent.pid])):
            os.kill(pid, 9)
        parent.wait()


def test_end_kills_what_is_still_itself(sleeper: subprocess.Popen) -> None:
    other = subprocess.Popen(SLEEP)
    try:
        start = processes.started(sleeper.pid)
        wrong = (other.pid, processes.started(other.pid) + 1)  # not the process it names
        assert processes.end([(sleeper.pid, start), wrong, (other.pid, None)]) == [sleeper.pid]
        assert _gone(sleeper) and other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_the_watchdog_kills_its_processes_when_its_input_ends(
    sleeper: subprocess.Popen,
) -> None:
    watchdog = subprocess.Popen(
        [sys.executable, processes.__file__], stdin=subprocess.PIPE, text=True
    )
    assert watchdog.stdin is not None
    watchdog.stdin.write(json.dumps([[sleeper.pid, processes.started(sleeper.pid)]]) + "\n")
    watchdog.stdin.flush()
    time.sleep(0.3)
    assert sleeper.poll() is None  # while its command lives, nothing is killed
    watchdog.stdin.close()  # what the kernel does when the command dies, kill -9 included
    assert _gone(sleeper) and sleeper.returncode == -9
    assert watchdog.wait(timeout=10) == 0
