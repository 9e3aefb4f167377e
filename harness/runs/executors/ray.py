"""Ray: up to ``--jobs N`` runs at once on this machine, or on the Ray cluster of
``--cluster ADDRESS``. Each job is one Ray task (``train_task``) that rebuilds it from its
``JobSpec`` and trains it through the same per-job path as this process
(``harness.runs.ranks.train``). A task asks Ray for what the run needs (CPUs; on CUDA one GPU
per process), so runs never share a GPU by accident. When the worker can see this machine's
runs folder (the same machine, or a shared filesystem: ``markers.shared``) it trains in
place, and a task whose worker died is retried by Ray and resumes from the run's last
checkpoint; otherwise it trains in a temporary folder and sends the run's files (record,
final weights, pictures, best checkpoint) back for the dispatcher to write.

Nothing is lost when the command itself is killed: ``--cluster`` is asked for an answer
before Ray is given the address (``check``, once per command), the processes of a local
instance end with the command (``ray_cluster.connected``), and the next command clears the
markers a killed one left (``markers.clear_stale``).

Ray is imported only inside functions, when runs are sent: without ``--jobs``/``--cluster``
nothing changes. ``docs/scaling.md`` says how Ray's known traps are handled.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from harness.atomic import atomic_write_bytes, atomic_write_text
from harness.engine.events import NullObserver, TrainObserver
from harness.errors import HarnessError, RunFailed
from harness.runs import ranks, tracking
from harness.runs.executors import markers, ray_cluster
from harness.runs.job import Action, Job, JobSpec, Land, Outcome, job_of, rebuild
from harness.runs.planning import Plan
from harness.runs.requests import Launch, RunRequest

#: How often Ray retries a task whose worker process or node died (not a failed run).
RETRIES = 2


class Ray:
    """Sends the jobs to Ray, at most ``--jobs`` at a time; lands each as it ends."""

    name = "ray"
    announces = True
    remote = True
    detaches = False
    passes_options = False

    def __init__(self, request: RunRequest) -> None:
        self.request = request
        self.token = secrets.token_hex(8)

    @classmethod
    def takes(cls, launch: Launch) -> bool:
        """``--jobs N`` or ``--cluster ADDRESS``."""
        return launch.jobs is not None or bool(launch.cluster)

    @classmethod
    def check(cls, request: RunRequest) -> None:
        """``--jobs N`` positive; a ``--cluster`` that answers (asked here, once per command;
        not for a ``--dry-run``, which sends nothing)."""
        launch = request.launch
        if launch.jobs is not None and launch.jobs < 1:
            raise HarnessError(f"--jobs {launch.jobs}: give a positive number of runs at once")
        if launch.cluster and not launch.dry_run:
            ray_cluster.check_cluster(launch.cluster)

    def preview(self, jobs: Sequence[Job]) -> list[str]:
        """Nothing to add: Ray is asked for each task's resources when it is sent."""
        return []

    def run(self, jobs: Sequence[Job], land: Land, observer: TrainObserver) -> None:
        if not jobs:  # nothing to train (every run succeeded already): no Ray needed
            markers.clear(Path(self.request.launch.runs_dir), observer)
            return
        # The flag is up before Ray is connected: a Ctrl-C while it starts (seconds, inside
        # its extension code) is heard and acted on once it has, not swallowed there.
        with _ctrl_c_flag() as stop, self.session(jobs[0].plan.runs_dir, observer):
            self._run(list(jobs), land, observer, stop)

    @contextlib.contextmanager
    def session(self, runs_dir: Path, observer: TrainObserver | None = None) -> Iterator[None]:
        """Ray connected, and the token that tells workers the runs folder is shared; what a
        killed command left in ``runs_dir`` cleared first."""
        observer = observer or NullObserver()
        with ray_cluster.connected(self.request.launch.cluster, self.token, observer):
            markers.clear(runs_dir, observer)
            token = markers.token_path(runs_dir.resolve(), self.token)
            atomic_write_text(token, markers.driver())
            try:
                yield
            finally:
                token.unlink(missing_ok=True)

    def _run(
        self, jobs: list[Job], land: Land, observer: TrainObserver, stop: threading.Event
    ) -> None:
        """Keep up to N tasks in flight; land each as it ends; Ctrl-C (``stop``) cancels them
        all."""
        import ray

        limit = self.request.launch.jobs or len(jobs)
        waiting = list(jobs)
        running: dict[Any, Job] = {}
        try:
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
            if running:  # (nothing sent yet: Ray is not asked, and not started by asking)
                with contextlib.suppress(Exception):
                    ray.wait(list(running), num_returns=len(running), timeout=60)
            hint = jobs[0].plan.resume_hint.text()
            observer.message(
                f"stopped: {len(running)} running and {len(waiting)} waiting runs cancelled; "
                f"the running ones saved a checkpoint where the runs folder is shared.\n"
                f"Resume with:\n  {hint}"
            )
            exc.resume_said = True  # type: ignore[attr-defined]  # a caller need not say it again
            raise

    def _submit(self, ray: Any, job: Job) -> Any:
        """One task for ``job``, asking for the CPUs (and GPU) its run needs."""
        device, cpus, gpus = _resources(ray, job.plan, self.request)
        spec = JobSpec.of(job, device=device, runs_dir=job.plan.runs_dir.resolve())
        # A worker that cannot see this runs folder resumes from these (one that can ignores them).
        files = _files(job.folder) if job.action is Action.RESUME else {}
        # A fresh worker process per run (max_calls=1): no CUDA context, thread count or
        # memory carried over from another run. A tracked run tracks from the worker, with
        # this process's tracker settings (the MLflow server, W&B's mode and key).
        env = tracking.worker_env() if job.plan.launch.track else {}
        options = {"runtime_env": {"env_vars": env}} if env else {}
        task = ray.remote(
            num_cpus=cpus, num_gpus=gpus, max_retries=RETRIES, max_calls=1, **options
        )(train_task)
        return task.remote(spec, self.token, max(1, int(cpus)), files)


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


