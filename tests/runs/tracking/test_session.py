"""``harness.runs.tracking.session``: a seed's trackers come from the registry; a new tracker
is one module (a class with ``open``) plus one line in ``harness.runs.tracking.TRACKERS``."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from harness.engine.events import NullObserver
from harness.errors import HarnessError
from harness.runs import tracking
from harness.runs.tracking.about import RunAbout
from harness.runs.tracking.metrics import METRICS_NAME
from harness.runs.tracking.session import seed_tracking


class _Log(NullObserver):
    """A tracker that notes what it is told."""

    opened: list[dict[str, Any]] = []
    finished: list[str] = []
    epochs: list[int] = []

    @classmethod
    def open(cls, folder: Path, about: RunAbout, *, resumed, preview, say) -> _Log:
        cls.opened.append({"folder": folder, "name": about.name, "resumed": resumed})
        return cls()

    def epoch_done(self, metrics: dict[str, Any]) -> None:
        self.epochs.append(int(metrics["epoch"]))

    def finish(self, status: str) -> None:
        self.finished.append(status)


@pytest.fixture
def notebook(monkeypatch: pytest.MonkeyPatch) -> type[_Log]:
    """A tracker ``notebook`` in a module of its own, registered by one line."""
    module = types.ModuleType("notebook_tracker")
    module.NotebookLog = _Log  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "notebook_tracker", module)
    line = tracking.Tracker(
        "notebook", "Notebook", "notebook_tracker", "NotebookLog", (), "notebook", note="nb"
    )
    monkeypatch.setattr(tracking, "TRACKERS", (*tracking.TRACKERS, line))
    _Log.opened, _Log.finished, _Log.epochs = [], [], []
    return _Log


def _about() -> RunAbout:
    return RunAbout(unit="seed 0", experiment="bench", name="unet seed 0", group="unet")


def test_a_tracker_registered_by_one_line_tracks_a_seed(notebook, tmp_path: Path) -> None:
    tracking.check_track("notebook")  # known, and nothing to install
    assert "notebook (nb)" in tracking.track_help()
    with seed_tracking(
        NullObserver(), tmp_path, resumed=None, track="notebook", about=_about()
    ) as tracked:
        tracked.epoch_done({"epoch": 1, "loss": 0.5, "lr": 0.1})
        tracked.finish("succeeded")
    assert notebook.opened == [{"folder": tmp_path, "name": "unet seed 0", "resumed": None}]
    assert notebook.epochs == [1]
    # Finished once with the run's status; the block's end changes nothing after that.
    assert notebook.finished[0] == "succeeded"
    assert (tmp_path / METRICS_NAME).is_file()  # metrics.jsonl whatever --track says


def test_a_seed_left_by_an_exception_ends_stopped_at_its_trackers(notebook, tmp_path) -> None:
    with (
        pytest.raises(KeyboardInterrupt),
        seed_tracking(NullObserver(), tmp_path, resumed=None, track="notebook", about=_about()),
    ):
        raise KeyboardInterrupt
    assert notebook.finished[0] == "stopped"


def test_the_callers_observer_is_not_finished(notebook, tmp_path: Path) -> None:
    class Caller(NullObserver):
        def finish(self, status: str) -> None:  # not a tracker's: never called by Tracked
            raise AssertionError("the caller's observer was finished")

    with seed_tracking(Caller(), tmp_path, resumed=None, track="notebook", about=_about()) as t:
        t.finish("succeeded")


def test_an_unknown_tracker_names_every_registered_one(notebook) -> None:
    with pytest.raises(HarnessError, match="choose from tensorboard, mlflow, wandb, notebook"):
        tracking.check_track("notebok")


def test_the_registry_names_a_class_with_open_for_every_tracker() -> None:
    for line in tracking.TRACKERS:
        if line.installed:
            assert callable(line.load().open), line.name
