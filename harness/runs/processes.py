"""Processes by pid, and the watchdog that ends a killed command's local Ray instance.

A pid names a process only while it lives: ``started`` (the kernel's start time of the
process) tells the process that wrote a pid from a later one that reuses it. On Linux both
come from ``/proc``; elsewhere ``started`` is None and a pid is taken at its word.

Run as a script (``python processes.py``; only the standard library, so it starts in a
blink and needs no import path), this module is the watchdog of a local Ray instance
(started by ``harness.runs.executors.ray_cluster``): it reads one line of
``[[pid, started], ...]`` (the processes of the local Ray instance the command started)
from its standard input, waits for the end of that input (the command closed it, or the
kernel did when the command died, ``kill -9`` included), and kills those of them still
alive. Ray kills its own GCS and raylet with the process that started them,
but not every process the raylet started: its dashboard and runtime-env agents, left
behind, spend a minute reporting the raylet's death to the GCS that died with it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")


def started(pid: int) -> int | None:
    """The start time of process ``pid`` (clock ticks since boot); None when it is gone, a
    zombie, or there is no ``/proc`` to ask."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except (OSError, ValueError):
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # after the name, which may hold spaces
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def alive(pid: int, start: int | None) -> bool:
    """Whether process ``pid`` still runs and is the one that started at ``start``."""
    if PROC.is_dir():
        return start is not None and started(pid) == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def descendants(roots: Iterable[int]) -> list[int]:
    """``roots`` and every process below them now (Linux; elsewhere ``roots`` alone)."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir() if PROC.is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[-1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def end(processes: Iterable[tuple[int, int | None]]) -> list[int]:
    """Kill each ``(pid, started)`` still alive as itself; the pids killed."""
    killed = []
    for pid, start in processes:
        if start is not None and alive(pid, start):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                continue
            killed.append(pid)
    return killed


def main() -> None:
    """The watchdog: the processes on the first line of stdin, ended at its end."""
    processes = [(int(pid), start) for pid, start in json.loads(sys.stdin.readline() or "[]")]
    while sys.stdin.read(65536):
        pass
    end(processes)


if __name__ == "__main__":
    main()
