"""Watching a run while it trains: ``metrics.jsonl`` in every run folder and, with ``--track``,
the trackers it names, several at once (``--track tensorboard,mlflow``).

``TRACKERS`` is the registry: each tracker names its module and class, the libraries it needs
and what ``--track``'s help says of it; a new tracker is one module (a class with ``open``,
``harness.runs.tracking.session.TrackerLog``) plus one line here. This module is light
(nothing of a tracker is imported until a run uses it), so the command line builds
``--track``'s help from the registry and ``check_track`` says what to install before any
work. ``harness.runs.tracking.session`` composes a seed's trackers with the caller's observer.

Runs trained on Ray workers track from the worker: ``worker_env`` is what the driver passes
on to them (each tracker's settings, e.g. the MLflow server, W&B's mode and key).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.errors import HarnessError

__all__ = [
    "TRACKERS",
    "WEIGHTS_ENV",
    "Tracker",
    "check_track",
    "track_help",
    "tracker",
    "tracker_names",
    "worker_env",
]

#: Set to 1 to send the final weights to the services with the run's other files.
WEIGHTS_ENV = "HARNESS_TRACK_WEIGHTS"


@dataclass(frozen=True)
class Tracker:
    """One tracker ``--track`` can name: where its class is, what it needs, how help says it."""

    #: As ``--track`` spells it.
    name: str
    #: As messages name it (``MLflow``).
    label: str
    #: The module and class that track a seed (a ``TrackerLog``), imported only when used.
    module: str
    cls: str
    #: The modules that must import for it to work, and the package that provides them.
    requires: tuple[str, ...]
    package: str
    #: What ``--track``'s help says of it, in brackets ("" says nothing).
    note: str = ""
    #: Environment variables (by prefix) a Ray worker gets from the driver for it.
    env: tuple[str, ...] = ()

    def load(self) -> Any:
        """Its class (a ``harness.runs.tracking.session.TrackerLog``), its module (and
        library) imported now."""
        return getattr(importlib.import_module(self.module), self.cls)

    @property
    def installed(self) -> bool:
        return all(_importable(module) for module in self.requires)


#: Every tracker, one line each, in the order help and messages list them.
TRACKERS: tuple[Tracker, ...] = (
    Tracker("tensorboard", "TensorBoard", "harness.runs.tracking.tensorboard", "TensorBoardLog", ("torch.utils.tensorboard", "tensorboard"), "tensorboard", "event files in the run folder"),  # noqa: E501
    Tracker("mlflow", "MLflow", "harness.runs.tracking.mlflow_log", "MLflowLog", ("mlflow",), "mlflow", "MLFLOW_TRACKING_URI, else a store in --runs-dir", ("MLFLOW_",)),  # noqa: E501
    Tracker("wandb", "W&B", "harness.runs.tracking.wandb_log", "WandbLog", ("wandb",), "wandb", "", ("WANDB_",)),  # noqa: E501
)  # fmt: skip


def tracker(name: str) -> Tracker:
    """The tracker ``--track`` calls ``name``; one line naming the choices when none is."""
    for found in TRACKERS:
        if found.name == name:
            return found
    names = ", ".join(t.name for t in TRACKERS)
    raise HarnessError(
        f"--track {name!r}: choose from {names} (several at once: --track tensorboard,mlflow)"
    )


def track_help() -> str:
    """``--track``'s help, from the registry."""
    said = ", ".join(f"{t.name} ({t.note})" if t.note else t.name for t in TRACKERS)
    packages = " / ".join(t.package for t in TRACKERS)
    return (
        f"Also log each run to: {said}; several comma-separated (tensorboard,mlflow). "
        f"Each needs its package: pip install {packages}"
    )


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
        found = tracker(name)
        if not found.installed:
            raise HarnessError(
                f"--track {name}: {found.label} is not installed; install it with "
                f"`pip install {found.package}` (or `pip install 'segmentation-harness[track]'`)"
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
    each tracker's settings (``MLFLOW_*``, ``WANDB_*``) and ``HARNESS_TRACK_WEIGHTS``."""
    prefixes = tuple(prefix for t in TRACKERS for prefix in t.env)
    return {
        key: value
        for key, value in os.environ.items()
        if key.startswith(prefixes) or key == WEIGHTS_ENV
    }
