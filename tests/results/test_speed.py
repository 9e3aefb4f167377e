"""Throughput that compares (``harness.results.speed``): the contention rule, which of a
record's figures a table shows, and a row's figure from its records'."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from harness.results import speed
from harness.results.records import Record
from harness.results.speed import CONTENDED, QUIET, RUN, WHOLE_RUN, Figure
from tests.helpers import make_record

#: A window on a quiet 2-CPU machine: one run, one thread, nothing else running.
QUIET_WINDOW = {
    "load": [1.02, 0.9, 0.7],
    "cpus": 2,
    "threads": 1,
    "concurrent_runs": 1,
    "others_cpu": 0.05,
    "device_type": "cpu",
}
EPYC = {"cpu": {"model": "AMD EPYC", "threads": 1}}


def _window(**changes: Any) -> dict[str, Any]:
    return {**QUIET_WINDOW, **changes}


def test_a_quiet_window_is_not_contended() -> None:
    assert speed.contention(QUIET_WINDOW) is None
    assert speed.contention({}) is None  # nothing says so: not marked


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"concurrent_runs": 2}, "2 runs of one command at once on a CPU"),
        ({"load": [2.5, 2.0, 1.0]}, "load average 2.50 above the machine's 2 CPUs"),
        ({"others_cpu": 1.4}, "other processes used 1.40 of 2 CPUs beside the run's 1 thread"),
        ({"others_cpu": 0.5, "threads": 2}, "beside the run's 2 threads"),
    ],
)
def test_the_contention_rule(changes: dict[str, Any], said: str) -> None:
    why = speed.contention(_window(**changes))
    assert why is not None and said in why


def test_a_cpu_time_figure_is_not_judged_by_the_rule() -> None:
    """One thread's CPU time leaves out its waits for a CPU: what the rule is about."""
    busy = _window(load=[9.0, 9.0, 9.0], others_cpu=1.9)
    assert speed.contention(busy) is not None
    assert speed.contention({**busy, "clock": "cpu"}) is None


def test_on_a_gpu_only_the_load_counts() -> None:
    gpu = _window(device_type="cuda", concurrent_runs=4, others_cpu=1.9, threads=8)
    assert speed.contention(gpu) is None  # each run has its own GPU; the CPU is not the step
    assert speed.contention({**gpu, "load": [3.0, 1.0, 1.0]}) is not None


def test_others_within_the_slack_are_tolerated() -> None:
    # one thread of 2 CPUs leaves one free; another process using it (and a little) is fine
    assert speed.contention(_window(others_cpu=1.0 + speed.SLACK)) is None
    assert speed.contention(_window(others_cpu=1.0 + speed.SLACK + 0.01)) is not None


def _record(
    whole: float | None = 4.0,
    window: dict[str, Any] | None = None,
    quiet: dict[str, Any] | None = None,
    hardware: dict[str, Any] | None = None,
) -> Record:
    record = make_record("dice", 0, 0.8)
    record.cost["train_images_per_s"] = whole
    if window is not None:
        record.cost["train_window"] = window
    if quiet is not None:
        record.cost["quiet"] = quiet
    record.hardware = copy.deepcopy(hardware or {})
    return record


def _quiet(train: float, machine: str = "AMD EPYC", **changes: Any) -> dict[str, Any]:
    return {
        **QUIET_WINDOW,
        "train_images_per_s": train,
        "train_warmup": 3,
        "train_timed": 10,
        "inference_images_per_s": 30.0,
        "inference_warmup": 3,
        "inference_timed": 10,
        "machine": machine,
        "measured_at": "2026-12-06T18:00:00+00:00",
        **changes,
    }


def test_a_whole_runs_figure_is_marked() -> None:
    figure = speed.train_figure(_record())
    assert figure == Figure(4.0, WHOLE_RUN) and not figure.comparable and figure.mark == "ʷ"


def test_a_runs_window_is_preferred_to_its_whole_run() -> None:
    window = _window(images_per_s=7.0, warmup=5, timed=30)
    figure = speed.train_figure(_record(window=window))
    assert figure == Figure(7.0, RUN, steps=(5, 30)) and figure.mark == ""


def test_a_contended_window_is_marked_and_shown_before_a_whole_run() -> None:
    window = _window(images_per_s=2.0, warmup=5, timed=30, concurrent_runs=2)
    figure = speed.train_figure(_record(window=window))
    assert figure is not None and (figure.value, figure.kind, figure.mark) == (2.0, CONTENDED, "ᶜ")


def test_a_quiet_pass_is_preferred_on_the_records_machine() -> None:
    window = _window(images_per_s=2.0, warmup=5, timed=30, concurrent_runs=2)
    record = _record(window=window, quiet=_quiet(6.5), hardware=EPYC)
    figure = speed.train_figure(record)
    assert figure == Figure(6.5, QUIET, (3, 10), ("AMD EPYC", "2026-12-06", "wall"))
    assert speed.inference_figure(record) == Figure(30.0, QUIET, (3, 10), figure.quiet)


def test_a_quiet_pass_from_another_machine_is_not_the_records() -> None:
    record = _record(quiet=_quiet(6.5, machine="Intel(R) Xeon(R) Processor"), hardware=EPYC)
    assert speed.quiet_of(record) is None
    assert speed.train_figure(record) == Figure(4.0, WHOLE_RUN)


def test_a_record_naming_no_machine_takes_the_quiet_pass_it_was_given() -> None:
    record = _record(quiet=_quiet(6.5, machine="Intel(R) Xeon(R) Processor"))
    assert speed.train_figure(record) == Figure(
        6.5, QUIET, (3, 10), ("Intel(R) Xeon(R) Processor", "2026-12-06", "wall")
    )


def test_a_contended_quiet_pass_gives_way_to_a_comparable_window() -> None:
    window = _window(images_per_s=7.0, warmup=5, timed=30)
    quiet = _quiet(3.0, others_cpu=1.8)  # measured with --anyway on a busy machine
    assert speed.train_figure(_record(window=window, quiet=quiet, hardware=EPYC)).kind == RUN
    assert speed.train_figure(_record(quiet=quiet, hardware=EPYC)).kind == CONTENDED


def test_an_inference_figure_is_a_window_marked_only_where_its_load_says_so() -> None:
    record = _record()
    record.cost["inference_images_per_s"] = 40.0
    assert speed.inference_figure(record) == Figure(40.0, RUN)  # an older record: unmarked
    record.cost["inference_window"] = _window(load=[5.0, 5.0, 5.0])
    assert speed.inference_figure(record) == Figure(40.0, CONTENDED)


def test_a_rows_figure_is_the_mean_of_its_comparable_ones() -> None:
    figures = [Figure(6.0, QUIET), Figure(8.0, RUN), Figure(1.0, CONTENDED), None]
    assert speed.row_figure(figures) == Figure(7.0, RUN)
    assert speed.row_figure([Figure(6.0, QUIET), Figure(8.0, QUIET)]) == Figure(7.0, QUIET)
    assert speed.row_figure([Figure(1.0, CONTENDED), Figure(3.0, WHOLE_RUN)]) == Figure(
        2.0, CONTENDED
    )
    assert speed.row_figure([Figure(3.0, WHOLE_RUN)]) == Figure(3.0, WHOLE_RUN)
    assert speed.row_figure([None]) is None
