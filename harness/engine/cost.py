"""A quiet pass (``harness cost RUN_DIR|TABLE``): the training and inference throughput of
recorded entries, re-measured on a machine with nothing else running.

A run's own figures are taken while it trains, on a machine other jobs may be loading; a
quiet pass takes them again in seconds per entry, under the same rules: the entry's model,
loss, optimizer and scheduler built from the record (its benchmark's protocol, the registry's
plugins; the encoder from no weights, since values do not change a step's time), on a
synthetic batch of the protocol's batch size and resolution, on the run's kind of device, in
its precision, with its micro-batch and its CPU threads; ``TRAIN_WARMUP`` training steps
(forward, backward, optimizer step) untimed, then the median of ``TRAIN_TIMED`` timed ones
(``harness.engine.throughput``), then the inference figure as every run measures it
(``harness.engine.inference_cost``). Nothing is trained beyond those steps.

The machine must be quiet: before each entry the CPU time other processes use is sampled,
and after it the measurement's own conditions are judged (``harness.results.speed.contention``);
a busy machine is refused in one line, waited for (``wait_s``), or measured anyway and
marked (``anyway``). On a CPU machine that other jobs keep busy, ``clock="cpu"`` times each step
by the process's CPU time instead, with the run's one thread: what the steps cost without the
waits for a CPU (shared caches and memory still weigh on it), recorded as such.

The figures go into each record of the entry as ``cost.quiet`` (what, when, on what machine,
under what load, by which clock), which the tables prefer. A record made on another
kind of machine than this one is left untouched (a figure from here is not its speed); one
that names no machine (an older record) only when asked (``unrecorded``).

A ``TABLE`` (a leaderboard file or a benchmark id) measures each of its rows' entries once (once
per thread count and precision among its records) and writes the figures into every record of
that row that this machine's kind matches; a ``RUN_DIR`` its one record.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from harness import protocol as protocols
from harness.atomic import atomic_write_text
from harness.classes import NUM_CLASSES
from harness.components.contracts import build_components
from harness.components.entry import Entry
from harness.components.registry import Registry
from harness.engine import hardware, inference_cost, throughput
from harness.engine.build import Recipe, make_train_step
from harness.engine.device import Placement, Precision, device_name, memory_format, seed_everything
from harness.errors import HarnessError, visible
from harness.locking import Lock
from harness.results import schema, speed
from harness.results.records import (
    RECORD_NAME,
    Record,
    code_revision,
    hardware_kind,
    inspect_record,
    read_json,
    scan_records,
)
from harness.results.rows import rows

#: Training steps of a quiet pass left untimed, then timed (the median is the figure).
TRAIN_WARMUP = 3
TRAIN_TIMED = 10
#: What may time a step: wall time, or the process's CPU time (``CostRequest.clock``).
CLOCKS: dict[str, throughput.Clock] = {"wall": time.perf_counter, "cpu": time.process_time}
#: Seconds the CPU use of other processes is sampled over before each entry, and between
#: two looks while waiting for a quiet machine.
SAMPLE_S = 1.0
WAIT_STEP_S = 5.0

Say = Callable[[str], None]


@dataclass(frozen=True)
class CostRequest:
    """What ``harness cost`` was asked: a run folder or a table (a leaderboard file or a
    benchmark id, its records under ``runs_dir``), the plugins its entries need, how long to
    wait for a quiet machine before each entry, whether to measure on a busy one anyway (the
    figures marked), and whether records that name no machine are taken as this machine's."""

    target: str
    runs_dir: Path = Path("runs")
    plugins: tuple[str, ...] = ()
    wait_s: float = 0.0
    anyway: bool = False
    unrecorded: bool = False
    #: What times a step: ``wall`` (perf_counter), or ``cpu`` (the process's CPU time: one
    #: thread on a CPU only).
    clock: str = "wall"


@dataclass(frozen=True)
class Measured:
    """One entry's pass: its label, the records it was written into, and its figures."""

    entry: str
    records: tuple[Path, ...]
    quiet: dict[str, Any]

    @property
    def contended(self) -> str | None:
        return speed.contention(self.quiet)


