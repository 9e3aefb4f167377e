"""``--track tensorboard``: TensorBoard event files under ``RUN_DIR/tensorboard/``.

``tensorboard --logdir runs/`` shows each run under its folder's path: benchmark, entry and
seed. A resume continues the events: TensorBoard's own ``purge_step`` hides the events after
the checkpoint's step from every reader, and the events of each epoch are flushed before its
checkpoint is written. Events that cannot be written (a full disk) are one warning line,
and the run goes on untracked.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from harness.engine.events import NullObserver
from harness.runs.tracking.about import RunAbout, epoch_scalars
from harness.runs.tracking.metrics import Warned
from harness.runs.tracking.preview import Preview

__all__ = ["TENSORBOARD_DIR", "TensorBoardLog"]

#: The event files of ``--track tensorboard``, in each run folder.
TENSORBOARD_DIR = "tensorboard"


class TensorBoardLog(NullObserver):
    """Event files in ``folder``: the loss at every step read back, the epoch's loss, lr and
    throughput, the validation Dice (mean, and per class under ``val_dice/``), the texts at
    step 0, and the preview's prediction at each validation. Flushed at each epoch's end.

    A fresh start (``resumed_step`` None) removes the folder's earlier event files; a resume
    from the checkpoint after step S tells TensorBoard to drop the events after S (and writes
    the texts if the run was not tracked before).
    """

    @classmethod
    def open(
        cls,
        folder: Path,
        about: RunAbout,
        *,
        resumed: Mapping[str, Any] | None,
        preview: Preview | None = None,
        say: Callable[[str], None] | None = None,
    ) -> TensorBoardLog:
        """The seed in the run folder ``folder`` tracked under its ``TENSORBOARD_DIR``
        (``harness.runs.tracking.TrackerLog``)."""
        step = None if resumed is None else int(resumed["step"])
        where = Path(folder) / TENSORBOARD_DIR
        return cls(where, resumed_step=step, texts=about.texts, preview=preview, warn=say)

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
        self.warned = Warned("TensorBoard stops tracking this run", folder, warn)
        self._restore_hook = _quiet_writer_thread()
        if first:
            for title, text in (texts or {}).items():
                self.writer.add_text(title, text, 0)

    def step_done(self, step: int, epoch: int, epochs: int, loss: float) -> None:
        self._guarded(self.writer.add_scalar, "train/loss", loss, step)

    def validated(self, epoch: int, step: int, model: torch.nn.Module) -> None:
        if self.preview is not None and not self.warned.failed:
            picture = self.preview.at(step, model)
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
        step = int(metrics["step"])
        for key, value in epoch_scalars(metrics):
            self.writer.add_scalar(key, value, step)
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