def _resources(ray: Any, p: Plan, request: RunRequest) -> tuple[str, float, float]:
    """The device a task trains on, and the CPUs and GPUs it asks for.

    CUDA: one GPU per process of the run (Ray sets CUDA_VISIBLE_DEVICES to them). CPUs: the
    protocol's loader workers plus one, per process, on a local instance at most this
    machine's share per run.
    """
    total, nproc = ray.cluster_resources(), p.launch.processes
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


# ---------------------------------------------------------------------------- the worker


class _Collect(NullObserver):
    """The worker's observer: no bars, the library's lines kept for the driver to print."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)


def train_task(
    spec: JobSpec, token: str, threads: int, files: dict[str, bytes] | None = None
) -> Outcome:
    """A Ray task: train one run, in place (shared runs folder) or in a temporary folder.

    ``token``: the driver's (``markers``); ``threads``: the CPUs the task was given;
    ``files``: the driver's files of the run, for a worker that cannot see its runs folder
    (a resume), by relative path."""
    if spec.request.launch.device == "cpu":
        # Ray leaves CUDA_VISIBLE_DEVICES alone for a task that asked for no GPU: hide them.
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    import torch

    torch.set_num_threads(max(1, threads))
    driver_runs = Path(spec.request.launch.runs_dir)
    shared = markers.shared(driver_runs, token)
    observer = _Collect()
    with tempfile.TemporaryDirectory(prefix="harness-job-") as scratch:
        here = spec.replace(
            runs_dir=driver_runs if shared else Path(scratch) / "runs",
            leaderboards_dir=Path(scratch) / "leaderboards",  # the driver writes the tables
            resume=spec.action is Action.RESUME,
        )
        folder: Path | None = None
        try:
            job = rebuild(here)
            folder = job.folder
            for name, data in (files or {}).items() if not shared else ():
                atomic_write_bytes(folder / name, data)
            # A task Ray retried (its worker died mid-run) finds its own marker: decided
            # again, as a --resume of what the folder now holds.
            if shared and markers.retried(folder, token):
                job = job_of(job.plan, job.seed, job.fold, resume=True)
            outcome = ranks.train(job, observer, threads)
        except (RunFailed, HarnessError) as exc:
            outcome = Outcome("failed", reason=str(exc))
        finally:
            if folder is not None:
                (folder / markers.MARKER).unlink(missing_ok=True)
        outcome.messages = observer.lines
        if not shared and folder is not None:
            outcome.files = _files(folder)
    return outcome


def _files(folder: Path) -> dict[str, bytes]:
    """Every file of a run folder but its lock and half-written temps, by relative path."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if (
            path.is_file()
            and path.name not in (".lock", markers.MARKER)
            and ".tmp" not in path.name
        ):
            out[path.relative_to(folder).as_posix()] = path.read_bytes()
    return out
