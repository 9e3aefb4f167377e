"""Slurm: every run a task of one Slurm job array (``--cluster slurm:PARTITION``), at most
``--jobs N`` of them at once, sent and watched through submitit.

Each task asks Slurm for what its run needs (the protocol's loader workers plus one CPU per
process, memory, one GPU per ``--nproc`` process on a partition with GPUs) and whatever
``--cluster-opt KEY=VALUE`` adds (any sbatch option: time, account, qos, constraint). It runs
this interpreter (``sys.executable``) with this code on its ``PYTHONPATH``, rebuilds its job
from its ``JobSpec`` and trains it through the same per-job path as every executor
(``harness.runs.ranks.train``), in place: the runs folder must be one the nodes share (a task
that cannot see it says so in one line), and so must submitit's folder of pickles and logs,
kept beside the runs' markers (``<runs>/.harness-jobs/<token>.slurm``). The driver lands each
run as its task ends; ``--detach`` submits and returns, and a later ``--resume`` (or
``harness leaderboard``) collects what finished.

Nothing is trained twice. The driver places a marker in each run folder naming the run's
Slurm task (``markers.place``), and its token names the array (``owner``: slurm): a run
whose task Slurm still has queued or running is watched, never submitted again, and a
marker whose task Slurm no longer knows is cleared. A task that Slurm requeues (pre-emption,
``scontrol requeue``, or submitit's own requeue on the USR2 Slurm sends before the time
limit) finds its own marker and resumes from the run's ``last`` checkpoint; a task cancelled
or lost with its node is a failed run that ``--resume`` continues from its checkpoint.

What submitit lacks is written here: its job states come from ``sacct``, which needs Slurm's
accounting database, so the states are asked of ``squeue`` (``_watcher``); and its sbatch
script is checked with ``sbatch --test-only`` before anything is submitted. Bad input is one
line before any submission: no Slurm commands on the PATH, a controller that does not answer
(``scontrol ping``, bounded), a partition Slurm does not know, an option sbatch refuses.

submitit is imported only inside functions, when runs are sent.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.atomic import atomic_write_text
from harness.engine.events import NullObserver, TrainObserver
from harness.errors import Detached, HarnessError, RunFailed, one_line
from harness.runs import ranks
from harness.runs.executors import markers
from harness.runs.job import Action, Job, JobSpec, Land, Outcome, job_of, rebuild
from harness.runs.requests import Launch, RunRequest

#: ``--cluster slurm:PARTITION``.
PREFIX = "slurm:"
#: The client commands the driver runs (srun: inside each task's script).
COMMANDS = ("sbatch", "srun", "squeue", "scontrol")
#: How long a question to Slurm may take before the controller counts as not answering.
PROBE_TIMEOUT_S = 10.0
#: How often the driver asks squeue about its tasks, at most (and at least every 2 s).
WATCH_S = 5.0
#: How long a task that ended is given for its result to appear (a shared filesystem's lag).
RESULT_WAIT_S = 10.0
#: Memory asked per CPU unless ``--cluster-opt mem=...`` says otherwise.
MEM_PER_CPU_GB = 4
#: A task's time limit when neither ``--cluster-opt time=`` nor the partition gives one.
DEFAULT_MINUTES = 24 * 60
#: The states of a task that is still Slurm's (queued, running, or coming back).
ALIVE = frozenset(
    {
        "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED",
        "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED",
    }
)  # fmt: skip


class Slurm:
    """Sends the jobs as one Slurm job array, at most ``--jobs`` at a time; lands each as its
    task ends, or leaves them queued (``--detach``)."""

    name = "slurm"
    announces = True
    remote = True
    detaches = True
    passes_options = True

    def __init__(self, request: RunRequest) -> None:
        self.request = request
        self.partition = partition_name(request.launch.cluster or "")
        self.options = parse_options(request.launch.cluster_opts)

    @classmethod
    def takes(cls, launch: Launch) -> bool:
        """``--cluster slurm:PARTITION``."""
        return bool(launch.cluster and launch.cluster.startswith(PREFIX))

    @classmethod
    def check(cls, request: RunRequest) -> None:
        """``--jobs N`` positive, the options well formed; Slurm's commands on the PATH, its
        controller answering (bounded) and the partition known to it. A ``--dry-run`` asks
        too: it prints the script Slurm would be given, checked by ``sbatch --test-only``."""
        launch = request.launch
        if launch.jobs is not None and launch.jobs < 1:
            raise HarnessError(f"--jobs {launch.jobs}: give a positive number of tasks at once")
        name = partition_name(launch.cluster or "")
        parse_options(launch.cluster_opts)
        missing = [command for command in COMMANDS if shutil.which(command) is None]
        if missing:
            raise HarnessError(
                f"--cluster {launch.cluster}: no {missing[0]} on the PATH; run this from a "
                "machine with Slurm's client commands (a login node), or load Slurm's module"
            )
        ping(launch.cluster or "")
        partition(name)

    def preview(self, jobs: Sequence[Job]) -> list[str]:
        """The sbatch script of ``jobs``' array, as Slurm would be given it, and what
        ``sbatch --test-only`` says of it; nothing is submitted."""
        if not jobs:
            return []
        runs_dir = jobs[0].plan.runs_dir.resolve()
        ask = self._ask(jobs)
        script = ask.script(task_folder(markers.token_path(runs_dir, "TOKEN")), len(jobs))
        accepted = test_only(script, self.request.launch.cluster_opts, ask.summary())
        return [
            f"Slurm: {len(jobs)} run(s) as one job array on partition {self.partition}, "
            f"at most {ask.at_once(len(jobs))} at once; each task: {ask.summary()}",
            "sbatch script:",
            *(f"  {line}" for line in script.splitlines()),
            f"sbatch --test-only: {accepted}",
        ]

    def run(self, jobs: Sequence[Job], land: Land, observer: TrainObserver) -> None:
        runs_dir = (jobs[0].plan.runs_dir if jobs else Path(self.request.launch.runs_dir)).resolve()
        forget(runs_dir)  # arrays Slurm has no task of any more: their tokens go
        markers.clear(runs_dir, observer)
        if not jobs:
            return
        tasks = self._queued(jobs, observer)
        sent = {id(job) for job, _ in tasks.values()}
        todo = [job for job in jobs if id(job) not in sent]
        own = self._submit(todo, runs_dir, observer) if todo else {}
        tasks.update(own)
        if self.request.launch.detach:
            self._detach(tasks, jobs[0], observer)
        landed = set(tasks)
        self._watch(tasks, land, observer, jobs[0])
        forget(runs_dir, ended=landed)  # this array's token, and any whose tasks all landed

    def _ask(self, jobs: Sequence[Job]) -> Ask:
        """What each task of ``jobs``' array asks Slurm for (the largest run's needs)."""
        part = partition(self.partition)
        nproc = max(job.plan.launch.processes for job in jobs)
        workers = max(job.plan.benchmark.protocol.num_workers for job in jobs)
        return Ask.of(part, self.request.launch, nproc, (1 + workers) * nproc, self.options)

    def _queued(self, jobs: Sequence[Job], observer: TrainObserver) -> dict[str, Any]:
        """The runs that Slurm has queued or running already (their markers name the task),
        by task id, to be watched and not submitted again; a marker whose task Slurm no
        longer has is cleared."""
        named = {}
        for job in jobs:
            found = markers.read(job.folder) or {}
            token = markers.token_path(job.plan.runs_dir.resolve(), str(found.get("token")))
            if found.get("slurm") and token.is_file():
                named[str(found["slurm"])] = (job, token)
        states = squeue({task.split("_")[0] for task in named}) if named else {}
        queued: dict[str, Any] = {}
        for task, (job, token) in named.items():
            state = None if states is None else states.get(task, "GONE")
            if state is not None and state not in ALIVE:
                (job.folder / markers.MARKER).unlink(missing_ok=True)
                continue
            queued[task] = (job, watched(task_folder(token), task))
            observer.message(
                f"{job.name}: already {(state or 'queued').lower()} as Slurm task {task}; "
                "not submitted again"
            )
        return queued

    def _submit(self, todo: list[Job], runs_dir: Path, observer: TrainObserver) -> dict[str, Any]:
        """``todo`` as one job array; each run's marker names its task. Nothing is submitted
        when sbatch refuses the script (``sbatch --test-only``): one line."""
        import submitit

        ask = self._ask(todo)
        name = secrets.token_hex(8)  # this array's: its token file, its tasks' markers
        token = markers.token_path(runs_dir, name)
        folder = task_folder(token)  # submitit's: pickles, the script, the logs
        test_only(ask.script(folder, len(todo)), self.request.launch.cluster_opts, ask.summary())
        atomic_write_text(token, markers.driver())  # before any task looks for it
        executor = submitit.SlurmExecutor(folder=folder, python=shlex.quote(sys.executable))
        executor.update_parameters(**ask.parameters(len(todo)))
        specs = [JobSpec.of(job, device=ask.device, runs_dir=runs_dir) for job in todo]
        n = len(todo)
        try:
            sent = executor.map_array(SlurmTask(), specs, [name] * n, [ask.cpus] * n)
        except (submitit.core.utils.FailedSubmissionError, OSError) as exc:
            token.unlink(missing_ok=True)
            shutil.rmtree(folder, ignore_errors=True)
            raise HarnessError(f"sbatch did not take the job array: {one_line(exc, 300)}") from None
        array = sent[0].job_id.split("_")[0]
        atomic_write_text(token, markers.driver(owner=self.name, job=array, folder=str(folder)))
        for job, task in zip(todo, sent, strict=True):
            markers.place(job.folder, name, slurm=task.job_id)
        observer.message(
            f"submitted {n} run(s) as Slurm job {array} on partition {self.partition} "
            f"(at most {ask.at_once(n)} at once; `squeue -j {array}` lists its tasks; "
            f"logs in {folder})"
        )
        pairs = zip(todo, sent, strict=True)
        return {task.job_id: (job, watched(folder, task.job_id)) for job, task in pairs}

    def _detach(self, tasks: dict[str, Any], first: Job, observer: TrainObserver) -> None:
        """``--detach``: say what Slurm has and how to collect it, and stop (``Detached``)."""
        arrays = sorted({task.split("_")[0] for task in tasks})
        observer.message(
            f"detached: {len(tasks)} run(s) with Slurm (job {', '.join(arrays)}; "
            f"`squeue -j {','.join(arrays)}`). Collect them (waiting for those not finished) "
            f"with:\n  {_collect(first)}\nor, once they have finished, write their tables with "
            f"`harness leaderboard --runs-dir {first.plan.runs_dir}`"
        )
        raise Detached(f"{len(tasks)} run(s) left with Slurm")

    def _watch(
        self, tasks: dict[str, Any], land: Land, observer: TrainObserver, first: Job
    ) -> None:
        """Land each task as it ends (``job.done()``, ``job.result()``); Ctrl-C stops watching
        and leaves the tasks with Slurm, saying how to collect or cancel them."""
        try:
            while tasks:
                for task_id, (job, task) in list(tasks.items()):
                    if task.done():
                        del tasks[task_id]
                        land(job, _outcome(job, task))
                if tasks:
                    time.sleep(1.0)
        except KeyboardInterrupt as exc:
            arrays = " ".join(sorted({task.split("_")[0] for task in tasks}))
            observer.message(
                f"stopped watching: {len(tasks)} run(s) go on with Slurm (job {arrays}). "
                f"Collect them with:\n  {_collect(first)}\nor cancel them with `scancel {arrays}`"
            )
            exc.resume_said = True  # type: ignore[attr-defined]  # a caller need not say it again
            raise


def _collect(job: Job) -> str:
    """The command that collects ``job``'s command's runs: the same, with ``--resume`` and
    without ``--detach`` (it waits for them)."""
    hint = job.plan.resume_hint
    return dataclasses.replace(hint, request=hint.request.replace(detach=False)).text()


def _outcome(job: Job, task: Any) -> Outcome:
    """What a task that ended brought back; a task that ended without a result (cancelled,
    out of time, its node lost) or with an error is a failed run, its marker cleared."""
    from submitit.core.utils import UncompletedJobError

    try:
        outcome = task.result()
    except UncompletedJobError:
        log = _last_line(task.stderr() or "")
        reason = (
            f"Slurm task {task.job_id} ended {task.state} without a result (cancelled, out of "
            "time, or its node lost)"
            + (f"; its log ends: {log}" if log else "")
            + "; --resume continues it from its last checkpoint"
        )
        outcome = Outcome("failed", reason=reason)
    except Exception as exc:  # the task's own error (submitit's FailedJobError: its trace)
        parts = str(exc).split("-" * 22)  # the trace sits between two rules
        said = _last_line(parts[1] if len(parts) > 2 else str(exc)) or one_line(exc, 300)
        outcome = Outcome("failed", reason=f"Slurm task {task.job_id}: {said}")
    if outcome.status != "succeeded":
        (job.folder / markers.MARKER).unlink(missing_ok=True)
    return outcome


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return one_line(lines[-1], 300) if lines else ""


# ---------------------------------------------------------------------------- what to ask


@dataclass(frozen=True)
class Partition:
    """What the driver needs to know of a partition (``scontrol show partition``)."""

    name: str
    #: Its default and maximum time limits, in minutes (None: none, or unlimited).
    default_minutes: int | None
    max_minutes: int | None
    #: Whether any of its nodes has GPUs (``gres/gpu`` in its TRES).
    gpus: bool
    #: The most CPUs one of its nodes has (0: unknown).
    node_cpus: int


@dataclass(frozen=True)
class Ask:
    """What each task of an array asks Slurm for: submitit's parameters, the sbatch options
    passed on by name (``additional``), and what the task's run is told."""

    partition: Partition
    #: The device each run trains on (``cuda`` on a partition with GPUs, unless --device cpu).
    device: str
    cpus: int
    gpus: int
    minutes: int
    #: At most this many tasks at once (``--jobs``; None: all).
    jobs: int | None
    additional: tuple[tuple[str, Any], ...]

    @classmethod
    def of(
        cls,
        part: Partition,
        launch: Launch,
        nproc: int,
        cpus: int,
        options: dict[str, Any],
    ) -> Ask:
        """The ask for runs of ``nproc`` processes needing ``cpus`` CPUs, with ``options``
        (``--cluster-opt``) over the harness's own choices."""
        if launch.device == "cuda" and not part.gpus:
            raise HarnessError(
                f"--device cuda: partition {part.name} has no GPUs (no gres/gpu in "
                "`scontrol show partition`); choose a GPU partition, or --device cpu"
            )
        device = "cuda" if part.gpus and launch.device != "cpu" else "cpu"
        options = dict(options)
        limit = options.pop("time", None)
        time_min = limit if limit is not None else part.default_minutes or part.max_minutes
        cpus = int(options.get("cpus_per_task", cpus))
        if part.node_cpus and cpus > part.node_cpus:
            raise HarnessError(
                f"a run needs {cpus} CPUs and partition {part.name}'s nodes have at most "
                f"{part.node_cpus}; lower the protocol's num_workers (--set num_workers=N) "
                "or give --cluster-opt cpus-per-task=N"
            )
        additional = {"mem": f"{MEM_PER_CPU_GB * cpus}G", **options}
        gpus = nproc if device == "cuda" else 0
        minutes = int(time_min or DEFAULT_MINUTES)
        return cls(part, device, cpus, gpus, minutes, launch.jobs, tuple(additional.items()))

    def at_once(self, count: int) -> int:
        return min(count, self.jobs or count)

    def parameters(self, count: int) -> dict[str, Any]:
        """submitit's ``SlurmExecutor`` parameters for an array of ``count`` tasks."""
        params: dict[str, Any] = {
            "partition": self.partition.name,
            "job_name": "harness",
            "time": self.minutes,
            "cpus_per_task": self.cpus,
            "array_parallelism": self.at_once(count),
            # The task runs this interpreter with this code, whatever its node's defaults.
            "setup": [f"export PYTHONPATH={shlex.quote(python_path())}"],
            "additional_parameters": dict(self.additional),
        }
        if self.gpus:
            params["gpus_per_node"] = self.gpus
        return params

    def script(self, folder: Path, count: int) -> str:
        """The sbatch script submitit writes for an array of ``count`` tasks in ``folder``."""
        from submitit.slurm.slurm import _make_sbatch_string

        command = " ".join(
            [shlex.quote(sys.executable), "-u -m submitit.core._submit", shlex.quote(str(folder))]
        )
        params = self.parameters(count)
        if count > 1:  # submitit sends a single run as a plain job
            params["map_count"] = count
        return _make_sbatch_string(command=command, folder=folder, **params)

    def summary(self) -> str:
        gpus = f"{self.gpus} GPU(s)" if self.gpus else "no GPU"
        additional = dict(self.additional)
        others = [f"{k.replace('_', '-')}={v}" for k, v in additional.items() if k != "mem"]
        extra = f", {', '.join(others)}" if others else ""
        return (
            f"{self.cpus} CPU(s), {additional['mem']} memory, {gpus}, "
            f"{self.minutes} min, device {self.device}{extra}"
        )


