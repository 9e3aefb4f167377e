"""Watching a run while it trains: ``metrics.jsonl`` in every run folder and, with
``--track tensorboard``, TensorBoard event files under ``RUN_DIR/tensorboard/``.

Both are ``TrainObserver``s, composed with the caller's observer for each seed
(``seed_observer``); only the main rank of a data-parallel run tracks.

A resumed run continues both without duplicates or gaps. The trainer reports an epoch
(``epoch_done``) before its checkpoint is written, and both trackers have the epoch on disk
when ``epoch_done`` returns; so the epochs in ``metrics.jsonl`` and in the event files are
always at least those of the last checkpoint. A resume keeps the lines up to the
checkpoint's epoch and drops the later ones (trained again now); TensorBoard's own
``purge_step`` hides events after the checkpoint's step from every reader.

``tensorboard --logdir runs/`` shows each run under its folder's path: benchmark, entry
and seed.

A tracker that cannot write while the run trains (a full disk) says so in one warning line,
once, and the run goes on: its checkpoints and its record keep its result, and a checkpoint
that cannot be written ends the run as a failure that ``--resume`` continues.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.atomic import append_whole, atomic_write_bytes, cannot_write
from harness.data.annotations import rasterize, read_annotation
from harness.data.images import read_gray, to_input
from harness.data.layout import label_path
from harness.engine.events import NullObserver, Observers, TrainObserver
from harness.errors import HarnessError
from harness.metric.dice import logits_to_masks
from harness.pictures.overlays import overlay

__all__ = [
    "METRICS_NAME",
    "TENSORBOARD_DIR",
    "TRACKERS",
    "MetricsLog",
    "Preview",
    "TensorBoardLog",
    "check_track",
    "read_metrics",
    "seed_observer",
]

#: One JSON line per epoch, in each run folder.
METRICS_NAME = "metrics.jsonl"
#: The event files of ``--track tensorboard``, in each run folder.
TENSORBOARD_DIR = "tensorboard"
#: What ``--track`` accepts.
TRACKERS = ("tensorboard",)
_INSTALL = "pip install tensorboard` (or `pip install 'segmentation-harness[track]'`)"
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


def check_track(track: str | None) -> None:
    """``--track``'s value is known and its library importable; else one line saying what
    to do (checked when a run is planned, before any training)."""
    if track is None:
        return
    if track not in TRACKERS:
        raise HarnessError(f"--track {track!r}: choose one of {', '.join(TRACKERS)}")
    try:
        import torch.utils.tensorboard  # noqa: F401 - raises ImportError without tensorboard
    except ImportError:
        raise HarnessError(
            f"--track tensorboard: TensorBoard is not installed; install it with `{_INSTALL}"
        ) from None


def seed_observer(
    observer: TrainObserver,
    folder: Path,
    *,
    resumed: Mapping[str, Any] | None,
    track: str | None = None,
    texts: Mapping[str, str] | None = None,
    preview: Preview | None = None,
) -> TrainObserver:
    """``observer`` together with this seed's trackers: ``metrics.jsonl`` always, and the
    event files of ``track``. ``resumed`` is the state of the checkpoint the seed continues
    (None: a fresh start, which replaces what an earlier run of this folder tracked);
    ``texts`` (title -> markdown) and ``preview`` go to TensorBoard."""
    trackers: list[TrainObserver] = [
        MetricsLog(folder / METRICS_NAME, resumed, warn=observer.message)
    ]
    if track == "tensorboard":
        step = None if resumed is None else int(resumed["step"])
        board = folder / TENSORBOARD_DIR
        trackers.append(
            TensorBoardLog(
                board, resumed_step=step, texts=texts, preview=preview, warn=observer.message
            )
        )
    return Observers(observer, *trackers)


class _Warned:
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


# -- metrics.jsonl ---------------------------------------------------------------------------


class MetricsLog(NullObserver):
    """``metrics.jsonl``: one JSON object per epoch, appended whole (or not at all) as the
    epoch ends; ``tail -f`` shows it. ``resumed`` as in ``seed_observer``; ``warn`` hears the
    one line said when an epoch's line cannot be written (a full disk)."""

    def __init__(
        self,
        path: Path,
        resumed: Mapping[str, Any] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.path = Path(path)
        lines = [] if resumed is None else _kept_lines(self.path, resumed)
        atomic_write_bytes(self.path, "".join(lines).encode("utf-8"))
        self.warned = _Warned("epochs are missing from it from here on", self.path, warn)

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


# -- TensorBoard -----------------------------------------------------------------------------


class TensorBoardLog(NullObserver):
    """Event files in ``folder``: the loss at every step read back, the epoch's loss, lr and
    throughput, the validation Dice (mean, and per class under ``val_dice/``), the texts at
    step 0, and the preview's prediction at each validation. Flushed at each epoch's end.

    A fresh start (``resumed_step`` None) removes the folder's earlier event files; a resume
    from the checkpoint after step S tells TensorBoard to drop the events after S (and writes
    the texts if the run was not tracked before). Events that cannot be written (a full disk)
    are one line to ``warn``, and the run goes on untracked.
    """

    def __init__(
        self,
        folder: Path,
        *,
        resumed_step: int | None = None,
        texts: Mapping[str, str] | None = None,
        preview: Preview | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        from torch.utils.tensorboard import SummaryWriter

        folder = Path(folder)
        if resumed_step is None and folder.exists():
            shutil.rmtree(folder)  # the events of the run this fresh start replaces
        # The texts once per run: at a fresh start, or at the first resume that tracks.
        first = not any(folder.glob("events.out.tfevents.*"))
        purge = None if resumed_step is None else resumed_step + 1
        self.writer = SummaryWriter(str(folder), purge_step=purge)
        self.preview = preview
        self.warned = _Warned("TensorBoard stops tracking this run", folder, warn)
        self._restore_hook = _quiet_writer_thread()
        if first:
            for title, text in (texts or {}).items():
                self.writer.add_text(title, text, 0)

    def step_done(self, step: int, epoch: int, epochs: int, loss: float) -> None:
        self._guarded(self.writer.add_scalar, "train/loss", loss, step)

    def validated(self, epoch: int, step: int, model: torch.nn.Module) -> None:
        if self.preview is not None and not self.warned.failed:
            picture = self.preview.render(model)
            self._guarded(self.writer.add_image, "val/prediction", picture, step, dataformats="HWC")

    def epoch_done(self, metrics: Mapping[str, Any]) -> None:
        self._guarded(self._epoch, metrics)

    def run_ended(self) -> None:
        try:  # even after a failed write: the writer's thread ends
            self.writer.close()
        except OSError as exc:
            self.warned.failure(exc)
        finally:
            self._restore_hook()

    def _guarded(self, write: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        """``write``, unless an earlier write failed; a failure is the one warning line."""
        if self.warned.failed:
            return
        try:
            write(*args, **kwargs)
        except OSError as exc:
            self.warned.failure(exc)

    def _epoch(self, metrics: Mapping[str, Any]) -> None:
        step, add = int(metrics["step"]), self.writer.add_scalar
        add("train/epoch", metrics["epoch"], step)
        add("train/epoch_loss", metrics["loss"], step)
        add("train/lr", metrics["lr"], step)
        if "images_per_s" in metrics:
            add("train/images_per_s", metrics["images_per_s"], step)
        if "val_mean_dice" in metrics:
            add("val/mean_dice", metrics["val_mean_dice"], step)
        for name, dice in metrics.get("val_per_class_dice", {}).items():
            add(f"val_dice/{name}", dice, step)
        self.writer.flush()  # on disk before the epoch's checkpoint


def _quiet_writer_thread() -> Callable[[], None]:
    """TensorBoard's writer thread ends on a failed write (a full disk) by raising, which
    Python prints as a thread's traceback; the tracker says it as its one warning line
    instead (the writer hands the error on). Returns what puts the hook before back."""
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        writer = type(args.thread).__name__ == "_AsyncWriterThread"
        if not (writer and isinstance(args.exc_value, OSError)):
            previous(args)

    threading.excepthook = hook

    def restore() -> None:
        if threading.excepthook is hook:
            threading.excepthook = previous

    return restore


@dataclass
class Preview:
    """One validation image, its ground truth and the model's prediction, side by side, at
    most ``side`` pixels a panel: the picture TensorBoard shows at each validation."""

    image_path: Path
    resolution: int
    threshold: float = 0.5
    side: int = 256
    _image: np.ndarray = field(init=False, repr=False)
    _shown: np.ndarray = field(init=False, repr=False)
    _truth: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        import cv2

        self._image = read_gray(self.image_path)
        height, width = self._image.shape
        scale = min(1.0, self.side / max(height, width))
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        self._shown = cv2.resize(self._image, size[::-1], interpolation=cv2.INTER_AREA)
        self._truth = rasterize(read_annotation(label_path(self.image_path)), size).astype(bool)

    def render(self, model: torch.nn.Module) -> np.ndarray:
        """``(H, 3W, 3)`` uint8 RGB: image, truth, prediction. The model is run in ``eval``
        mode without gradients, with the random state forked, and handed back as it was."""
        import cv2

        small = cv2.resize(
            self._image, (self.resolution, self.resolution), interpolation=cv2.INTER_AREA
        )
        device = next(model.parameters()).device
        devices: Sequence[torch.device] = [device] if device.type == "cuda" else []
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=devices):
                logits = model(to_input(small)[None].to(device))[0].float()
        finally:
            model.train(was_training)
        predicted = logits_to_masks(logits, self._shown.shape, self.threshold).cpu().numpy()
        grey = np.repeat(self._shown[:, :, None], 3, axis=2)
        return np.concatenate(
            [grey, overlay(self._shown, self._truth), overlay(self._shown, predicted)], axis=1
        )
