"""The timed window of training steps (``harness.engine.throughput``): warm-up untimed, the
median of the timed steps, the machine's state at the window's end, and a run's record."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from harness.engine import throughput
from harness.engine.throughput import CpuSample, StepWindow

CPU = torch.device("cpu")


class FakeClock:
    """A clock each timed step reads twice: its start, and its start plus its duration."""

    def __init__(self, durations: list[float]) -> None:
        self.reads: Iterator[float] = iter(
            t
            for start, d in zip(range(len(durations)), durations, strict=True)
            for t in (start, start + d)
        )
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return next(self.reads)


def _quiet_sample() -> CpuSample:
    return CpuSample(wall=0.0, busy=None, own=0.0)


def _window(durations: list[float], warmup: int) -> tuple[StepWindow, FakeClock]:
    clock = FakeClock(durations)
    window = StepWindow(CPU, 1, warmup, len(durations), clock=clock, sample=_quiet_sample)
    return window, clock


def test_warm_up_steps_are_not_timed_and_the_figure_is_the_median() -> None:
    window, clock = _window([1.0, 2.0, 0.5], warmup=2)
    for _ in range(8):  # 2 warm-up, 3 timed, 3 after the window
        with window.step(4):
            pass
    assert clock.calls == 6  # only the timed steps read the clock
    result = window.result()
    assert result is not None
    assert result["images_per_s"] == 4.0  # 4/1, 4/2, 4/0.5: the median
    assert (result["warmup"], result["timed"]) == (2, 3)
    assert {"load", "cpus", "threads", "concurrent_runs", "others_cpu", "device_type"} <= set(
        result
    )
    assert result["concurrent_runs"] == 1 and result["device_type"] == "cpu"


def test_the_conditions_are_taken_when_the_window_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    window, _ = _window([1.0], warmup=0)
    monkeypatch.setattr(throughput.os, "getloadavg", lambda: (0.5, 0.4, 0.3))
    with window.step(1):
        pass
    monkeypatch.setattr(throughput.os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    result = window.result()
    assert result is not None and result["load"] == [0.5, 0.4, 0.3]


def test_no_figure_before_a_step_is_timed() -> None:
    window, _ = _window([1.0], warmup=3)
    with window.step(4):
        pass
    assert window.result() is None


def test_a_short_session_warms_up_on_half_its_steps() -> None:
    assert (StepWindow.for_session(CPU, 1, 4).warmup, StepWindow.for_session(CPU, 1, 4).timed) == (
        2,
        2,
    )
    long = StepWindow.for_session(CPU, 3, 1000)
    assert (long.warmup, long.timed, long.concurrent_runs) == (
        throughput.WARMUP,
        throughput.TIMED,
        3,
    )
    assert StepWindow.for_session(CPU, 1, 0).timed == 0


def test_others_cpu_is_the_machines_busy_time_less_this_process(tmp_path: Path) -> None:
    start = CpuSample(wall=10.0, busy=100.0, own=5.0)
    end = CpuSample(wall=12.0, busy=103.0, own=6.0)  # 3 s busy in 2 s, 1 s of it ours
    assert end.others_since(start) == pytest.approx(1.0)
    assert CpuSample(12.0, None, 6.0).others_since(start) is None  # not Linux: unknown
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 50 1000 20 0 0 0 0 0\ncpu0 50 0 25 500 10 0 0 0 0 0\n")
    sample = CpuSample.now(stat)
    assert sample.busy == pytest.approx(150 / throughput.os.sysconf("SC_CLK_TCK"))
    stat.write_text("not a stat file")
    assert CpuSample.now(stat).busy is None


def test_a_runs_record_keeps_its_window(reference: dict) -> None:
    """tiny with 4 epochs of 8 one-image steps: 5 warm-up steps, then 27 timed."""
    cost = reference["cost"]
    window = cost["train_window"]
    assert (window["warmup"], window["timed"], window["concurrent_runs"]) == (5, 27, 1)
    assert window["images_per_s"] > 0 and window["cpus"] >= 1 and len(window["load"]) == 3
    assert cost["train_images_per_s"] > 0  # the whole run's figure is kept too
    assert set(cost["inference_window"]) >= {"load", "cpus", "threads", "others_cpu"}