def partition_name(cluster: str) -> str:
    """``slurm:PARTITION``'s partition; one line when it names none."""
    name = cluster.removeprefix(PREFIX).strip()
    if not name:
        raise HarnessError(
            f"--cluster {cluster}: name a partition, e.g. slurm:gpu (`sinfo -s` lists them)"
        )
    return name


def parse_options(texts: Iterable[str]) -> dict[str, Any]:
    """``--cluster-opt KEY=VALUE`` (``KEY`` alone: a flag) as sbatch options by name, with
    ``-`` read as ``_`` (``cpus-per-task``); ``time`` in minutes. One line on bad input."""
    options: dict[str, Any] = {}
    for text in texts:
        key, sep, value = text.partition("=")
        key = key.strip().lstrip("-").replace("-", "_").lower()
        if not re.fullmatch(r"[a-z][a-z0-9_]*", key) or (sep and not value.strip()):
            raise HarnessError(
                f"--cluster-opt {text}: give an sbatch option as KEY=VALUE (time=4:00:00, "
                "account=lab, qos=high, constraint=a100) or KEY alone for a flag"
            )
        if key in ("array", "partition", "output", "error", "job_name", "signal"):
            raise HarnessError(
                f"--cluster-opt {text}: the harness sets --{key.replace('_', '-')} itself "
                "(the partition is --cluster slurm:PARTITION; --jobs caps the array)"
            )
        options[key] = value.strip() if sep else True
    if "time" in options:
        options["time"] = _option_minutes(str(options["time"]))
    return options


