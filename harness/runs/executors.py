"""Executors carry jobs out; the dispatcher (``harness.runs.dispatch``) has decided them.

``InProcess`` trains each job here, one after another (or, under torchrun, as this
process's rank of each). ``Ray`` trains up to ``--jobs N`` at once on this machine, or on
the Ray cluster of ``--cluster ADDRESS``: each job is one Ray task that trains through the
same per-job path (``harness.runs.seed.train_job``). A task asks Ray for what the run needs
(CPUs; on CUDA one GPU per process), so runs never share a GPU by accident. When the worker
can see this machine's runs folder (the same machine, or a shared filesystem) it trains in
place, and a task whose worker died is retried by Ray and resumes from the run's last
checkpoint; otherwise it trains in a temporary folder and sends the run's files (record,
final weights, pictures, best checkpoint) back for the dispatcher to write.

Nothing is lost when the command itself is killed: ``--cluster`` is asked for an answer
(``check_cluster``) before Ray is given the address, the processes of a local instance end
with the command (Ray's fate sharing, and a watchdog for those it leaves:
``harness.runs.processes``), and the next command clears the markers a killed one left
(``clear_stale``).

Ray is imported only here and only when runs are sent: without ``--jobs``/``--cluster``
nothing changes. ``docs/scaling.md`` says how Ray's known traps are handled.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.atomic import atomic_write_bytes, atomic_write_text
from harness.engine.events import NullObserver, TrainObserver
from harness.errors import HarnessError, RunFailed, one_line
from harness.runs import processes, ranks, tracking
from harness.runs import seed as seeds
from harness.runs.job import Action, Job, Outcome, job_of
from harness.runs.planning import plan as plan_request
from harness.runs.requests import RunRequest, resume_command

#: Set to 1 to send every run's files back even when the runs folder is shared.
COPY_ENV = "HARNESS_JOBS_COPY"
#: Beside each run in a shared runs folder while its task runs: the command's token and
#: the worker's pid (a retried task that finds its own token resumes from the checkpoint).
MARKER = ".job.json"
#: Where the driver leaves the token a worker looks for to know the runs folder is shared;
#: the token file names the driver (pid, start time, host), so a later command can tell a
#: killed one's token and markers (``clear_stale``).
SHARED_DIR = ".harness-jobs"
#: How often Ray retries a task whose worker process or node died (not a failed run).
RETRIES = 2
#: How long ``check_cluster`` waits for a cluster to answer.
PROBE_TIMEOUT_S = 10.0

#: What an executor calls as each job ends (``harness.runs.dispatch``).
Land = Callable[[Job, Outcome], None]


class Executor(Protocol):
    """Carries jobs out, calling ``land`` with each one's outcome as it ends."""

    #: Whether the dispatcher should say one line per run that ends (no bar of its own).
    announces: bool

    def run(self, jobs: Sequence[Job], land: Land, observer: TrainObserver) -> None: ...


def _train(job: Job, observer: TrainObserver) -> Outcome:
    """``job`` trained here: in this process, or over its ``--nproc`` processes (unless this
    process already is one rank of a data-parallel run started by torchrun)."""
    from harness.engine import distributed

    nproc = job.plan.request.launch.nproc if job.plan.request else 1
    if nproc > 1 and not distributed.launched():
        return ranks.launch(job, nproc)
    return seeds.train_job(job, observer)


def choose(request: RunRequest | None) -> Executor:
    """Ray with ``--jobs``/``--cluster`` (a cluster that does not answer is refused here,
    before anything is written), else this process."""
    launch = request.launch if request is not None else None
    if launch is not None and request is not None and (launch.jobs or launch.cluster):
        if launch.jobs is not None and launch.jobs < 1:
            raise HarnessError(f"--jobs {launch.jobs}: give a positive number of runs at once")
        if launch.cluster:
            check_cluster(launch.cluster)
        return Ray(request)
    return InProcess(Path(request.launch.runs_dir) if request is not None else None)


class InProcess:
    """Each job trained here, one after another (over ``--nproc`` processes when asked:
    ``harness.runs.ranks``); Ctrl-C stops the one running."""

    announces = False

    def __init__(self, runs_dir: Path | None = None) -> None:
        #: Where to clear what a killed command left (``clear_stale``) when no job says.
        self.runs_dir = runs_dir

    def run(self, jobs: Sequence[Job], land: Land, observer: TrainObserver) -> None:
        runs_dir = jobs[0].plan.runs_dir if jobs else self.runs_dir
        if runs_dir is not None and (not jobs or jobs[0].plan.world.is_main):
            _clear(runs_dir, observer)
        titled: set[int] = set()
        for job in jobs:
            if job.plan.title and id(job.plan) not in titled:
                titled.add(id(job.plan))
                observer.message(job.plan.title)
            try:
                outcome = _train(job, observer)
            except KeyboardInterrupt as exc:
                exc.job = job  # type: ignore[attr-defined]  # for the dispatcher's report
                raise
            land(job, outcome)


