"""Watching a run while it trains: ``metrics.jsonl`` in every run folder and, with ``--track``,
the trackers it names: ``tensorboard`` (event files in the run folder), ``mlflow`` and ``wandb``
(a run at the service), several at once (``--track tensorboard,mlflow``).

Each tracker is a ``TrainObserver`` composed with the caller's observer for each seed
(``seed_tracking``); only the main rank of a data-parallel run tracks. Each is an optional
dependency, imported only when a run uses it; ``check_track`` says what to install before any
work. A resumed run continues what each tracked, without duplicates or gaps: the trainer
reports an epoch (``epoch_done``) before its checkpoint is written, and every tracker has the
epoch on disk (or at its service) when ``epoch_done`` returns.

Runs trained on Ray workers track from the worker: ``worker_env`` is what the driver passes
on to them (the MLflow server, W&B's settings).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.engine.events import Observers, TrainObserver
from harness.errors import HarnessError
from harness.runs.tracking.about import STATE_NAME, TRACKED_RECORD, WEIGHTS_ENV, RunAbout
from harness.runs.tracking.metrics import METRICS_NAME, MetricsLog, read_metrics
from harness.runs.tracking.preview import Preview
from harness.runs.tracking.remote import RemoteLog
from harness.runs.tracking.tensorboard import TENSORBOARD_DIR, TensorBoardLog

__all__ = [
    "METRICS_NAME",
    "STATE_NAME",
    "TENSORBOARD_DIR",
    "TRACKED_RECORD",
    "TRACKERS",
    "WEIGHTS_ENV",
    "MetricsLog",
    "Preview",
    "RunAbout",
    "TensorBoardLog",
    "Tracked",
    "check_track",
    "read_metrics",
    "seed_tracking",
    "tracker_names",
    "worker_env",
]


@dataclass(frozen=True)
class _Tracker:
    """A tracker's library: the modules that must import, its name, the package to install."""

    modules: tuple[str, ...]
    label: str
    package: str


_TRACKERS = {
    "tensorboard": _Tracker(
        ("torch.utils.tensorboard", "tensorboard"), "TensorBoard", "tensorboard"
    ),
    "mlflow": _Tracker(("mlflow",), "MLflow", "mlflow"),
    "wandb": _Tracker(("wandb",), "W&B", "wandb"),
}
#: What ``--track`` accepts, one or several (comma-separated).
TRACKERS = tuple(_TRACKERS)
#: The environment a Ray worker gets from the driver for its trackers (``worker_env``).
_WORKER_ENV_PREFIXES = ("MLFLOW_", "WANDB_")


def tracker_names(track: str | Sequence[str] | None) -> tuple[str, ...]:
    """``--track``'s trackers, in order, each once (``"tensorboard,mlflow"`` or a sequence)."""
    if track is None:
        return ()
    parts = track.split(",") if isinstance(track, str) else track
    names = [p.strip().lower() for p in parts if p.strip()]
    return tuple(dict.fromkeys(names))


def check_track(track: str | Sequence[str] | None) -> None:
    """Each tracker of ``--track`` is known and its library installed; else one line saying
    what to do (checked when a run is planned, before any work). Nothing is imported."""
    for name in tracker_names(track):
        if name not in _TRACKERS:
            raise HarnessError(
                f"--track {name!r}: choose from {', '.join(TRACKERS)} "
                "(several at once: --track tensorboard,mlflow)"
            )
        tracker = _TRACKERS[name]
        if not all(_importable(module) for module in tracker.modules):
            raise HarnessError(
                f"--track {name}: {tracker.label} is not installed; install it with "
                f"`pip install {tracker.package}` (or `pip install 'segmentation-harness[track]'`)"
            )


def _importable(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None  # None: an import that is made to fail
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def worker_env() -> dict[str, str]:
    """What a Ray worker needs from this process's environment to track as it would here:
    ``MLFLOW_*`` (the server), ``WANDB_*`` (mode, key, entity) and ``HARNESS_TRACK_WEIGHTS``."""
    return {
        key: value
        for key, value in os.environ.items()
        if key.startswith(_WORKER_ENV_PREFIXES) or key == WEIGHTS_ENV
    }


class Tracked(Observers):
    """The caller's observer with a seed's trackers; ``finish`` ends the runs at the services."""

    def finish(self, status: str) -> None:
        """The run ended ``succeeded``, ``failed`` or ``stopped``, its record written (the
        services get its files and status); later calls change nothing. Never raises."""
        for observer in self.observers:
            if isinstance(observer, RemoteLog):
                observer.finish(status)


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
    warn = observer.message
    trackers: list[TrainObserver] = [MetricsLog(Path(folder) / METRICS_NAME, resumed, warn)]
    step = None if resumed is None else int(resumed["step"])
    for name in names:
        if name == "tensorboard":
            texts = about.texts if about else None
            where = Path(folder) / TENSORBOARD_DIR
            board = TensorBoardLog(
                where, resumed_step=step, texts=texts, preview=preview, warn=warn
            )
            trackers.append(board)
            continue
        if about is None:
            raise ValueError(f"--track {name} needs the run's RunAbout")
        log = _remote(name)(folder, about, resumed=resumed, preview=preview, say=observer.message)
        trackers.append(log)
    tracked = Tracked(observer, *trackers)
    try:
        yield tracked
    except BaseException:
        tracked.finish("stopped")
        raise
    finally:
        tracked.finish("failed")  # a caller that did not say: nothing, when it did


def _remote(name: str) -> type[RemoteLog]:
    """The tracker class of a service, its module (and library) imported only now."""
    if name == "mlflow":
        from harness.runs.tracking.mlflow_log import MLflowLog

        return MLflowLog
    if name == "wandb":
        from harness.runs.tracking.wandb_log import WandbLog

        return WandbLog
    raise HarnessError(f"--track {name!r}: choose from {', '.join(TRACKERS)}")
