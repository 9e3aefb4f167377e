"""Throughput figures that compare: when a figure was taken under contention (the one rule),
and which of a record's figures a table shows.

A record may hold three training figures, and two inference figures:

- ``cost.quiet``: a quiet pass's (``harness cost``): the entry's model timed on a synthetic
  batch with nothing else running, on a machine of the record's kind;
- ``cost.train_window`` (``harness.engine.throughput``): the run's own timed window, the median
  of its timed training steps after warm-up, with the machine's load at the window;
- ``cost.train_images_per_s``: the whole run's images over the time spent in training steps
  (older records hold only this, and nothing about the load);
- ``cost.inference_images_per_s`` with ``cost.inference_window`` (the load then), as the run
  measured it at its end.

A figure is *comparable* when it is a timed window taken without contention. A table shows,
for each record, the first comparable one of quiet pass, then run window; when neither is, the
first it has, marked: ``ᶜ`` taken under contention, ``ʷ`` a whole run's wall time (an older
record: the load was not recorded). A row's figure is the mean of its records' comparable
figures (the others are then left out), else of all of them, marked. Marked figures are not a
model's speed: the page leaves them out of its range filters and sorts them last.

The rule (``contention``), from what a window recorded: a figure is contended when

- several runs of the command trained at once (``concurrent_runs`` > 1) on a CPU, which shares
  its cores, caches and memory bandwidth between them;
- the machine's 1-minute load average (``load[0]``) was above its logical CPUs (``cpus``):
  more runnable threads than CPUs, the run's own included;
- other processes used more of the CPUs during the window (``others_cpu``, in CPUs: the
  machine's busy time less this process's, where Linux's ``/proc/stat`` says it) than the run's
  threads left free (``cpus - threads``), by more than ``SLACK`` (a CPU run only).

The load average trails by about a minute; ``others_cpu`` is the window's own, and what a quiet
pass checks before it measures (``harness.engine.cost``). A quiet pass timed by the process's
CPU time (``clock: cpu``, one thread) is not judged by the rule: the waits for a CPU that the
rule is about are not in it (shared caches and memory bandwidth still are).

Device-hours are not touched by any of this: they are wall time, what a run cost, contended
or not.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.results.records import Record, hardware_kind

#: A quiet pass's figure, a run's own timed window: both comparable.
QUIET = "quiet"
RUN = "run"
#: Taken under contention (the rule above), a whole run's wall time: neither comparable.
CONTENDED = "contended"
WHOLE_RUN = "whole run"
#: The cell's mark of each figure that is not comparable.
MARKS = {CONTENDED: "ᶜ", WHOLE_RUN: "ʷ"}
#: CPUs of other processes' use tolerated beyond the CPUs a run leaves free (kernel threads,
#: a shell, the sampling itself).
SLACK = 0.25


def contention(window: Mapping[str, Any]) -> str | None:
    """Why the figure of ``window`` (a record's ``train_window``, ``inference_window`` or
    ``quiet``: ``load``, ``cpus``, ``threads``, ``concurrent_runs``, ``others_cpu``,
    ``device_type``) was taken under contention, in a phrase; None when it was not (or
    nothing says so)."""
    if window.get("clock") == "cpu":
        return None  # one thread's CPU time: the waits the rule is about are not in it
    on_cpu = window.get("device_type", "cpu") == "cpu"
    runs, cpus = window.get("concurrent_runs"), window.get("cpus")
    if on_cpu and isinstance(runs, int) and runs > 1:
        return f"{runs} runs of one command at once on a CPU"
    load = window.get("load")
    if load and cpus and load[0] > cpus:
        return f"load average {load[0]:.2f} above the machine's {cpus} CPUs"
    others, threads = window.get("others_cpu"), window.get("threads") or 1
    if on_cpu and others is not None and cpus and others + threads > cpus + SLACK:
        return (
            f"other processes used {others:.2f} of {cpus} CPUs beside the run's "
            f"{threads} thread{'s' if threads > 1 else ''}"
        )
    return None


@dataclass(frozen=True)
class Figure:
    """A throughput (images/s), what kind of figure it is (``QUIET``, ``RUN``, ...), its timed
    window's steps (warm-up, timed; None for a whole run's) and, a quiet pass's, the machine
    and the day it was measured on, and the clock that timed it (``wall``, ``cpu``)."""

    value: float
    kind: str
    steps: tuple[int, int] | None = None
    quiet: tuple[str, str, str] | None = None

    @property
    def comparable(self) -> bool:
        return self.kind in (QUIET, RUN)

    @property
    def mark(self) -> str:
        return MARKS.get(self.kind, "")


def quiet_of(record: Record) -> Mapping[str, Any] | None:
    """The record's quiet pass when it is this record's: measured on the record's kind of
    machine (``hardware_kind``), or the record names none (an older one, taken as this
    machine's kind on purpose: ``harness cost --unrecorded``)."""
    quiet = record.cost.get("quiet")
    if not isinstance(quiet, Mapping):
        return None
    kind = hardware_kind(record.hardware)
    return quiet if not kind or quiet.get("machine") == kind else None


def train_figure(record: Record) -> Figure | None:
    """The training throughput a table shows for ``record`` (module docstring)."""
    quiet = quiet_of(record) or {}
    window = record.cost.get("train_window") or {}
    found = [
        _windowed(quiet.get("train_images_per_s"), quiet, QUIET, "train_"),
        _windowed(window.get("images_per_s"), window, RUN),
        _figure(record.cost.get("train_images_per_s"), WHOLE_RUN),
    ]
    return _first(found)


def inference_figure(record: Record) -> Figure | None:
    """The inference throughput a table shows for ``record``: the quiet pass's, else the
    run's (always a timed window; marked only where its load shows contention)."""
    quiet = quiet_of(record) or {}
    window = record.cost.get("inference_window") or {}
    found = [
        _windowed(quiet.get("inference_images_per_s"), quiet, QUIET, "inference_"),
        _windowed(record.cost.get("inference_images_per_s"), window, RUN),
    ]
    return _first(found)


def used(figures: Iterable[Figure | None]) -> list[Figure]:
    """The figures of a row's records that its figure is the mean of: the comparable ones,
    else all."""
    found = [f for f in figures if f is not None]
    good = [f for f in found if f.comparable]
    return good or found


def row_figure(figures: Iterable[Figure | None]) -> Figure | None:
    """A row's figure from its records' (``used``): a quiet figure when every one used is,
    a run's when they are comparable, else marked ``CONTENDED`` if any is, else
    ``WHOLE_RUN``."""
    chosen = used(figures)
    if not chosen:
        return None
    kinds = {f.kind for f in chosen}
    if all(f.comparable for f in chosen):
        kind = QUIET if kinds == {QUIET} else RUN
    else:
        kind = CONTENDED if CONTENDED in kinds else WHOLE_RUN
    return Figure(statistics.fmean(f.value for f in chosen), kind)


def _windowed(value: Any, window: Mapping[str, Any], kind: str, prefix: str = "") -> Figure | None:
    """A timed window's figure: its steps (``<prefix>warmup``, ``<prefix>timed``), a quiet
    pass's machine and day, marked contended by the rule."""
    figure = _figure(value, CONTENDED if contention(window) else kind)
    if figure is None:
        return None
    warmup, timed = window.get(f"{prefix}warmup"), window.get(f"{prefix}timed")
    steps = (warmup, timed) if isinstance(warmup, int) and isinstance(timed, int) else None
    quiet = None
    if kind == QUIET:
        day = str(window.get("measured_at") or "")[:10]
        quiet = (str(window.get("machine", "")), day, str(window.get("clock") or "wall"))
    return Figure(figure.value, figure.kind, steps, quiet)


def _figure(value: Any, kind: str) -> Figure | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return None
    return Figure(float(value), kind)


def _first(found: Iterable[Figure | None]) -> Figure | None:
    """The first comparable figure, else the first there is."""
    present = [f for f in found if f is not None]
    return next((f for f in present if f.comparable), present[0] if present else None)
