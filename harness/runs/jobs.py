"""Many runs at once: ``--jobs N`` on this machine, ``--cluster ADDRESS`` on a Ray cluster.

Each run (one entry, one seed) is one Ray task that trains through the same per-seed path
as a run in this process (``execution.execute``). A task asks Ray for what the run needs
(CPUs; on CUDA one GPU), so runs never share a GPU by accident. When the worker can see
this machine's runs folder (the same machine, or a shared filesystem) it trains in place,
and a task whose worker died is retried by Ray and resumes from the run's last checkpoint;
otherwise it trains in a temporary folder and sends the run's files (record, final
weights, pictures, best checkpoint) back, and they are written here, atomically, record
last. The driver regenerates the leaderboard after each run it receives.

Ray is imported only here and only when runs are sent: without ``--jobs``/``--cluster``
nothing changes. ``docs/scaling.md`` says how Ray's known traps are handled.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import signal
import statistics
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.atomic import atomic_write_bytes, atomic_write_text
from harness.engine import checkpoint
from harness.engine.events import NullObserver, TrainObserver
from harness.errors import HarnessError, RunFailed
from harness.results.records import RECORD_NAME, Record, iter_records, read_record
from harness.runs.execution import Plan, execute, plan, regenerate_table, run_dir
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


@dataclass(frozen=True)
class Job:
    """One run to send: a plan's entry and one seed, and what will happen to it."""

    plan: Plan
    seed: int
    folder: Path
    #: ``train``, ``resume`` (a checkpoint is there, --resume) or ``skip`` (succeeded, --resume).
    action: str

    @property
    def name(self) -> str:
        return f"{self.plan.entry.label} seed {self.seed}"


@dataclass
class Schedule:
    """What a command with ``--jobs``/``--cluster`` (or ``--dry-run``) will do."""

    jobs: list[Job]
    #: Estimated device-hours per job to train (None: no record to estimate from).
    hours: list[float | None] = field(default_factory=list)

    @property
    def to_train(self) -> list[Job]:
        return [j for j in self.jobs if j.action != "skip"]

    def lines(self) -> list[str]:
        """The plan in words, one line per run, then the estimate (``--dry-run``)."""
        out = [f"{len(self.to_train)} of {len(self.jobs)} runs to train:"]
        for job, hours in zip(self.jobs, self.hours, strict=True):
            cost = "" if hours is None or job.action == "skip" else f", about {hours:.3g} h"
            out.append(f"  {job.action:<6} {job.name}{cost} ({job.folder})")
        known = [h for j, h in zip(self.jobs, self.hours, strict=True) if j.action != "skip"]
        if not self.to_train:
            out.append("nothing to train")
        elif any(h is None for h in known):
            out.append("estimate: none (no succeeded record of this benchmark yet)")
        else:
            out.append(
                f"estimate: {sum(h for h in known if h is not None):.3g} device-hours "
                "(each run: the mean of its entry's succeeded records, else of the benchmark's)"
            )
        return out


def schedule(plans: Sequence[Plan]) -> Schedule:
    """Every run of ``plans``: trained, resumed or (``--resume``, succeeded) skipped, with an
    estimate of its device-hours from the records of the same benchmark."""
    jobs = []
    for p in plans:
        for seed in p.seeds:
            folder = run_dir(p, seed)
            jobs.append(Job(p, seed, folder, _action(p, seed, folder)))
    return Schedule(jobs, [_estimate(j) for j in jobs])


def _action(p: Plan, seed: int, folder: Path) -> str:
    record = read_record(folder / RECORD_NAME)
    interrupted = checkpoint.exists(checkpoint.directory(folder))
    if p.resume:
        if record is not None and record.status == "succeeded":
            return "skip"
        return "resume" if interrupted else "train"
    if interrupted and record is None:
        command = resume_command(p.request) if p.request else "--resume"
        raise HarnessError(
            f"{checkpoint.directory(folder)}: an interrupted run of seed {seed} left a "
            f"checkpoint here; continue it with `{command}`, or delete that folder to start over"
        )
    return "train"


def estimate_hours(p: Plan) -> float | None:
    """Device-hours one run of ``p``'s entry takes, from the records (None: no record)."""
    return _estimate(Job(p, p.seeds[0], run_dir(p, p.seeds[0]), "train"))


def _estimate(job: Job) -> float | None:
    """Mean device-hours of the entry's succeeded records, else of the benchmark's."""
    bench = job.plan.benchmark.id
    spent: dict[bool, list[float]] = {True: [], False: []}
    for path, record in iter_records(job.plan.runs_dir):
        hours = record.device_hours
        if record.status == "succeeded" and record.benchmark_id == bench and hours is not None:
            spent[path.parent.parent == job.folder.parent].append(hours)
    chosen = spent[True] or spent[False]
    return statistics.fmean(chosen) if chosen else None


# ---------------------------------------------------------------------------- the worker


@dataclass(frozen=True)
class _Spec:
    """What a task needs: the run's request (one seed) and where its folder is."""

    request: RunRequest
    seed: int
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
    #: Processes of a data-parallel run (``--nproc``): the worker launches them.
    nproc: int = 1