def _option_minutes(text: str) -> int:
    try:
        found = minutes(text)
    except ValueError:
        found = None
    if found is None:
        raise HarnessError(
            f"--cluster-opt time={text}: give a time limit as sbatch reads one: minutes, "
            "HH:MM:SS or D-HH:MM:SS"
        )
    return found


def minutes(text: str) -> int | None:
    """A Slurm time (``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH[:MM[:SS]]``) in whole minutes,
    rounded up; None for ``UNLIMITED``/``INFINITE``/``NONE``. ValueError when it is none."""
    text = text.strip()
    if text.upper() in ("UNLIMITED", "INFINITE", "NONE"):
        return None
    day, sep, clock = text.rpartition("-")
    days = int(day) if sep else 0
    parts = [int(part) for part in clock.split(":")]
    if sep:
        hours, mins, secs = (parts + [0, 0])[:3]
    elif len(parts) == 3:
        hours, mins, secs = parts
    else:
        hours, mins, secs = 0, parts[0], (parts + [0])[1]
    if len(parts) > 3 or min(days, hours, mins, secs) < 0:
        raise ValueError(text)
    return max(1, days * 1440 + hours * 60 + mins + (1 if secs else 0))


def python_path() -> str:
    """The folders this harness and its built-in plugins are imported from, then this
    process's ``PYTHONPATH``: a task imports the same code as the driver."""
    roots = []
    for name in ("harness", "harness_plugins"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            roots.append(str(Path(spec.origin).resolve().parents[1]))
    roots += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join(dict.fromkeys(roots))


# ---------------------------------------------------------------------------- asking Slurm


def _slurm(*args: str, timeout: float = PROBE_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """One Slurm client command, its output as text; at most ``timeout`` seconds."""
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)


def ping(cluster: str, timeout: float | None = None) -> None:
    """One line unless the Slurm controller answers ``scontrol ping`` within ``timeout``."""
    timeout = PROBE_TIMEOUT_S if timeout is None else timeout
    try:
        done = _slurm("scontrol", "ping", timeout=timeout)
        answered = done.returncode == 0 and " is UP" in done.stdout  # a backup may answer
        reason = one_line(done.stdout.splitlines()[0] if done.stdout else done.stderr, 160)
    except subprocess.TimeoutExpired:
        answered, reason = False, f"no answer in {timeout:g} s"
    if not answered:
        raise HarnessError(
            f"--cluster {cluster}: the Slurm controller does not answer ({reason}); check "
            "`scontrol ping` and the configuration it reads (SLURM_CONF)"
        )


@functools.lru_cache(maxsize=8)
def _partition(name: str, conf: str) -> Partition:
    done = _slurm("scontrol", "show", "partition", name, "--oneliner")
    if done.returncode != 0 or f"PartitionName={name}" not in done.stdout:
        known = _slurm("sinfo", "--noheader", "--format=%R").stdout.split()
        raise HarnessError(
            f"--cluster slurm:{name}: Slurm knows no partition {name!r}"
            + (f" (it has: {', '.join(sorted(set(known)))})" if known else "")
            + "; `sinfo -s` lists them"
        )
    fields = dict(
        item.split("=", 1) for item in done.stdout.split() if "=" in item and item[0].isupper()
    )
    cpus = _slurm("sinfo", "--noheader", f"--partition={name}", "--format=%c").stdout
    counts = [int(n) for n in re.findall(r"\d+", cpus)]
    return Partition(
        name=name,
        default_minutes=_minutes_or_none(fields.get("DefaultTime", "NONE")),
        max_minutes=_minutes_or_none(fields.get("MaxTime", "UNLIMITED")),
        gpus="gres/gpu" in fields.get("TRES", ""),
        node_cpus=max(counts, default=0),
    )


def partition(name: str) -> Partition:
    """The partition ``name`` as Slurm describes it; one line when Slurm knows none."""
    return _partition(name, os.environ.get("SLURM_CONF", ""))


def _minutes_or_none(text: str) -> int | None:
    try:
        return minutes(text)
    except ValueError:
        return None


def test_only(script: str, options: Sequence[str] = (), asked: str = "") -> str:
    """What ``sbatch --test-only`` says of ``script`` (it submits nothing); one line naming
    the ``--cluster-opt`` options (and ``asked``: what each task asks for) when sbatch
    refuses it."""
    with tempfile.TemporaryDirectory(prefix="harness-sbatch-") as scratch:
        path = Path(scratch) / "array.sh"
        path.write_text(script, encoding="utf-8")
        try:
            done = _slurm("sbatch", "--test-only", str(path))
        except subprocess.TimeoutExpired:
            raise HarnessError(
                f"sbatch --test-only: no answer in {PROBE_TIMEOUT_S:g} s; check `scontrol ping`"
            ) from None
    lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
    said = one_line((lines[0] if lines else "no answer").replace("sbatch: ", ""), 300)
    if done.returncode != 0:
        given = " ".join(f"--cluster-opt {o}" for o in options)
        culprit = f" with {given}" if given else ""
        each = f"; each task asks for {asked}" if asked else ""
        raise HarnessError(
            f"sbatch refuses the job array{culprit} ({said}{each}); nothing was submitted"
        )
    return said


def squeue(arrays: Iterable[str]) -> dict[str, str] | None:
    """The state of each task of these job arrays that Slurm still knows (``12_3``:
    ``RUNNING``); None when Slurm did not answer."""
    arrays = sorted(set(arrays))
    if not arrays:
        return {}
    try:
        done = _slurm(
            "squeue", "--noheader", "--array", "--states=all", "--format=%i|%T",
            f"--jobs={','.join(arrays)}",
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:  # every one of them forgotten, or no answer
        return {} if "Invalid job id" in done.stderr else None
    states = {}
    for line in done.stdout.splitlines():
        task, _, state = line.strip().partition("|")
        if task:
            states[task] = state.strip()
    return states


def task_folder(token: Path) -> Path:
    """submitit's folder for the array of the token file ``token``."""
    return token.with_name(token.name + ".slurm")


def forget(runs_dir: Path, ended: Iterable[str] = ()) -> None:
    """The tokens (and submitit folders) of this executor's arrays that have no task left
    queued or running (``ended``: tasks landed here, whatever Slurm says of them yet): the
    runs' markers go with them (``markers.clear``). Nothing is judged when Slurm does not
    answer."""
    owned = [(path, found) for path, found in markers.tokens(runs_dir) if "job" in found]
    owned = [(path, found) for path, found in owned if found.get("owner") == Slurm.name]
    states = squeue(str(found["job"]) for _, found in owned)
    if states is None:
        return
    alive = {task for task, state in states.items() if state in ALIVE} - set(ended)
    for path, found in owned:
        if not any(task.split("_")[0] == str(found["job"]) for task in alive):
            path.unlink(missing_ok=True)
            shutil.rmtree(task_folder(path), ignore_errors=True)


@functools.cache
def _watcher() -> type:
    """submitit's ``SlurmJob`` whose states come from squeue (``squeue``) rather than sacct,
    which needs Slurm's accounting database: a task squeue no longer lists is ``GONE``."""
    from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob

    class SqueueWatcher(SlurmInfoWatcher):  # type: ignore[misc]
        """A task has ended when two answers in a row say so (a requeue passes through
        states such as PREEMPTED or NODE_FAIL on its way back to PENDING)."""

        def update(self) -> None:
            waiting = self._registered - self._finished
            states = squeue(task.split("_")[0] for task in waiting)
            self._num_calls += 1
            self._last_status_check = time.time()
            ended = self.__dict__.setdefault("_ended", set())
            for task in waiting if states is not None else ():
                state = states.get(task, "GONE")  # type: ignore[union-attr]
                self._info_dict[task] = {"JobID": task, "State": state}
                if state in ALIVE:
                    ended.discard(task)
                elif task in ended:
                    self._finished.add(task)
                else:
                    ended.add(task)

        def is_done(self, job_id: str, mode: str = "standard") -> bool:
            self.get_state(job_id, mode=mode)  # asks squeue when it is time to
            return job_id in self._finished

    class Watched(SlurmJob):  # type: ignore[misc]
        watcher = SqueueWatcher(delay_s=int(WATCH_S))

        @property
        def _results_timeout_s(self) -> float:  # read when asked: a test may shorten it
            return RESULT_WAIT_S

    return Watched


def watched(folder: Path, task: str) -> Any:
    """submitit's job of task ``task`` (``12_3``) of the array whose files are in ``folder``,
    its state asked of squeue."""
    return _watcher()(folder=folder, job_id=task)


# ---------------------------------------------------------------------------- the task


class _Collect(NullObserver):
    """The task's observer: no bars, the library's lines kept for the driver to print."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)


class SlurmTask:
    """What each array task runs (submitit pickles it; ``train_in_task``). It has submitit's
    ``checkpoint``: on the USR2 Slurm sends before the time limit (or a pre-emption), the
    task requeues itself, and the requeued task resumes from the run's last checkpoint."""

    def __call__(self, spec: JobSpec, token: str, threads: int) -> Outcome:
        return train_in_task(spec, token, threads)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, *args, **kwargs)


def train_in_task(spec: JobSpec, token: str, threads: int) -> Outcome:
    """Train one run in place in the shared runs folder: ``rebuild`` then ``ranks.train``.

    ``token``: the driver's (``markers``); ``threads``: the CPUs asked (Slurm's
    ``SLURM_CPUS_PER_TASK`` when set). A task Slurm requeued finds its own marker and
    resumes; the marker goes when the run ends here (a task killed leaves it)."""
    if spec.request.launch.device == "cpu":  # Slurm gave this task no GPU: use none
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    import torch

    threads = max(1, int(os.environ.get("SLURM_CPUS_PER_TASK") or threads))
    torch.set_num_threads(threads)
    runs_dir = Path(spec.request.launch.runs_dir)
    if not markers.shared(runs_dir, token):
        return Outcome(
            "failed",
            reason=f"{socket.gethostname()} cannot see the runs folder {runs_dir}: "
            "--cluster slurm needs a --runs-dir on a filesystem every node shares",
        )
    observer = _Collect()
    with tempfile.TemporaryDirectory(prefix="harness-job-") as scratch:
        here = spec.replace(leaderboards_dir=Path(scratch), resume=spec.action is Action.RESUME)
        try:
            job = rebuild(here)
            if markers.retried(job.folder, token):  # requeued: a --resume of what it holds
                observer.message(f"Slurm requeued this task ({_task_id()}); resuming")
                job = job_of(job.plan, job.seed, job.fold, resume=True)
            outcome = ranks.train(job, observer, threads)
        except (RunFailed, HarnessError) as exc:
            outcome = Outcome("failed", reason=str(exc))
        else:
            (job.folder / markers.MARKER).unlink(missing_ok=True)
    outcome.messages = observer.lines
    return outcome


def _task_id() -> str:
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
    return f"task {array}_{task}, restart {restarts}" if array else f"restart {restarts}"