# ---------------------------------------------------------------------------- the worker


@dataclass(frozen=True)
class _Spec:
    """What a task needs: the run's request (one seed), its decision, where its folder is."""

    request: RunRequest
    seed: int
    action: Action
    #: The run folder relative to the runs folder, and the driver's absolute runs folder.
    relative: Path
    runs_dir: Path
    token: str
    device: str
    threads: int
    #: The driver's files of this run (resume without a shared folder): relative path -> bytes.
    files: dict[str, bytes] = field(default_factory=dict)
    #: A tuned entry's tuning, for its records (``Plan.tuning``).
    tuning: dict[str, Any] = field(default_factory=dict)
    #: The fold of a cross-validated benchmark the run validates on.
    fold: int | None = None


class _Collect(NullObserver):
    """The worker's observer: no bars, the library's lines kept for the driver to print."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)


def train_task(spec: _Spec) -> Outcome:
    """A Ray task: train one run, in place (shared runs folder) or in a temporary folder."""
    if spec.device == "cpu":
        # Ray leaves CUDA_VISIBLE_DEVICES alone for a task that asked for no GPU: hide them.
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    import torch

    torch.set_num_threads(max(1, spec.threads))
    shared = _shared(spec)
    with tempfile.TemporaryDirectory(prefix="harness-job-") as scratch:
        runs_dir = spec.runs_dir if shared else Path(scratch) / "runs"
        folder = runs_dir / spec.relative
        # A task Ray retried (its worker died mid-run) finds its own marker: decided again,
        # as a --resume of what the folder now holds.
        retried = shared and _retried(folder, spec.token)
        for name, data in spec.files.items() if not shared else ():
            atomic_write_bytes(folder / name, data)
        request = spec.request.replace(
            seeds=(spec.seed,),
            device=spec.device,
            runs_dir=runs_dir,
            leaderboards_dir=Path(scratch) / "leaderboards",  # the driver writes the tables
            resume=spec.action is Action.RESUME,
            jobs=None,
            cluster=None,
        )
        observer = _Collect()
        nproc = request.launch.nproc
        try:
            resolved = plan_request(request)
            resolved.tuning = spec.tuning
            job = Job(resolved, spec.seed, folder, spec.action, fold=spec.fold)
            if retried:
                job = job_of(resolved, spec.seed, spec.fold, resume=True)
            if nproc > 1:  # a data-parallel run: this worker's CPUs shared out
                os.environ["OMP_NUM_THREADS"] = str(max(1, spec.threads // nproc))
                outcome = ranks.launch(job, nproc)
            else:
                outcome = seeds.train_job(job, observer)
        except (RunFailed, HarnessError) as exc:
            outcome = Outcome("failed", reason=str(exc))
        finally:
            (folder / MARKER).unlink(missing_ok=True)
        outcome.messages = observer.lines
        if not shared:
            outcome.files = _files(folder)
    return outcome


def _shared(spec: _Spec) -> bool:
    """Whether this worker sees the driver's runs folder (its token file is there)."""
    if os.environ.get(COPY_ENV) == "1":
        return False
    return (spec.runs_dir / SHARED_DIR / spec.token).is_file()


def _retried(folder: Path, token: str) -> bool:
    """Leave this task's marker in the run folder; True when an earlier try of it left one."""
    marker = folder / MARKER
    try:
        earlier = json.loads(marker.read_text(encoding="utf-8")).get("token") == token
    except (OSError, ValueError, AttributeError):
        earlier = False
    atomic_write_text(marker, json.dumps({"token": token, "pid": os.getpid()}))
    return earlier


