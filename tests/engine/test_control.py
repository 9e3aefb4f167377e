"""Stopping cleanly: the Ctrl-C handler and the ranks' agreement (``harness.engine.control``)."""

from __future__ import annotations

import os
import signal
import threading

import pytest
import torch

from harness.engine.control import Interrupted, StopAgreement, StopOnCtrlC
from harness.engine.distributed import World
from harness.errors import RunFailed


def _ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def test_first_ctrl_c_asks_for_a_stop_and_says_so() -> None:
    heard: list[str] = []
    with StopOnCtrlC(lambda: heard.append("stopping")) as stop:
        assert not stop.requested
        _ctrl_c()
        assert stop.requested
    assert heard == ["stopping"]


def test_second_ctrl_c_interrupts_at_once() -> None:
    with pytest.raises(KeyboardInterrupt), StopOnCtrlC() as stop:
        _ctrl_c()
        assert stop.requested
        _ctrl_c()
        pytest.fail("the second Ctrl-C did not interrupt")


def test_a_failing_message_does_not_prevent_the_stop() -> None:
    def broken() -> None:
        raise RuntimeError("the terminal is gone")

    with StopOnCtrlC(broken) as stop:
        _ctrl_c()
    assert stop.requested


def test_previous_handlers_are_restored_on_exit() -> None:
    def mine(signum: int, frame: object) -> None:
        pass

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, mine)
    try:
        with StopOnCtrlC(signals=(signal.SIGINT, signal.SIGTERM)) as stop:
            assert signal.getsignal(signal.SIGTERM) == stop._handle
            assert signal.getsignal(signal.SIGINT) == stop._handle
        assert signal.getsignal(signal.SIGTERM) is mine
        assert signal.getsignal(signal.SIGINT) is before[signal.SIGINT]
        with pytest.raises(KeyboardInterrupt), StopOnCtrlC():
            raise KeyboardInterrupt  # left on an error: restored too
        assert signal.getsignal(signal.SIGINT) is before[signal.SIGINT]
    finally:
        signal.signal(signal.SIGTERM, before[signal.SIGTERM])


def test_outside_the_main_thread_it_sets_no_handler() -> None:
    before = signal.getsignal(signal.SIGINT)
    seen: list[object] = []

    def body() -> None:
        with StopOnCtrlC():
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen == [before]


def test_interrupted_says_where_and_what_was_saved(tmp_path) -> None:
    exc = Interrupted(tmp_path / "last.pt", "epoch 2, batch 3 of 8")
    assert isinstance(exc, KeyboardInterrupt)
    assert exc.checkpoint == tmp_path / "last.pt" and exc.where == "epoch 2, batch 3 of 8"
    assert str(exc) == "stopped at epoch 2, batch 3 of 8"


@pytest.mark.parametrize("flag", [False, True])
def test_one_process_agrees_with_itself(flag: bool) -> None:
    agreement = StopAgreement(World(), torch.device("cpu"))
    assert agreement.agreed(flag) is flag
    assert agreement.stop_here(flag, None, step=3, epoch=1) is flag


def test_failing_together_names_the_rank_whose_loss_broke() -> None:
    agreement = StopAgreement(World(), torch.device("cpu"))
    agreement.fail_together(None, step=3, epoch=1)  # nothing broke: nothing happens
    with pytest.raises(RunFailed, match=r"loss became nan at step 3 on rank 0 \(epoch 1\)") as err:
        agreement.fail_together(float("nan"), step=3, epoch=1)
    assert not err.value.echoed  # the main rank (the only one) says it
