"""``metrics.jsonl``: one JSON line per epoch in every run folder, tracked or not.

A line that cannot be written (a full disk) is one warning line, once, and the run goes on
(its checkpoints and record keep its result). A resumed run continues the file without
duplicates or gaps. The trainer reports an epoch
(``epoch_done``) before its checkpoint is written, and the line is on disk when
``epoch_done`` returns; so the file's epochs are always at least those of the last
checkpoint. A resume keeps the lines up to the checkpoint's epoch and drops the later ones
(trained again now).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.atomic import append_whole, atomic_write_bytes, cannot_write
from harness.engine.events import NullObserver

__all__ = ["METRICS_NAME", "MetricsLog", "read_metrics"]

#: One JSON line per epoch, in each run folder.
METRICS_NAME = "metrics.jsonl"
#: The keys of a metrics line, in this order (any others after them).
_ORDER = (
    "epoch",
    "step",
    "loss",
    "lr",
    "images_per_s",
    "wall_s",
    "val_mean_dice",
    "val_per_class_dice",
)


class Warned:
    """A tracker's write that fails (a full disk): one warning line, the first time only;
    the run goes on."""

    def __init__(self, what: str, where: Path, warn: Callable[[str], None] | None) -> None:
        self.what = what
        self.where = where
        self.warn = warn
        self.failed = False

    def failure(self, exc: OSError) -> None:
        if not self.failed and self.warn is not None:
            line = cannot_write(exc, self.where)
            self.warn(f"warning: {line}; {self.what} (the run goes on)")
        self.failed = True


class MetricsLog(NullObserver):
    """``metrics.jsonl``: one JSON object per epoch, appended whole (or not at all) as the
    epoch ends; ``tail -f`` shows it. ``resumed`` is the state of the checkpoint the run
    continues (None: a fresh start, which empties the file); ``warn`` hears the one line
    said when an epoch's line cannot be written (a full disk)."""

    def __init__(
        self,
        path: Path,
        resumed: Mapping[str, Any] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.path = Path(path)
        lines = [] if resumed is None else _kept_lines(self.path, resumed)
        atomic_write_bytes(self.path, "".join(lines).encode("utf-8"))
        self.warned = Warned("epochs are missing from it from here on", self.path, warn)

    def epoch_done(self, metrics: Mapping[str, Any]) -> None:
        try:
            append_whole(self.path, _line(metrics).encode("utf-8"))
        except OSError as exc:
            self.warned.failure(exc)


def _line(metrics: Mapping[str, Any]) -> str:
    ordered = {k: metrics[k] for k in _ORDER if k in metrics}
    ordered.update({k: v for k, v in metrics.items() if k not in ordered})
    return json.dumps(ordered) + "\n"


def _kept_lines(path: Path, resumed: Mapping[str, Any]) -> list[str]:
    """The lines of the epochs the checkpoint has done, in order, one per epoch.

    Later lines go (those epochs train again); so does a line a kill cut short (it is
    written before its epoch's checkpoint, so its epoch is a later one). An epoch the file
    lacks (a checkpoint from before ``metrics.jsonl``, a file deleted) gets the line the
    checkpoint's history gives: epoch, loss, lr and the mean validation Dice.
    """
    done = int(resumed["epoch"])
    kept: dict[int, str] = {}
    for line in _lines(path):
        if line["epoch"] <= done:
            kept[line["epoch"]] = _line(line)
    for entry in resumed.get("history", []):
        epoch = int(entry["epoch"])
        if epoch <= done and epoch not in kept:
            kept[epoch] = _line(entry)
    return [kept[epoch] for epoch in sorted(kept)]


def _lines(path: Path) -> list[dict[str, Any]]:
    """The whole lines of ``path`` that hold an epoch's metrics ([] when there is no file)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    out = []
    for raw in text.splitlines():
        try:
            line = json.loads(raw)
            line["epoch"] = int(line["epoch"])
        except (ValueError, TypeError, KeyError):
            continue  # cut short by a kill while it was written
        out.append(line)
    return out


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The epochs ``metrics.jsonl`` (a file, or a run folder holding one) has recorded."""
    path = Path(path)
    return _lines(path / METRICS_NAME if path.is_dir() else path)