def _files(folder: Path) -> dict[str, bytes]:
    """Every file of a run folder but its lock and half-written temps, by relative path."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name not in (".lock", MARKER) and ".tmp" not in path.name:
            out[path.relative_to(folder).as_posix()] = path.read_bytes()
    return out


# ---------------------------------------------------------------------------- the driver


class Ray:
    """Sends the jobs to Ray, at most ``--jobs`` at a time; lands each as it ends."""

    announces = True

    def __init__(self, request: RunRequest) -> None:
        self.request = request
        self.nproc = request.launch.nproc
        self.token = secrets.token_hex(8)

    def run(self, jobs: Sequence[Job], land: Land, observer: TrainObserver) -> None:
        if not jobs:  # nothing to train (every run succeeded already): no Ray needed
            _clear(Path(self.request.launch.runs_dir), observer)
            return
        with self.session(jobs[0].plan.runs_dir, observer):
            self._run(list(jobs), land, observer)

    @contextlib.contextmanager
    def session(self, runs_dir: Path, observer: TrainObserver | None = None) -> Iterator[None]:
        """Ray connected, and the token that tells workers the runs folder is shared; what a
        killed command left in ``runs_dir`` cleared first."""
        observer = observer or NullObserver()
        with self._connected(observer):
            _clear(runs_dir, observer)
            marker = runs_dir.resolve() / SHARED_DIR / self.token
            atomic_write_text(marker, _driver())
            try:
                yield
            finally:
                marker.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _connected(self, observer: TrainObserver) -> Iterator[None]:
        """Ray as found, or connected here: a local instance started, watched and stopped
        when no cluster is given."""
        import ray

        if ray.is_initialized():
            yield
            return
        log = Path(tempfile.gettempdir()) / f"harness-ray-{self.token}.log"
        if _connect(ray, self.request, log):
            observer.message(f"Ray wrote while connecting (kept in {log})")
        watchdog = None
        try:
            if not self.request.launch.cluster:
                watchdog = _watch(ray)
            yield
        finally:
            try:
                ray.shutdown()
            finally:
                _release(watchdog)

    def _run(self, jobs: list[Job], land: Land, observer: TrainObserver) -> None:
        """Keep up to N tasks in flight; land each as it ends; Ctrl-C cancels them all."""
        import ray

        limit = self.request.launch.jobs or len(jobs)
        waiting = list(jobs)
        running: dict[Any, Job] = {}
        try:
            with _ctrl_c_flag() as stop:
                while (waiting or running) and not stop.is_set():
                    while waiting and len(running) < limit:
                        job = waiting.pop(0)
                        running[self._submit(ray, job)] = job
                    # A short timeout hands control back each second: a blocking ray.wait
                    # never returns, and Ctrl-C would not be acted on until a run ended.
                    ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
                    for ref in ready:
                        land(running.pop(ref), _result(ray, ref))
                if stop.is_set():
                    raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            for ref in running:
                ray.cancel(ref)
            with contextlib.suppress(Exception):
                ray.wait(list(running), num_returns=len(running), timeout=60)
            hint = jobs[0].plan.resume_hint or resume_command(self.request)
            observer.message(
                f"stopped: {len(running)} running and {len(waiting)} waiting runs cancelled; "
                f"the running ones saved a checkpoint where the runs folder is shared.\n"
                f"Resume with:\n  {hint}"
            )
            exc.resume_said = True  # type: ignore[attr-defined]  # a caller need not say it again
            raise

    def _submit(self, ray: Any, job: Job) -> Any:
        """One task for ``job``, asking for the CPUs (and GPU) its run needs."""
        device, cpus, gpus = _resources(ray, job.plan, self.request, self.nproc)
        # A worker that cannot see this runs folder resumes from these (one that can ignores them).
        files = _files(job.folder) if job.action is Action.RESUME else {}
        spec = _Spec(
            request=job.plan.request or self.request,
            seed=job.seed,
            action=job.action,
            relative=job.folder.relative_to(job.plan.runs_dir),
            runs_dir=job.plan.runs_dir.resolve(),
            token=self.token,
            device=device,
            threads=max(1, int(cpus)),
            files=files,
            tuning=job.plan.tuning,
            fold=job.fold,
        )
        # A fresh worker process per run (max_calls=1): no CUDA context, thread count or
        # memory carried over from another run. A tracked run tracks from the worker, with
        # this process's tracker settings (the MLflow server, W&B's mode and key).
        env = tracking.worker_env() if spec.request.launch.track else {}
        options = {"runtime_env": {"env_vars": env}} if env else {}
        task = ray.remote(
            num_cpus=cpus, num_gpus=gpus, max_retries=RETRIES, max_calls=1, **options
        )(train_task)
        return task.remote(spec)


@contextlib.contextmanager
def _ctrl_c_flag() -> Iterator[threading.Event]:
    """Ctrl-C sets a flag the driver's loop reads each second, instead of raising wherever the
    main thread happens to be: inside Ray's extension code an interrupt can be swallowed
    (seen here: a driver that went on landing runs after Ctrl-C). Main thread only."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def _result(ray: Any, ref: Any) -> Outcome:
    """A task's outcome; a task Ray gave up on (worker died past its retries) is a failure."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:
        first = " ".join(str(exc).split())[:300]
        return Outcome("failed", reason=f"{type(exc).__name__}: {first}")


def _connect(ray: Any, request: RunRequest, log: Path) -> bool:
    """``--cluster ADDRESS``: join that cluster; else start a local instance (all CPUs).

    What Ray writes on stderr meanwhile (its C++ core's warnings, which no logging setting
    reaches) goes to ``log``, removed when empty; True when it was kept.
    """
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
    try:
        with _stderr_into(log):
            if request.launch.cluster:
                ray.init(address=request.launch.cluster, **quiet)
            else:
                # "local": always a new instance, never one found running on this machine
                # (which a bare ray.init() would join, RAY_ADDRESS or not).
                ray.init(address="local", num_cpus=os.cpu_count() or 1, **quiet)
    except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as exc:
        with contextlib.suppress(Exception):
            ray.shutdown()
        cluster = request.launch.cluster
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


def check_cluster(address: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """A ``HarnessError`` (one line: the address, why, what to check) unless a Ray cluster
    answers at ``address`` within ``timeout`` seconds.

    Asked before Ray is given the address: Ray's own attempt to reach a cluster that is not
    there retries for minutes, printing warnings meanwhile. The question is the one Ray asks
    first (the GCS's cluster id), over Ray's own channel (its TLS and token settings).
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


# ---------------------------------------------------------------------------- after a kill


def _driver() -> str:
    """The token file's text: which process this driver is, on which machine."""
    pid = os.getpid()
    return json.dumps({"pid": pid, "started": processes.started(pid), "host": socket.gethostname()})


def _gone(token: Path) -> bool:
    """Whether the command that left ``token`` is gone: its pid no longer runs on this
    machine as itself. A token from another machine is never judged; one without a driver
    in it is from before tokens named theirs."""
    try:
        driver = json.loads(token.read_text(encoding="utf-8"))
        pid, host = int(driver["pid"]), str(driver["host"])
    except FileNotFoundError:
        return False  # its command ended meanwhile, and removed it
    except (OSError, ValueError, KeyError, TypeError):
        return True
    return host == socket.gethostname() and not processes.alive(pid, driver.get("started"))


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


def _clear(runs_dir: Path, observer: TrainObserver) -> None:
    """``clear_stale``, said in one line when it removed anything."""
    removed = clear_stale(runs_dir)
    if removed:
        markers = sum(path.name == MARKER for path in removed)
        observer.message(
            f"{runs_dir}: removed what a killed command left ({markers} job marker(s), "
            f"{len(removed) - markers} token(s))"
        )


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


def _resources(ray: Any, p: Any, request: RunRequest, nproc: int = 1) -> tuple[str, float, float]:
    """The device a task trains on, and the CPUs and GPUs it asks for.

    CUDA: one GPU per process of the run (Ray sets CUDA_VISIBLE_DEVICES to them). CPUs: the
    protocol's loader workers plus one, per process, on a local instance at most this
    machine's share per run.
    """
    total = ray.cluster_resources()
    if request.launch.device == "auto":
        device = "cuda" if (p.device.type == "cuda" or total.get("GPU", 0) >= 1) else "cpu"
    else:
        device = "cuda" if request.launch.device == "cuda" else "cpu"
    cpus = float((1 + p.benchmark.protocol.num_workers) * nproc)
    if not request.launch.cluster and request.launch.jobs:
        cpus = max(1.0, min(cpus, (os.cpu_count() or 1) // request.launch.jobs))
    if cpus > total.get("CPU", 0):
        raise HarnessError(
            f"a run needs {cpus:g} CPUs and the Ray cluster has {total.get('CPU', 0):g}; "
            "add nodes or lower the protocol's num_workers (--set num_workers=N)"
        )
    gpus = float(nproc) if device == "cuda" else 0.0
    if gpus > total.get("GPU", 0):
        raise HarnessError(
            f"--device cuda: a run needs {gpus:g} GPU(s) and the Ray cluster has "
            f"{total.get('GPU', 0):g}; use --device cpu, a smaller --nproc, or add GPU nodes"
        )
    return device, cpus, gpus
