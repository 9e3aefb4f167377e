"""In process: each job trained here, one after another (over ``--nproc`` processes when
asked, or as this process's rank of a data-parallel run started by torchrun:
``harness.runs.ranks.train``). What a command runs without ``--jobs``/``--cluster``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.engine.events import TrainObserver
from harness.runs import ranks
from harness.runs.executors import markers
from harness.runs.job import Job, Land
from harness.runs.requests import Launch, RunRequest


class InProcess:
    """Each job trained here, one after another; Ctrl-C stops the one running."""

    name = "in-process"
    announces = False
    remote = False
    detaches = False
    passes_options = False

    def __init__(self, request: RunRequest) -> None:
        #: Where to clear what a killed command left (``clear_stale``) when no job says.
        self.runs_dir = Path(request.launch.runs_dir)

    @classmethod
    def takes(cls, launch: Launch) -> bool:
        """Any request: this process is where runs go when no other executor takes them."""
        return True

    @classmethod
    def check(cls, request: RunRequest) -> None:
        """Nothing of its own to check (``--nproc`` is the planner's: its GPUs are here)."""

    def preview(self, jobs: Sequence[Job]) -> list[str]:
        """Nothing to add: the runs train here, one after another."""
        return []

    def run(self, jobs: Sequence[Job], land: Land, observer: TrainObserver) -> None:
        runs_dir = jobs[0].plan.runs_dir if jobs else self.runs_dir
        if not jobs or jobs[0].plan.world.is_main:
            markers.clear(runs_dir, observer)
        titled: set[int] = set()
        for job in jobs:
            if job.plan.title and id(job.plan) not in titled:
                titled.add(id(job.plan))
                observer.message(job.plan.title)
            try:
                outcome = ranks.train(job, observer)
            except KeyboardInterrupt as exc:
                exc.job = job  # type: ignore[attr-defined]  # for the dispatcher's report
                raise
            land(job, outcome)
