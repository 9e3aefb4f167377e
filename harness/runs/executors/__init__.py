"""Executors carry jobs out; the dispatcher (``harness.runs.dispatch``) has decided them.

An executor is one module behind one protocol (``Executor``), chosen in one place
(``choose``, once per command):

- ``local``: ``InProcess``, each job here, one after another (what a command runs without
  ``--jobs``/``--cluster``);
- ``ray``: ``Ray``, up to ``--jobs N`` at once on this machine or on the Ray cluster of
  ``--cluster ADDRESS``; beside it ``ray_cluster`` (asking a cluster whether it answers,
  joining it, a local instance's watchdog) and ``markers`` (what a command leaves in the
  runs folder while its runs are elsewhere, and clearing what a killed one left);
- ``slurm``: ``Slurm``, every run a task of one Slurm job array (``--cluster
  slurm:PARTITION``), at most ``--jobs N`` at once, through submitit.

Every executor trains a job through ``harness.runs.ranks.train`` (over ``--nproc``
processes when asked), and one that sends a job to another process sends it as a
``harness.runs.job.JobSpec``. A new executor is a module with a class like these and one
entry in ``ELSEWHERE``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from harness.engine.events import TrainObserver
from harness.errors import HarnessError
from harness.runs.executors.local import InProcess
from harness.runs.executors.ray import Ray
from harness.runs.executors.slurm import Slurm
from harness.runs.job import Job, Land
from harness.runs.requests import Launch, RunRequest

__all__ = ["ELSEWHERE", "Executor", "InProcess", "Ray", "Slurm", "choose"]


class Executor(Protocol):
    """Carries jobs out, calling ``land`` with each one's outcome as it ends.

    The class says which requests it takes (``takes``: by their launch options) and checks
    the options that are its own (``check``: one line on bad input, before any work); an
    instance is made from the request (``Executor(request)``) and runs the jobs (``run``).
    """

    #: What the records of its runs say carried them out (``cost.executor``).
    name: str
    #: Whether the dispatcher should say one line per run that ends (no bar of its own).
    announces: bool
    #: Whether the runs train elsewhere (other processes with their own devices: a Ray
    #: task, a cluster's job), so that this machine's GPUs bound no run, and a run's own
    #: error comes back as its failure.
    remote: bool
    #: Whether its runs go on after the command returns (``--detach``: a batch system's).
    detaches: bool
    #: Whether it hands ``--cluster-opt KEY=VALUE`` to a scheduler.
    passes_options: bool

    def __init__(self, request: RunRequest) -> None: ...

    @classmethod
    def takes(cls, launch: Launch) -> bool: ...

    @classmethod
    def check(cls, request: RunRequest) -> None: ...

    def preview(self, jobs: Sequence[Job]) -> list[str]:
        """What ``--dry-run`` says besides the schedule: how ``jobs`` would be sent."""
        ...

    def run(self, jobs: Sequence[Job], land: Land, observer: TrainObserver) -> None: ...


#: The executors that send runs elsewhere, asked in this order: the first that takes a
#: request carries its runs out; when none does, this process does (``InProcess``).
ELSEWHERE: tuple[type[Executor], ...] = (Slurm, Ray)


def choose(request: RunRequest) -> Executor:
    """The executor of ``request``'s runs, its own options checked (``--jobs N`` positive; a
    ``--cluster`` that does not answer refused here, unless this is a ``--dry-run``), before
    anything is written. Called once per command: the cluster is asked once. ``--detach``
    and ``--cluster-opt`` are refused where the chosen executor has no use for them."""
    kind: type[Executor] = next((k for k in ELSEWHERE if k.takes(request.launch)), InProcess)
    launch = request.launch
    if launch.detach and not kind.detaches:
        raise HarnessError(
            "--detach: these runs end with the command; only runs sent to a batch system "
            "go on without it (--cluster slurm:PARTITION)"
        )
    if launch.cluster_opts and not kind.passes_options:
        raise HarnessError(
            f"--cluster-opt {launch.cluster_opts[0]}: no scheduler here to pass it to; it is "
            "for a batch system's cluster (--cluster slurm:PARTITION)"
        )
    kind.check(request)
    return kind(request)
