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

Ray is imported only here and only when runs are sent: without ``--jobs``/``--cluster``
nothing changes. ``docs/scaling.md`` says how Ray's known traps are handled.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.atomic import atomic_write_bytes, atomic_write_text
from harness.engine.events import NullObserver, TrainObserver
from harness.errors import HarnessError, RunFailed
from harness.runs import ranks, tracking
from harness.runs import seed as seeds
from harness.runs.job import Action, Job, Outcome, job_of
from harness.runs.planning import plan as plan_request
from harness.runs.requests import RunRequest, resume_command

#: Set to 1 to send every run's files back even when the runs folder is shared.
COPY_ENV = "HARNESS_JOBS_COPY"
#: Beside each run in a shared runs folder while its task runs: the command's token and
#: the worker's pid (a retried task that finds its own token resumes from the checkpoint).
MARKER = ".job.json"
#: Where the driver leaves the token a worker looks for to know the runs folder is shared.
SHARED_DIR = ".harness-jobs"
#: How often Ray retries a task whose worker process or node died (not a failed run).
RETRIES = 2

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
    """Ray with ``--jobs``/``--cluster``, else this process."""
    launch = request.launch if request is not None else None
    if launch is not None and request is not None and (launch.jobs or launch.cluster):
        if launch.jobs is not None and launch.jobs < 1:
            raise HarnessError(f"--jobs {launch.jobs}: give a positive number of runs at once")
        return Ray(request)
    return InProcess()


class InProcess:
    """Each job trained here, one after another (over ``--nproc`` processes when asked:
    ``harness.runs.ranks``); Ctrl-C stops the one running."""

    announces = False

    def run(self, jobs: Sequence[Job], land: Land, observer: TrainObserver) -> None:
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
        if not jobs:
            return
        with self.session(jobs[0].plan.runs_dir):
            self._run(list(jobs), land, observer)

    @contextlib.contextmanager
    def session(self, runs_dir: Path) -> Iterator[None]:
        """Ray connected (a local instance started here, and stopped, when none is given)
        and the token that tells workers the runs folder is shared."""
        import ray

        started = False
        if not ray.is_initialized():
            _connect(ray, self.request)
            started = True
        marker = runs_dir.resolve() / SHARED_DIR / self.token
        atomic_write_text(marker, "")
        try:
            yield
        finally:
            marker.unlink(missing_ok=True)
            if started:
                ray.shutdown()

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


def _connect(ray: Any, request: RunRequest) -> None:
    """``--cluster ADDRESS``: join that cluster; else start a local instance (all CPUs)."""
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
    try:
        if request.launch.cluster:
            ray.init(address=request.launch.cluster, **quiet)
        else:
            # "local": always a new instance, never one found running on this machine
            # (which a bare ray.init() would join, RAY_ADDRESS or not).
            ray.init(address="local", num_cpus=os.cpu_count() or 1, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        cluster = request.launch.cluster
        where = f"--cluster {cluster}" if cluster else "a local Ray instance"
        reason = " ".join(str(exc).split())[:200]
        raise HarnessError(
            f"{where}: cannot connect ({reason}); check the address `ray start --head` printed"
        ) from None


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
