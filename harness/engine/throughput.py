"""Training throughput measured as inference's is: a timed window after warm-up, the median.

A run's wall time over all its steps is not the model's speed: it moves with whatever else
the machine runs (the same UNet++ gave 1.2 to 8.1 images/s across the published records).
So each session of a run times a window of its training steps: the first ``warmup`` steps
are left untimed (allocations, cuDNN's and the allocator's first choices, the plugin checks),
the next ``timed`` are each timed around the step alone (forward, backward, optimizer and
scheduler step, the batch's copy to the device; synchronised on CUDA, inside the window
only), and the figure is the median of their images/s. Data loading, validation and
checkpoints are never inside a timed step. At the window's end the machine's state is kept
beside the figure (``conditions``): the load average, its CPUs, the run's threads, how many
runs of the command trained at once, and the CPU time other processes used during the window,
for ``harness.results.speed.contention`` to judge.

``harness cost`` (``harness.engine.cost``) times steps the same way, on a synthetic batch.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

#: Steps of a session left untimed before its window, and the steps timed.
WARMUP = 5
TIMED = 30
#: Where Linux counts every CPU's time (its first line: the machine's total, in ticks).
PROC_STAT = Path("/proc/stat")

Clock = Callable[[], float]


@dataclass(frozen=True)
class CpuSample:
    """The machine's busy CPU time and this process's, at one moment (seconds)."""

    wall: float
    busy: float | None
    own: float

    @classmethod
    def now(cls, stat: Path = PROC_STAT) -> CpuSample:
        times = os.times()
        return cls(time.monotonic(), _busy_seconds(stat), times.user + times.system)

    def others_since(self, start: CpuSample) -> float | None:
        """CPUs (on average) that other processes kept busy between ``start`` and this
        sample; None where the machine's busy time cannot be read (not Linux)."""
        if self.busy is None or start.busy is None or self.wall <= start.wall:
            return None
        others = (self.busy - start.busy) - (self.own - start.own)
        return max(0.0, others / (self.wall - start.wall))


def _busy_seconds(stat: Path) -> float | None:
    """Seconds every CPU of the machine spent busy since boot (``/proc/stat``: all but idle
    and I/O wait), or None."""
    try:
        first = stat.read_text(encoding="ascii").splitlines()[0].split()
        ticks = [int(x) for x in first[1:9]]
    except (OSError, ValueError, IndexError):
        return None
    if first[0] != "cpu" or len(ticks) < 5:
        return None
    busy = sum(ticks) - ticks[3] - ticks[4]  # idle, iowait
    return busy / os.sysconf("SC_CLK_TCK")


def conditions(
    device: torch.device, concurrent_runs: int | None, since: CpuSample | None = None
) -> dict[str, Any]:
    """The machine now, as a record keeps it beside a timed figure: ``load`` (1-, 5- and
    15-minute load averages), ``cpus`` (logical CPUs), ``threads`` (torch's), the command's
    ``concurrent_runs``, ``others_cpu`` (CPUs other processes used since ``since``) and the
    ``device_type``."""
    try:
        load: list[float] | None = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    others = CpuSample.now().others_since(since) if since is not None else None
    return {
        "load": load,
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "concurrent_runs": concurrent_runs,
        "others_cpu": None if others is None else round(others, 2),
        "device_type": device.type,
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StepWindow:
    """Times a session's training steps: ``warmup`` untimed, then ``timed`` timed, then none.

    ``step(images)`` wraps one step of ``images`` images; ``result()`` is the window's figure
    (None when no step was timed). ``clock`` is the timer (a fake one in tests), ``sample``
    what the CPU use is measured with.
    """

    def __init__(
        self,
        device: torch.device,
        concurrent_runs: int | None = 1,
        warmup: int = WARMUP,
        timed: int = TIMED,
        clock: Clock = time.perf_counter,
        sample: Callable[[], CpuSample] = CpuSample.now,
    ) -> None:
        self.device = device
        self.concurrent_runs = concurrent_runs
        self.warmup, self.timed = warmup, timed
        self.clock, self.sample = clock, sample
        self.steps = 0  # steps seen
        self.rates: list[float] = []  # images/s of each timed step
        self.started: CpuSample | None = None
        self.ended: dict[str, Any] | None = None  # the conditions when the window closed

    @classmethod
    def for_session(
        cls, device: torch.device, concurrent_runs: int | None, steps: int
    ) -> StepWindow:
        """The window of a session of ``steps`` steps: a short session (a test's protocol)
        warms up on at most half its steps and times the rest."""
        warmup = min(WARMUP, steps // 2)
        return cls(device, concurrent_runs, warmup, min(TIMED, max(0, steps - warmup)))

    @property
    def timing(self) -> bool:
        return self.warmup <= self.steps < self.warmup + self.timed

    @contextlib.contextmanager
    def step(self, images: int) -> Iterator[None]:
        """Times the step inside when it falls in the window."""
        if not self.timing:
            self.steps += 1
            yield
            return
        if self.started is None:
            self.started = self.sample()
        _sync(self.device)
        t0 = self.clock()
        yield
        _sync(self.device)
        seconds = self.clock() - t0
        self.steps += 1
        if seconds > 0:
            self.rates.append(images / seconds)
        if self.steps == self.warmup + self.timed:
            self.close()

    def close(self) -> None:
        """The window ends here (at its last timed step, or a short session's end)."""
        if self.ended is None and self.rates:
            self.ended = conditions(self.device, self.concurrent_runs, self.started)

    def result(self) -> dict[str, Any] | None:
        """``images_per_s`` (the median of the timed steps'), ``warmup``, ``timed`` (the steps
        timed) and the ``conditions`` at the window's end; None before any step was timed."""
        if not self.rates:
            return None
        self.close()
        assert self.ended is not None
        return {
            "images_per_s": statistics.median(self.rates),
            "warmup": self.warmup,
            "timed": len(self.rates),
            **self.ended,
        }