@dataclass
class _Outcome:
    """What a task sends back."""

    status: str
    message: str = ""
    #: The run's files (when the runs folder is not shared): relative path -> bytes.
    files: dict[str, bytes] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)


class _Collect(NullObserver):
    """The worker's observer: no bars, the library's lines kept for the driver to print."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)


def train_job(spec: _Spec) -> _Outcome:
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
        resume = spec.request.resume or (shared and _retried(folder, spec.token))
        for name, data in spec.files.items() if not shared else ():
            atomic_write_bytes(folder / name, data)
        request = dataclasses.replace(
            spec.request,
            seeds=f"{spec.seed},",
            device=spec.device,
            runs_dir=runs_dir,
            leaderboards_dir=Path(scratch) / "leaderboards",  # the driver writes the tables
            resume=resume,
            jobs=None,
            cluster=None,
        )
        observer = _Collect()
        try:
            if spec.nproc > 1:
                _launch_ranks(spec, request, folder)
            else:
                resolved = plan(request)
                resolved.tuning = spec.tuning
                execute(resolved, observer)
            outcome = _Outcome("succeeded", messages=observer.lines)
        except (RunFailed, HarnessError) as exc:
            outcome = _Outcome("failed", str(exc), messages=observer.lines)
        finally:
            (folder / MARKER).unlink(missing_ok=True)
        if not shared:
            outcome.files = _files(folder)
    return outcome


def _launch_ranks(spec: _Spec, request: RunRequest, folder: Path) -> None:
    """A data-parallel run (``--nproc N``) on this worker: N processes under torch's launcher,
    each the ``harness run`` command of ``request``, with the worker's CPUs shared out."""
    import shlex

    from harness.engine import distributed

    args = shlex.split(resume_command(request))[1:]
    if not request.resume:
        args.remove("--resume")  # a rerun of a finished run trains again, as in process
    os.environ["OMP_NUM_THREADS"] = str(max(1, spec.threads // spec.nproc))
    code = distributed.launch(spec.nproc, args)
    record = read_record(folder / RECORD_NAME)
    if code != 0 or record is None or record.status != "succeeded":
        reason = record.error if record is not None and record.error else f"exit code {code}"
        raise RunFailed(f"{spec.nproc} processes: {reason}")


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


def run_jobs(
    plans: Sequence[Plan],
    observer: TrainObserver,
    progress: Callable[[int, int], None] | None = None,
    nproc: int = 1,
) -> list[tuple[Path, Record]]:
    """Train every run of ``plans`` as Ray tasks; land each one's files and table as it ends.

    ``observer`` hears one line per run that ends (and the workers' lines); ``progress`` the
    runs done of all. A failed run leaves its failed record and the others go on; at the end
    ``RunFailed`` names every failed run. Ctrl-C cancels the runs (running ones stop at their
    next step with a checkpoint) and says the command that resumes. With ``nproc`` > 1 each
    run is data-parallel over that many processes on one worker (and asks for that many GPUs).
    """
    first = plans[0]
    request = first.request or RunRequest(model="", loss="")
    if request.jobs is not None and request.jobs < 1:
        raise HarnessError(f"--jobs {request.jobs}: give a positive number of runs at once")
    plan_ = schedule(plans)
    for job in plan_.jobs:
        if job.action == "skip":
            path = job.folder / RECORD_NAME
            observer.message(f"{job.name}: already succeeded; skipped (--resume). Record: {path}")
            job.plan.outcomes.append((path, read_record(path)))
    driver = _Driver(plan_.to_train, observer, progress, request, nproc)
    with driver.session():
        driver.run()
    if driver.failed:
        named = "; ".join(driver.failed)
        raise RunFailed(f"{len(driver.failed)} of {len(plan_.to_train)} runs failed: {named}")
    return [o for p in plans for o in p.outcomes]


class _Driver:
    """Sends the runs to Ray, at most ``--jobs`` at a time, and lands each as it ends."""

    def __init__(
        self,
        jobs: list[Job],
        observer: TrainObserver,
        progress: Callable[[int, int], None] | None,
        request: RunRequest,
        nproc: int = 1,
    ) -> None:
        self.nproc = nproc
        self.jobs = jobs
        self.observer = observer
        self.progress = progress or (lambda done, total: None)
        self.request = request
        self.token = secrets.token_hex(8)
        self.failed: list[str] = []
        self.done = 0

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Ray connected (a local instance started here, and stopped, when none is given)
        and the token that tells workers the runs folder is shared."""
        import ray

        started = False
        if not ray.is_initialized():
            _connect(ray, self.request)
            started = True
        marker = (
            self.jobs[0].plan.runs_dir.resolve() / SHARED_DIR / self.token if self.jobs else None
        )
        if marker is not None:
            atomic_write_text(marker, "")
        try:
            yield
        finally:
            if marker is not None:
                marker.unlink(missing_ok=True)
            if started:
                ray.shutdown()

    def run(self) -> None:
        """Keep up to N tasks in flight; land each as it ends; Ctrl-C cancels them all."""
        import ray

        limit = self.request.jobs or len(self.jobs)
        waiting = list(self.jobs)
        running: dict[Any, Job] = {}
        self.progress(0, len(self.jobs))
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
                        self._land(running.pop(ref), _result(ray, ref))
                if stop.is_set():
                    raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            for ref in running:
                ray.cancel(ref)
            with contextlib.suppress(Exception):
                ray.wait(list(running), num_returns=len(running), timeout=60)
            hint = self.jobs[0].plan.resume_hint if self.jobs else None
            command = hint or (resume_command(self.request) if self.jobs else "")
            self.observer.message(
                f"stopped: {len(running)} running and {len(waiting)} waiting runs cancelled; "
                f"the running ones saved a checkpoint where the runs folder is shared.\n"
                f"Resume with:\n  {command}"
            )
            exc.resume_said = True  # type: ignore[attr-defined]  # a caller need not say it again
            raise

    def _submit(self, ray: Any, job: Job) -> Any:
        """One task for ``job``, asking for the CPUs (and GPU) its run needs."""
        device, cpus, gpus = _resources(ray, job.plan, self.request, self.nproc)
        # A worker that cannot see this runs folder resumes from these (one that can ignores them).
        files = _files(job.folder) if job.action == "resume" else {}
        spec = _Spec(
            request=job.plan.request or self.request,
            seed=job.seed,
            relative=job.folder.relative_to(job.plan.runs_dir),
            runs_dir=job.plan.runs_dir.resolve(),
            token=self.token,
            device=device,
            threads=max(1, int(cpus)),
            files=files,
            tuning=job.plan.tuning,
            nproc=self.nproc,
        )
        # A fresh worker process per run (max_calls=1): no CUDA context, thread count or
        # memory carried over from another run.
        task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=RETRIES, max_calls=1)(train_job)
        return task.remote(spec)

    def _land(self, job: Job, outcome: _Outcome) -> None:
        """Write what came back (record last), regenerate the table, say one line."""
        for line in outcome.messages:
            self.observer.message(f"{job.name}: {line}")
        earlier = read_record(job.folder / RECORD_NAME)
        keep = (
            outcome.status != "succeeded" and earlier is not None and earlier.status == "succeeded"
        )
        if outcome.files and not keep:
            for name, data in sorted(outcome.files.items(), key=lambda kv: kv[0] == RECORD_NAME):
                atomic_write_bytes(job.folder / name, data)
        record = read_record(job.folder / RECORD_NAME)
        self.done += 1
        where = f"[{self.done}/{len(self.jobs)}] {job.name}"
        if outcome.status == "succeeded" and record is not None:
            job.plan.outcomes.append((job.folder / RECORD_NAME, record))
            regenerate_table(job.plan, self.observer)
            wall = record.cost.get("wall_s") or 0
            self.observer.message(
                f"{where}: succeeded, mean Dice {record.mean_dice:.4f}, {wall:.0f} s "
                f"(record {job.folder / RECORD_NAME})"
            )
        else:
            self.failed.append(f"{job.name} ({outcome.message})")
            self.observer.message(f"{where}: failed: {outcome.message}")
        self.progress(self.done, len(self.jobs))


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


def _result(ray: Any, ref: Any) -> _Outcome:
    """A task's outcome; a task Ray gave up on (worker died past its retries) is a failure."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:
        first = " ".join(str(exc).split())[:300]
        return _Outcome("failed", f"{type(exc).__name__}: {first}")


def _connect(ray: Any, request: RunRequest) -> None:
    """``--cluster ADDRESS``: join that cluster; else start a local instance (all CPUs)."""
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
    try:
        if request.cluster:
            ray.init(address=request.cluster, **quiet)
        else:
            # "local": always a new instance, never one found running on this machine
            # (which a bare ray.init() would join, RAY_ADDRESS or not).
            ray.init(address="local", num_cpus=os.cpu_count() or 1, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"--cluster {request.cluster}" if request.cluster else "a local Ray instance"
        reason = " ".join(str(exc).split())[:200]
        raise HarnessError(
            f"{where}: cannot connect ({reason}); check the address `ray start --head` printed"
        ) from None


def _resources(ray: Any, p: Plan, request: RunRequest, nproc: int = 1) -> tuple[str, float, float]:
    """The device a task trains on, and the CPUs and GPUs it asks for.

    CUDA: one GPU per process of the run (Ray sets CUDA_VISIBLE_DEVICES to them). CPUs: the
    protocol's loader workers plus one, per process, on a local instance at most this
    machine's share per run.
    """
    total = ray.cluster_resources()
    if request.device == "auto":
        device = "cuda" if (p.device.type == "cuda" or total.get("GPU", 0) >= 1) else "cpu"
    else:
        device = "cuda" if request.device == "cuda" else "cpu"
    cpus = float((1 + p.benchmark.protocol.num_workers) * nproc)
    if not request.cluster and request.jobs:
        cpus = max(1.0, min(cpus, (os.cpu_count() or 1) // request.jobs))
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
