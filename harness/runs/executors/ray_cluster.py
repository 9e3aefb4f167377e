"""Reaching Ray: asking a ``--cluster`` whether it answers, joining it (or starting a local
instance for ``--jobs``), and ending a local instance's processes with the command.

``check_cluster`` is asked before Ray is given the address (once per command, by the Ray
executor's ``check``): Ray's own attempt to reach a cluster that is not there retries for
minutes, printing warnings meanwhile. ``connected`` joins the cluster, or starts a local
instance whose processes end with the command: Ray's fate sharing, and a watchdog for those
it leaves (``harness.runs.processes``), so a ``kill -9`` of the command leaves none behind.

Ray is imported only inside these functions, when runs are sent.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.engine.events import TrainObserver
from harness.errors import HarnessError, one_line
from harness.runs import processes

#: How long ``check_cluster`` waits for a cluster to answer.
PROBE_TIMEOUT_S = 10.0


def check_cluster(address: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """A ``HarnessError`` (one line: the address, why, what to check) unless a Ray cluster
    answers at ``address`` within ``timeout`` seconds.

    The question is the one Ray asks first (the GCS's cluster id), over Ray's own channel
    (its TLS and token settings).
    """
    if address == "auto":
        return  # a running instance on this machine: Ray says at once when there is none
    if address.startswith("ray://"):
        return _reachable(address, timeout)
    import grpc
    from ray._private.gcs_utils import create_gcs_channel
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    channel = create_gcs_channel(address)
    try:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        stub.GetClusterId(gcs_service_pb2.GetClusterIdRequest(), timeout=timeout)
    except grpc.RpcError as exc:
        raise HarnessError(_unanswered(address, exc, timeout)) from None
    finally:
        channel.close()


def _unanswered(address: str, exc: Any, timeout: float) -> str:
    """The line for a cluster that did not answer ``GetClusterId`` (a ``grpc.RpcError``)."""
    import grpc

    code = exc.code()
    reason = (exc.details() or "").rsplit(": ", 1)[-1].strip(" []") or code.name.lower()
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        reason = f"no answer in {timeout:g} s"
    if code is grpc.StatusCode.UNAUTHENTICATED:
        return (
            f"--cluster {address}: the cluster asks for its token ({reason}); set "
            "RAY_AUTH_MODE=token and give the cluster's token in RAY_AUTH_TOKEN or "
            "~/.ray/auth_token (`ray get-auth-token` on its head node prints it)"
        )
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return (
            f"--cluster {address}: no Ray cluster answers there ({reason}); check that the "
            "cluster is up (`ray status` on its head node) and that this is the address "
            "`ray start --head` printed, reachable from this machine"
        )
    return (
        f"--cluster {address}: something answers there, but not a Ray cluster "
        f"({code.name.lower()}: {reason}); give the address `ray start --head` printed "
        "(its GCS port, 6379 unless --port was given)"
    )


def _reachable(address: str, timeout: float) -> None:
    """A Ray Client address (``ray://HOST:PORT``): something listens there."""
    from urllib.parse import urlsplit

    parts = urlsplit(address)
    try:
        with socket.create_connection((parts.hostname or "", parts.port or 10001), timeout):
            return
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or one_line(exc, 120)
        raise HarnessError(
            f"--cluster {address}: nothing answers there ({reason}); check that the cluster "
            "is up and that its Ray Client server (port 10001 on the head node) is reachable"
        ) from None


@contextlib.contextmanager
def connected(cluster: str | None, token: str, observer: TrainObserver) -> Iterator[None]:
    """Ray as found, or connected here: the cluster at ``cluster``, else a local instance
    started, watched and stopped. ``token`` names the log of what Ray wrote meanwhile."""
    import ray

    if ray.is_initialized():
        yield
        return
    log = Path(tempfile.gettempdir()) / f"harness-ray-{token}.log"
    if _connect(ray, cluster, log):
        observer.message(f"Ray wrote while connecting (kept in {log})")
    watchdog = None
    try:
        if not cluster:
            watchdog = _watch(ray)
        yield
    finally:
        try:
            ray.shutdown()
        finally:
            _release(watchdog)


def _connect(ray: Any, cluster: str | None, log: Path) -> bool:
    """``--cluster ADDRESS``: join that cluster; else start a local instance (all CPUs).

    What Ray writes on stderr meanwhile (its C++ core's warnings, which no logging setting
    reaches) goes to ``log``, removed when empty; True when it was kept.
    """
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
    try:
        with _stderr_into(log):
            if cluster:
                ray.init(address=cluster, **quiet)
            else:
                # "local": always a new instance, never one found running on this machine
                # (which a bare ray.init() would join, RAY_ADDRESS or not).
                ray.init(address="local", num_cpus=os.cpu_count() or 1, **quiet)
    except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as exc:
        with contextlib.suppress(Exception):
            ray.shutdown()
        where = f"--cluster {cluster}" if cluster else "a local Ray instance"
        said = f"; Ray's messages are in {log}" if _kept(log) else ""
        check = "; check the address `ray start --head` printed" if cluster else ""
        raise HarnessError(f"{where}: cannot connect ({one_line(exc, 200)}){said}{check}") from None
    return _kept(log)


def _kept(log: Path) -> bool:
    """Whether ``log`` holds anything (an empty one is removed)."""
    if log.is_file() and log.stat().st_size:
        return True
    log.unlink(missing_ok=True)
    return False


@contextlib.contextmanager
def _stderr_into(log: Path) -> Iterator[None]:
    """This process's file descriptor 2 (Python's and C++'s writes alike) into ``log``."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to keep off it
        yield
        return
    try:
        with log.open("ab") as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _watch(ray: Any) -> subprocess.Popen[str] | None:
    """The watchdog (``harness.runs.processes``) of the local instance just started: it ends
    the instance's processes if this one dies without stopping them. None where the
    processes cannot be listed (no ``/proc``): Ray's own fate sharing is all there is."""
    node = getattr(ray._private.worker, "_global_node", None)
    infos = getattr(node, "all_processes", {}) or {}
    roots = [info.process.pid for kind in infos.values() for info in kind]
    if not roots or not processes.PROC.is_dir():
        return None
    found = [(pid, processes.started(pid)) for pid in processes.descendants(roots)]
    watchdog = subprocess.Popen(
        [sys.executable, processes.__file__],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # Ctrl-C at the terminal is for the command, not for it
    )
    assert watchdog.stdin is not None
    watchdog.stdin.write(json.dumps(found) + "\n")
    watchdog.stdin.flush()
    return watchdog


def _release(watchdog: subprocess.Popen[str] | None) -> None:
    """The instance stopped: the watchdog ends what is left of it, and exits."""
    if watchdog is None:
        return
    assert watchdog.stdin is not None
    with contextlib.suppress(OSError):
        watchdog.stdin.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        watchdog.wait(timeout=10)
