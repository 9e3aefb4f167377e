"""A seed's trackers: ``metrics.jsonl`` always, and those ``--track`` names (the registry in
``harness.runs.tracking``), each a ``TrainObserver`` composed with the caller's observer.

Only the main rank of a data-parallel run tracks. A resumed run continues what each tracked,
without duplicates or gaps: the trainer reports an epoch (``epoch_done``) before its checkpoint
is written, and every tracker has the epoch on disk (or at its service) when ``epoch_done``
returns.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from harness.engine.events import Observers, TrainObserver
from harness.runs.tracking import tracker, tracker_names
from harness.runs.tracking.about import STATE_NAME, RunAbout
from harness.runs.tracking.metrics import METRICS_NAME, MetricsLog
from harness.runs.tracking.preview import Preview


class TrackerLog(Protocol):
    """What a tracker's class offers: ``open`` gives the observer that tracks one seed."""

    @classmethod
    def open(
        cls,
        folder: Path,
        about: RunAbout,
        *,
        resumed: Mapping[str, Any] | None,
        preview: Preview | None,
        say: Callable[[str], None],
    ) -> TrainObserver:
        """The seed in ``folder`` tracked: afresh (``resumed`` None) or continued from the
        checkpoint state ``resumed``; ``say`` hears the one line a tracker that stops says."""
        ...


class Tracked(Observers):
    """The caller's observer with a seed's trackers; ``finish`` ends the runs at the services."""

    def __init__(self, observer: TrainObserver, *trackers: TrainObserver) -> None:
        super().__init__(observer, *trackers)
        self.trackers = trackers

    def finish(self, status: str) -> None:
        """The run ended ``succeeded``, ``failed`` or ``stopped``, its record written (the
        services get its files and status); later calls change nothing. Never raises. A
        tracker that keeps nothing at a service has no ``finish``."""
        for observer in self.trackers:
            finish = getattr(observer, "finish", None)
            if finish is not None:
                finish(status)


@contextlib.contextmanager
def seed_tracking(
    observer: TrainObserver,
    folder: Path,
    *,
    resumed: Mapping[str, Any] | None,
    track: str | Sequence[str] | None = None,
    about: RunAbout | None = None,
    preview: Preview | None = None,
) -> Iterator[Tracked]:
    """``observer`` together with this seed's trackers: ``metrics.jsonl`` always, and those of
    ``track``. ``resumed`` is the state of the checkpoint the seed continues (None: a fresh
    start, which replaces what an earlier run of this folder tracked); ``about`` names and
    describes the run (needed by ``track``), ``preview`` is the picture of each validation.

    The caller calls ``finish`` once the record is written; a seed left by an exception
    (Ctrl-C, a checkpoint that cannot be used) ends at the services as stopped.
    """
    names = tracker_names(track)
    if resumed is None:
        (Path(folder) / STATE_NAME).unlink(missing_ok=True)  # the runs a fresh start replaces
    say = observer.message
    trackers: list[TrainObserver] = [MetricsLog(Path(folder) / METRICS_NAME, resumed, say)]
    if names and about is None:
        raise ValueError(f"--track {','.join(names)} needs the run's RunAbout")
    for name in names:
        assert about is not None
        log = (
            tracker(name)
            .load()
            .open(Path(folder), about, resumed=resumed, preview=preview, say=say)
        )
        trackers.append(log)
    tracked = Tracked(observer, *trackers)
    try:
        yield tracked
    except BaseException:
        tracked.finish("stopped")
        raise
    finally:
        tracked.finish("failed")  # a caller that did not say: nothing, when it did
