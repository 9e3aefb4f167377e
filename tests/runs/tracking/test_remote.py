"""What MLflow and W&B share (``harness.runs.tracking.remote``): the service is called in
order on a thread of its own; a resume opens the run at the checkpoint's step; an epoch's
scalars reach the service before ``epoch_done`` returns (before its checkpoint); a
succeeded run's files and its status are sent once at the end; a tracker that fails says so
once and never fails the run. Tested with made-up services, no network."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from harness.runs.tracking.about import TRACKED_RECORD, RunAbout
from harness.runs.tracking.remote import RemoteLog, Scalar, Sender
from tests.helpers import Recorder

ABOUT = RunAbout("seed 3", "bench", "unet · dice seed 3", "unet · dice")


class _Service(RemoteLog):
    """A service that keeps every call, slowly, and the thread each came on."""

    name = "notebook"

    def _open(self, resumed_step: int | None) -> None:
        self.calls: list[tuple] = [("open", resumed_step)]
        self.threads = {threading.current_thread().name}

    def _log(self, scalars: Sequence[Scalar]) -> None:
        time.sleep(0.05)  # a slow server: the trainer never waits for it mid-epoch
        self.calls.append(("log", list(scalars)))
        self.threads.add(threading.current_thread().name)

    def _image(self, key: str, picture: np.ndarray, step: int) -> None:
        self.calls.append(("image", key, picture.shape, step))

    def _end(self, status: str, files: Mapping[str, Path]) -> None:
        self.calls.append(("end", status, sorted(files)))


class _Picture:
    """A preview that draws a 2x6 picture."""

    def at(self, step: int, model: torch.nn.Module) -> np.ndarray:
        return np.zeros((2, 6, 3), np.uint8)


def test_a_run_reaches_the_service_in_order_off_the_training_thread(tmp_path: Path) -> None:
    (tmp_path / "record.json").write_text("{}")
    (tmp_path / "metrics.jsonl").write_text("")
    log = _Service(tmp_path, ABOUT, resumed={"step": 6}, preview=_Picture(), say=print)
    log.step_done(7, 2, 2, 0.5)
    log.step_done(8, 2, 2, 0.25)
    log.validated(2, 8, torch.nn.Identity())
    log.epoch_done({"epoch": 2, "step": 8, "loss": 0.4, "lr": 0.01, "val_mean_dice": 0.6})
    epoch_sent = list(log.calls)  # what the service had when epoch_done returned
    log.finish("succeeded")
    log.finish("succeeded")  # once
    assert log.threads == {"harness-notebook"}
    assert epoch_sent == log.calls[:-1]  # the epoch at the service before its checkpoint
    assert log.calls == [
        ("open", 6),  # a resume continues the run from the checkpoint's step
        ("log", [("train/loss", 0.5, 7), ("train/loss", 0.25, 8)]),  # before the picture
        ("image", "val/prediction", (2, 6, 3), 8),
        ("log", [("train/epoch", 2.0, 8), ("train/epoch_loss", 0.4, 8), ("train/lr", 0.01, 8),
                 ("val/mean_dice", 0.6, 8)]),
        ("end", "succeeded", [TRACKED_RECORD, "metrics.jsonl"]),
    ]  # fmt: skip


def test_a_run_that_did_not_succeed_sends_no_files(tmp_path: Path) -> None:
    (tmp_path / "record.json").write_text("{}")
    log = _Service(tmp_path, ABOUT, resumed=None)
    log.finish("failed")
    assert log.calls == [("open", None), ("end", "failed", [])]


def test_the_sender_keeps_order_and_drops_what_follows_an_error() -> None:
    sender = Sender("test")
    done: list[int] = []

    def call(n: int) -> None:
        if n == 3:
            raise ValueError("refused\n  by the server")
        done.append(n)

    for n in range(1, 6):
        sender.call(call, n)
    assert sender.wait(5)  # a wait is answered even after the error
    assert sender.close(5)
    assert done == [1, 2] and sender.error == "ValueError: refused by the server"


class _Flaky(RemoteLog):
    """A service that takes the run, then refuses everything after its first batch."""

    name = "flaky"

    def _open(self, resumed_step: int | None) -> None:
        self.got: list[Scalar] = []
        self.thread = threading.current_thread().name

    def _log(self, scalars: Sequence[Scalar]) -> None:
        if self.got:
            raise ConnectionError("server gone")
        self.got.extend(scalars)

    def _image(self, key: str, picture: np.ndarray, step: int) -> None:
        raise AssertionError("no preview was given")

    def _end(self, status: str, files: Mapping[str, Path]) -> None:
        raise AssertionError("never reached: the tracker stopped")


def test_a_failing_tracker_says_so_once_and_drops_the_rest(tmp_path: Path) -> None:
    said = Recorder()
    log = _Flaky(tmp_path, RunAbout("seed 3", "b", "r", "g"), resumed=None, say=said.message)
    metrics = {"epoch": 1, "step": 1, "loss": 0.5, "lr": 0.1}
    log.step_done(1, 1, 2, 0.5)
    log.epoch_done(metrics)  # sent, and waited for
    for step in (2, 3):
        log.step_done(step, 2, 2, 0.4)
    log.epoch_done({**metrics, "epoch": 2, "step": 3})  # refused
    log.epoch_done({**metrics, "epoch": 3, "step": 4})  # dropped
    log.finish("succeeded")
    log.finish("succeeded")
    assert log.thread == "harness-flaky"  # the service is called off the training thread
    assert [s[2] for s in log.got] == [1, 1, 1, 1]  # the first epoch's loss and scalars
    assert said.named("message") == [
        "seed 3: flaky tracking stopped (ConnectionError: server gone); the run goes on "
        "and its record is unaffected"
    ]
