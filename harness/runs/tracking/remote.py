"""What MLflow and W&B share: a run at a tracking service, fed from the trainer's calls.

The service is called on a thread of its own (``Sender``), in order, so a slow server never
slows a training step. A tracker that fails (the server gone, a refused request) never fails
or stops the run: its first error stops that tracker, the run says so in one line and goes on,
and the record is written as it would have been.

What the trainer reports for an epoch reaches the service before the epoch's checkpoint is
written (``epoch_done`` waits for it, at most ``EPOCH_WAIT_S``): a run killed after a
checkpoint has every step up to it at the tracker, and its resume sends only what comes after.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from harness.engine.events import NullObserver
from harness.runs.tracking.about import RunAbout, epoch_scalars, final_files
from harness.runs.tracking.preview import Preview

__all__ = ["EPOCH_WAIT_S", "FINISH_WAIT_S", "RemoteLog", "Scalar", "Sender"]

#: How long the end of an epoch waits for its metrics to reach the service (then goes on).
EPOCH_WAIT_S = 30.0
#: How long the end of a run waits for the rest: its files and its status.
FINISH_WAIT_S = 120.0

#: One metric value: (key, value, step).
Scalar = tuple[str, float, int]


class Sender:
    """Calls made in order on a thread of its own. The first call that raises stops it: its
    reason is kept in ``error`` and the later calls are dropped."""

    def __init__(self, name: str) -> None:
        self.error: str | None = None
        #: (call, its arguments, whether it runs even after an error: the waits' events).
        self._queue: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...], bool] | None] = (
            queue.Queue()
        )
        self._thread = threading.Thread(target=self._work, name=f"harness-{name}", daemon=True)
        self._thread.start()

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        if self.error is None:
            self._queue.put((fn, args, False))

    def wait(self, timeout: float) -> bool:
        """Whether every call made so far has been done (or dropped) within ``timeout`` s."""
        done = threading.Event()
        self._queue.put((done.set, (), True))
        return done.wait(timeout)

    def close(self, timeout: float) -> bool:
        """The calls made so far done, then the thread ended; False if that takes longer."""
        self._queue.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            fn, args, always = item
            if self.error is not None and not always:
                continue  # stopped: only the waits still answer
            try:
                fn(*args)
            except Exception as exc:  # noqa: BLE001 - a tracker never fails the run: kept, said once
                self.error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"


class RemoteLog(NullObserver):
    """A run at a tracking service (``MLflowLog``, ``WandbLog``): the loss at every step (sent
    every ``FLUSH_S`` s and at each epoch's end), the epoch's scalars (``epoch_scalars``), the
    preview at each validation, and at the end the run's files and status (``finish``).

    ``resumed`` is the state of the checkpoint the run continues (None: a fresh start).
    ``say`` gets the one line that says the tracker stopped. Subclasses implement the service's
    side, all called on the sender's thread: ``_open``, ``_log``, ``_image`` and ``_end``.
    """

    #: The tracker's name, as ``--track`` spells it.
    name: ClassVar[str]
    #: Step losses are sent at least this often (seconds), and at each epoch's end.
    FLUSH_S: ClassVar[float] = 2.0

    @classmethod
    def open(
        cls,
        folder: Path,
        about: RunAbout,
        *,
        resumed: Mapping[str, Any] | None,
        preview: Preview | None = None,
        say: Callable[[str], None] = print,
    ) -> RemoteLog:
        """The seed in ``folder`` tracked at the service (``harness.runs.tracking.TrackerLog``)."""
        return cls(folder, about, resumed=resumed, preview=preview, say=say)

    def __init__(
        self,
        folder: Path,
        about: RunAbout,
        *,
        resumed: Mapping[str, Any] | None,
        preview: Preview | None = None,
        say: Callable[[str], None] = print,
    ) -> None:
        self.folder, self.about, self.preview, self.say = Path(folder), about, preview, say
        self._pending: list[Scalar] = []
        self._sent_at = time.monotonic()
        self._said = False
        self._finished = False
        self.sender = Sender(self.name)
        self.sender.call(self._open, None if resumed is None else int(resumed["step"]))

    # -- the trainer's calls (this thread) -------------------------------------------------

    def step_done(self, step: int, epoch: int, epochs: int, loss: float) -> None:
        self._pending.append(("train/loss", float(loss), int(step)))
        if time.monotonic() - self._sent_at >= self.FLUSH_S:
            self._send()

    def validated(self, epoch: int, step: int, model: torch.nn.Module) -> None:
        if self.preview is None or self.sender.error is not None:
            return
        self._send()  # the steps before the picture's: a service may want steps in order
        try:
            picture = self.preview.at(step, model)
        except Exception as exc:  # noqa: BLE001 - a picture is never worth the run
            self.sender.error = f"the preview failed: {type(exc).__name__}: {exc}"[:200]
        else:
            self.sender.call(self._image, "val/prediction", picture, int(step))
        self._check()

    def epoch_done(self, metrics: Mapping[str, Any]) -> None:
        step = int(metrics["step"])
        self._pending.extend((key, value, step) for key, value in epoch_scalars(metrics))
        self._send()
        self.sender.wait(EPOCH_WAIT_S)  # at the service before the checkpoint, when it can be
        self._check()

    def finish(self, status: str) -> None:
        """The run ended (``succeeded``, ``failed`` or ``stopped``), its record written: the
        rest sent, a succeeded run's files (``final_files``), the run's status; once."""
        if self._finished:
            return
        self._finished = True
        self._send()
        files = final_files(self.folder, self.about) if status == "succeeded" else {}
        self.sender.call(self._end, status, files)
        if not self.sender.close(FINISH_WAIT_S) and self.sender.error is None:
            self.sender.error = f"no answer within {FINISH_WAIT_S:.0f} s"
        self._check()

    def _send(self) -> None:
        if self._pending:
            self.sender.call(self._log, self._pending)
            self._pending = []
        self._sent_at = time.monotonic()
        self._check()

    def _check(self) -> None:
        """Say once that the tracker stopped, from this thread (the sender's only notes it)."""
        if self.sender.error is not None and not self._said:
            self._said = True
            self.say(
                f"{self.about.unit}: {self.name} tracking stopped ({self.sender.error}); "
                "the run goes on and its record is unaffected"
            )

    # -- the service's side (the sender's thread) ------------------------------------------

    def _open(self, resumed_step: int | None) -> None:
        """Start the run, or continue the one ``tracking.json`` names after a resume."""
        raise NotImplementedError

    def _log(self, scalars: Sequence[Scalar]) -> None:
        raise NotImplementedError

    def _image(self, key: str, picture: np.ndarray, step: int) -> None:
        raise NotImplementedError

    def _end(self, status: str, files: Mapping[str, Path]) -> None:
        """Keep ``files`` (name there -> file here) and end the run with ``status``."""
        raise NotImplementedError