@dataclass
class CostReport:
    """What a pass did: the entries measured, and the records left as they were (and why)."""

    measured: list[Measured] = field(default_factory=list)
    untouched: list[tuple[Path, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Group:
    """Records of one entry that one measurement serves: same device, threads, precision,
    micro-batch."""

    entry: Entry
    device: torch.device
    threads: int
    records: tuple[tuple[Path, Record], ...]


def quiet_pass(request: CostRequest, say: Say = lambda _: None) -> CostReport:
    """Re-measure the throughput of ``request.target``'s entries here and write each figure
    into the records it serves (``cost.quiet``); ``say`` hears a line per entry. One line
    (``HarnessError``) for a target that is no run and no table with records, a record this
    machine cannot measure (a run folder), or a busy machine (unless ``anyway``)."""
    if request.clock not in CLOCKS:
        raise HarnessError(f"--clock {visible(request.clock)}: choose {' or '.join(CLOCKS)}")
    report = CostReport()
    registry = Registry.load(request.plugins)
    groups = _groups(_targets(request), request, report)
    for group in groups:
        block = _measured_quietly(group, registry, request, say, report)
        written = tuple(p for p, _ in group.records if _write(p, block, report))
        measured = Measured(group.entry.label, written, block)
        report.measured.append(measured)
        say(_line(measured))
    return report


# -- what to measure ------------------------------------------------------------------------


def _targets(request: CostRequest) -> list[tuple[str, list[tuple[Path, Record]]]]:
    """The entries to measure, each with its records: a run folder's one, or a table's rows."""
    target = Path(request.target)
    if target.is_dir():
        return [_run_folder(target)]
    return _table(request.target, Path(request.runs_dir))


def _run_folder(folder: Path) -> tuple[str, list[tuple[Path, Record]]]:
    path = folder / RECORD_NAME
    if not path.is_file():
        raise HarnessError(
            f"{visible(folder)}: not a run folder (no {RECORD_NAME}); pass a run's folder "
            "(runs/<benchmark>/<entry>/seed-N) or a table (a leaderboard file or benchmark id)"
        )
    found = inspect_record(path)
    if isinstance(found, str):
        raise HarnessError(f"{visible(path)}: {found}")
    if found.status != "succeeded":
        raise HarnessError(
            f"{visible(path)}: the run's status is {found.status!r}; only a succeeded run's "
            "entry is measured (its table shows no cost otherwise)"
        )
    return Entry.from_dict(found.entry).label, [(path, found)]


def _table(target: str, runs_dir: Path) -> list[tuple[str, list[tuple[Path, Record]]]]:
    """Each row of the table's benchmark, as its records under ``runs_dir`` make it."""
    benchmark = re.sub(r"\.(md|json|html)$", "", Path(target).name)
    if not runs_dir.is_dir():
        raise HarnessError(f"--runs-dir {visible(runs_dir)}: not a folder of run records")
    found, _ = scan_records(runs_dir)
    mine = [(p, r) for p, r in found if r.benchmark.get("id") == benchmark]
    paths = {id(r): p for p, r in mine}
    table_rows = rows([r for _, r in mine], benchmark)
    if not table_rows:
        raise HarnessError(
            f"{visible(target)}: no succeeded records of benchmark {visible(benchmark)} under "
            f"{visible(runs_dir)}; pass the folder of its records with --runs-dir (the published "
            "tables': leaderboards/records)"
        )
    return [(row.entry.label, [(paths[id(r)], r) for r in row.records]) for row in table_rows]


def _groups(
    targets: Sequence[tuple[str, list[tuple[Path, Record]]]],
    request: CostRequest,
    report: CostReport,
) -> list[_Group]:
    """Each entry's records that this machine may measure, grouped by what one measurement
    serves; the others named in ``report`` (a run folder's, one line)."""
    here = _kinds_here()
    groups: list[_Group] = []
    for _, records in targets:
        served: dict[tuple[Any, ...], list[tuple[Path, Record]]] = defaultdict(list)
        for path, record in records:
            device, why = _where(record, here, request.unrecorded)
            if device is not None and request.clock == "cpu":
                device, why = _on_one_thread(device, record)
            if device is None:
                report.untouched.append((path, why))
                continue
            key = (device.type, _threads(record), record.cost.get("precision"), _micro(record))
            served[key].append((path, record))
        for (kind, threads, *_), found in served.items():
            entry = Entry.from_dict(found[0][1].entry)
            groups.append(_Group(entry, torch.device(kind), threads, tuple(found)))
    if Path(request.target).is_dir() and report.untouched:
        path, why = report.untouched[0]
        raise HarnessError(f"{visible(path)}: {why}")
    return groups


def _kinds_here() -> dict[str, str]:
    """This machine's kind (``hardware_kind``) on each device it has: ``cpu``, ``cuda``."""
    kinds = {"cpu": hardware_kind(hardware.describe(torch.device("cpu")))}
    if torch.cuda.is_available():
        kinds["cuda"] = hardware_kind(hardware.describe(torch.device("cuda")))
    return kinds


def _where(
    record: Record, here: dict[str, str], unrecorded: bool
) -> tuple[torch.device | None, str]:
    """The device this machine measures ``record`` on, or None and why not."""
    processes = record.cost.get("processes") or 1
    if processes > 1:
        return None, f"trained on {processes} processes; a one-process pass is not its speed"
    if record.cost.get("compile"):
        return None, "trained through torch.compile; a quiet pass times the plain step"
    on_gpu = bool(record.hardware.get("gpus")) or not _on_cpu(record)
    device = "cuda" if on_gpu else "cpu"
    if device not in here:
        return None, "trained on a GPU; this machine has none"
    kind = hardware_kind(record.hardware)
    if not kind and not unrecorded:
        return None, (
            "names no machine (a record from before hardware was recorded); --unrecorded "
            f"takes such records as made on this machine's kind ({here[device]})"
        )
    if kind and kind != here[device]:
        return None, f"ran on {kind}; this machine is {here[device]}"
    return torch.device(device), ""


def _on_one_thread(device: torch.device, record: Record) -> tuple[torch.device | None, str]:
    """``--clock cpu`` times a step by the process's CPU time: a figure only for one thread
    on a CPU (on a GPU the work is not the process's; several threads' time is summed)."""
    if device.type != "cpu":
        return None, "trained on a GPU; --clock cpu times a CPU's work only"
    threads = _threads(record)
    if threads != 1:
        return None, f"trained with {threads} threads; --clock cpu times one thread's work"
    return device, ""


def _on_cpu(record: Record) -> bool:
    return str(record.cost.get("device", "cpu")).startswith("cpu")


def _threads(record: Record) -> int:
    """The CPU threads the run trained with (its hardware, else its device's name)."""
    threads = record.hardware.get("cpu", {}).get("threads")
    if isinstance(threads, int) and threads > 0:
        return threads
    named = re.match(r"cpu \((\d+) threads?\)", str(record.cost.get("device", "")))
    return int(named.group(1)) if named else torch.get_num_threads()


def _micro(record: Record) -> int | None:
    micro = record.cost.get("micro_batch")
    return micro if isinstance(micro, int) and micro > 0 else None


# -- measuring --------------------------------------------------------------------------------


def _measured_quietly(
    group: _Group, registry: Registry, request: CostRequest, say: Say, report: CostReport
) -> dict[str, Any]:
    """The group's figures taken on a quiet machine: waited for up to ``wait_s`` (a busy one
    before, or contention during, the measurement); else refused, or (``anyway``) kept and
    marked."""
    deadline = time.monotonic() + request.wait_s
    said = False
    clock = request.clock
    while True:
        why = None if clock == "cpu" else _busy(group)  # waits are not in a CPU-time figure
        if why is None or request.anyway:
            block = measure(group.records[0][1], group.device, group.threads, registry, clock)
            why = speed.contention(block)
            if why is None or request.anyway:
                return block
        if time.monotonic() >= deadline:
            raise HarnessError(_refusal(why, report))
        if not said:
            say(f"waiting for a quiet machine: {why}")
            said = True
        time.sleep(WAIT_STEP_S)


def _busy(group: _Group) -> str | None:
    """Why the machine is too busy now to measure the group (others' CPU use over
    ``SAMPLE_S`` beside the group's threads, the load average), or None."""
    since = throughput.CpuSample.now()
    time.sleep(SAMPLE_S)
    now = throughput.conditions(group.device, 1, since)
    return speed.contention({**now, "threads": group.threads})


def _refusal(why: str, report: CostReport) -> str:
    done = sum(len(m.records) for m in report.measured)
    before = f"; {done} record(s) were updated before it" if done else ""
    return (
        f"the machine is busy ({why}): a quiet pass needs it to itself; run it when it is "
        "quiet, wait for that with --wait SECONDS, time one thread's CPU time with --clock cpu, "
        f"or measure anyway with --anyway (the figures are then marked ᶜ){before}"
    )


def measure(
    record: Record, device: torch.device, threads: int, registry: Registry, clock: str = "wall"
) -> dict[str, Any]:
    """The quiet block of ``record``'s entry measured here now (module docstring): train and
    inference images/s, their steps, GFLOPs, the conditions, the machine, device, precision,
    and the ``clock`` that timed them (``CLOCKS``)."""
    proto = _protocol(record)
    entry = Entry.from_dict(record.entry)
    recipe = Recipe(entry.protocol_for(proto), entry, registry)
    with _torch_threads(threads):
        seed_everything(0)
        model, loss_fn, optimizer, scheduler, _ = build_components(
            recipe.protocol, entry, registry, TRAIN_WARMUP + TRAIN_TIMED
        )
        model = model.to(device=device, memory_format=memory_format(proto))
        precision = Precision.resolve(proto, device, record.cost.get("precision") or "auto")
        step = make_train_step(
            model, loss_fn, optimizer, scheduler, recipe, device, _micro(record), precision
        )
        since = throughput.CpuSample.now()
        train = _train_window(step, proto, device, CLOCKS[clock])
        placement = Placement.of(proto, device, precision)
        inference = inference_cost.measure(
            model, proto.in_channels, proto.resolution, placement, CLOCKS[clock]
        )
        return {
            "train_images_per_s": train["images_per_s"],
            "train_warmup": train["warmup"],
            "train_timed": train["timed"],
            **inference,
            **throughput.conditions(device, 1, since),
            "clock": clock,
            "machine": hardware_kind(hardware.describe(device)),
            "device": device_name(device),
            "precision": precision.name,
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "code_revision": code_revision(),
            "torch": torch.__version__,
        }


def _train_window(
    step: Any, proto: protocols.Protocol, device: torch.device, clock: throughput.Clock
) -> dict[str, Any]:
    """``TRAIN_WARMUP`` then ``TRAIN_TIMED`` training steps on a synthetic batch of the
    protocol's size (inputs from a normal distribution, random binary targets)."""
    generator = torch.Generator().manual_seed(0)
    size = (proto.batch_size, proto.in_channels, proto.resolution, proto.resolution)
    inputs = torch.randn(size, generator=generator)
    shape = (proto.batch_size, NUM_CLASSES, proto.resolution, proto.resolution)
    targets = (torch.rand(shape, generator=generator) > 0.5).float()
    window = throughput.StepWindow(device, 1, TRAIN_WARMUP, TRAIN_TIMED, clock)
    step.model.train()
    for _ in range(TRAIN_WARMUP + TRAIN_TIMED):
        with window.step(proto.batch_size):
            step(inputs, targets)
    result = window.result()
    assert result is not None
    return result


def _protocol(record: Record) -> protocols.Protocol:
    """The record's benchmark protocol, its encoder from no weights."""
    info = record.benchmark["protocol"]
    try:
        proto = protocols.from_mapping({**info["fields"], "name": info["name"]}, "the record")
    except HarnessError as exc:
        raise HarnessError(f"{exc} (benchmark.protocol.fields)") from None
    return replace(proto, encoder_weights="none")


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# -- writing ----------------------------------------------------------------------------------


def _write(path: Path, block: dict[str, Any], report: CostReport) -> bool:
    """``block`` as the record's ``cost.quiet``, written atomically under the run folder's
    lock (a run writing it now keeps it: said in ``report``); the rest of the record as it
    was."""
    lock = Lock(path.parent / ".lock")
    try:
        lock.acquire(timeout=0)
    except TimeoutError:
        report.untouched.append((path, "a run holds its folder now; measure it again later"))
        return False
    try:
        data = read_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("cost"), dict):
            report.untouched.append((path, "changed while it was measured; measure it again"))
            return False
        data["cost"]["quiet"] = block
        wrong = schema.problem(schema.Record, data)
        if wrong is not None:
            raise HarnessError(f"{visible(path)}: the quiet figures would not fit it ({wrong})")
        atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
        return True
    finally:
        lock.release()


def _line(measured: Measured) -> str:
    """What the user is told of one entry's pass."""
    q = measured.quiet
    infer = q.get("inference_images_per_s")
    figures = f"train {q['train_images_per_s']:.1f} img/s, infer " + (
        f"{infer:.1f} img/s" if infer else "—"
    )
    load = q.get("load") or [None]
    where = f"{q['device']}, {q.get('clock', 'wall')} clock, load {load[0]}"
    if q.get("others_cpu") is not None:
        where += f", others {q['others_cpu']} CPU"
    marked = f"; contended ({measured.contended}): marked ᶜ" if measured.contended else ""
    n = len(measured.records)
    return f"{measured.entry}: {figures} ({where}){marked}; {n} record{'s' * (n != 1)}"
