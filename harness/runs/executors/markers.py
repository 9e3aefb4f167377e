"""What a command that sends runs elsewhere leaves in the runs folder while they run, and
how the next command clears what a killed one left.

The command (the driver) writes a token file under ``SHARED_DIR`` naming itself (pid, start
time, host): a worker that finds it knows it sees the driver's runs folder (the same machine,
or a shared filesystem) and trains in place (``shared``). Each run being trained there holds
a job marker (``MARKER``: the token and the worker's pid); a task retried after its worker
died finds its own marker and resumes (``retried``). Both go when the run or the command
ends; ``clear_stale`` removes those of a command that was killed.

An executor whose runs outlive the command that sent them (a batch system's job array,
``--detach``) names itself in its token (``driver(owner=..., job=...)``): such a token is
never judged here, but by that executor, which asks its scheduler; and its driver may place
each run's marker before the task starts (``place``), naming the task.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from harness.atomic import atomic_write_text
from harness.engine.events import TrainObserver
from harness.runs import processes

#: Set to 1 to send every run's files back even when the runs folder is shared.
COPY_ENV = "HARNESS_JOBS_COPY"
#: Beside each run in a shared runs folder while its task runs: the command's token and
#: the worker's pid (a retried task that finds its own token resumes from the checkpoint).
MARKER = ".job.json"
#: Where the driver leaves the token a worker looks for to know the runs folder is shared;
#: the token file names the driver (pid, start time, host), so a later command can tell a
#: killed one's token and markers (``clear_stale``).
SHARED_DIR = ".harness-jobs"


def token_path(runs_dir: Path, token: str) -> Path:
    """Where the driver of ``token`` leaves its token file."""
    return runs_dir / SHARED_DIR / token


def driver(**about: str) -> str:
    """The token file's text: which process this driver is, on which machine; ``about``:
    what an executor adds (``owner``: itself, when its runs outlive the command; ``job``)."""
    pid = os.getpid()
    found = {"pid": pid, "started": processes.started(pid), "host": socket.gethostname()}
    return json.dumps({**found, **about})


def tokens(runs_dir: Path) -> list[tuple[Path, dict]]:
    """Every token file in ``runs_dir`` with what it says (``{}`` when it cannot be read)."""
    found = []
    for path in sorted((runs_dir / SHARED_DIR).glob("*")):
        if path.is_file():
            found.append((path, _read(path) or {}))
    return found


def _read(path: Path) -> dict | None:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def read(folder: Path) -> dict | None:
    """The job marker in a run folder (None: none, or unreadable)."""
    return _read(folder / MARKER)


def place(folder: Path, token: str, **about: str) -> None:
    """The driver's marker for a run sent to a task that has not started yet (``about``: which
    task); a marker the task already left (its pid) keeps its pid."""
    found = read(folder) or {}
    started = found if found.get("token") == token and "pid" in found else {}
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / MARKER, json.dumps({**started, "token": token, **about}))


def shared(runs_dir: Path, token: str) -> bool:
    """Whether this worker sees the driver's runs folder (its token file is there)."""
    if os.environ.get(COPY_ENV) == "1":
        return False
    return token_path(runs_dir, token).is_file()


def retried(folder: Path, token: str) -> bool:
    """Leave this task's marker in the run folder; True when an earlier try of it left one
    (a marker of the same token that a task wrote: the driver's own placing is no try)."""
    found = read(folder) or {}
    mine = found.get("token") == token
    kept = found if mine else {}
    atomic_write_text(folder / MARKER, json.dumps({**kept, "token": token, "pid": os.getpid()}))
    return mine and "pid" in found


def _gone(token: Path) -> bool:
    """Whether the command that left ``token`` is gone: its pid no longer runs on this
    machine as itself. A token from another machine is never judged, nor one whose runs
    outlive their command (its ``owner``, the executor, judges it); one without a driver
    in it is from before tokens named theirs."""
    try:
        found = json.loads(token.read_text(encoding="utf-8"))
        if "owner" in found:
            return False
        pid, host = int(found["pid"]), str(found["host"])
    except FileNotFoundError:
        return False  # its command ended meanwhile, and removed it
    except (OSError, ValueError, KeyError, TypeError):
        return True
    return host == socket.gethostname() and not processes.alive(pid, found.get("started"))


def clear_stale(runs_dir: Path) -> list[Path]:
    """Remove what a killed command left in ``runs_dir``: its token and its runs' job
    markers (those of a live command, or of one on another machine, stay); the paths removed.
    """
    tokens = runs_dir / SHARED_DIR
    removed = [t for t in sorted(tokens.glob("*")) if t.is_file() and _gone(t)]
    for token in removed:
        token.unlink(missing_ok=True)
    # A run folder is RUNS/<benchmark>/<entry>/seed-N (planning.run_dir): three levels down.
    for marker in sorted(runs_dir.glob(f"*/*/*/{MARKER}")):
        try:
            token = str(json.loads(marker.read_text(encoding="utf-8"))["token"])
        except (OSError, ValueError, KeyError, TypeError):
            token = ""
        if not token or not (tokens / token).is_file():
            marker.unlink(missing_ok=True)
            removed.append(marker)
    return removed


def clear(runs_dir: Path, observer: TrainObserver) -> None:
    """``clear_stale``, said in one line when it removed anything."""
    removed = clear_stale(runs_dir)
    if removed:
        markers = sum(path.name == MARKER for path in removed)
        observer.message(
            f"{runs_dir}: removed what a killed command left ({markers} job marker(s), "
            f"{len(removed) - markers} token(s))"
        )
