"""A quiet pass (``harness.engine.cost``): a recorded entry re-measured on a synthetic batch,
its figures written into the records it serves (``cost.quiet``) and preferred by the table;
a busy machine refused, waited for, or measured anyway and marked; records of another kind of
machine left as they were."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from harness.engine import cost, hardware, throughput
from harness.engine.cost import CostRequest, quiet_pass
from harness.errors import HarnessError
from harness.results.leaderboard import regenerate
from harness.results.records import hardware_kind, read_record, scan_records
from harness.results.tables import twin_path

QUIET_LOAD = (0.1, 0.1, 0.1)
BUSY_LOAD = (999.0, 999.0, 999.0)  # above any machine's CPUs


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, plugin: Path) -> Path:
    """A runs folder holding one finished run of the small test model on ``tiny``."""
    from harness.engine.events import NullObserver
    from harness.runs.dispatch import execute
    from harness.runs.planning import plan
    from harness.runs.requests import RunRequest

    root = tmp_path_factory.mktemp("finished")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
        request = RunRequest.from_options(
            model="small-cnn",
            loss="dice",
            plugins=[str(plugin)],
            protocol="tiny",
            sets=["epochs=1"],
            device="cpu",
            runs_dir=root / "runs",
            leaderboards_dir=root / "boards",
        )
        execute(plan(request), NullObserver())
    return root / "runs"


@pytest.fixture
def runs(finished: Path, tmp_path: Path) -> Path:
    """A copy of the finished run's folder, this test's to change."""
    return Path(shutil.copytree(finished, tmp_path / "runs"))


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The machine as the pass sees it: its load average (``load``, changeable), no sampled
    CPU use of others (Linux's counters left out), no pause between looks."""
    state: dict[str, Any] = {"load": [QUIET_LOAD]}

    def load() -> tuple[float, float, float]:
        loads = state["load"]
        return loads.pop(0) if len(loads) > 1 else loads[0]

    monkeypatch.setattr(throughput.os, "getloadavg", load)
    monkeypatch.setattr(throughput, "_busy_seconds", lambda stat: None)
    monkeypatch.setattr(cost, "SAMPLE_S", 0.0)
    monkeypatch.setattr(cost, "WAIT_STEP_S", 0.0)
    yield state


def _record_path(runs: Path) -> Path:
    (path,) = runs.rglob("record.json")
    return path


def _request(target: Path | str, runs: Path, plugin: Path, **options: Any) -> CostRequest:
    return CostRequest(str(target), runs, (str(plugin),), **options)


def test_a_run_folders_entry_is_measured_and_written(
    runs: Path, plugin: Path, machine: dict[str, Any]
) -> None:
    path = _record_path(runs)
    before = json.loads(path.read_text())
    heard: list[str] = []
    report = quiet_pass(_request(path.parent, runs, plugin), say=heard.append)
    assert [m.records for m in report.measured] == [(path,)] and not report.untouched
    after = json.loads(path.read_text())
    quiet = after["cost"].pop("quiet")
    assert after == before  # the rest of the record as it was
    assert quiet["train_images_per_s"] > 0 and quiet["inference_images_per_s"] > 0
    assert (quiet["train_warmup"], quiet["train_timed"]) == (cost.TRAIN_WARMUP, cost.TRAIN_TIMED)
    assert quiet["machine"] == hardware_kind(before["hardware"])
    assert quiet["load"] == list(QUIET_LOAD) and quiet["concurrent_runs"] == 1
    assert quiet["threads"] == before["hardware"]["cpu"]["threads"]
    assert quiet["precision"] == "fp32" and quiet["measured_at"]
    assert read_record(path) is not None  # the schema takes it
    assert len(heard) == 1 and "small-cnn" in heard[0] and "1 record" in heard[0]


def test_the_table_prefers_the_quiet_figure(
    runs: Path, plugin: Path, machine: dict[str, Any]
) -> None:
    path = _record_path(runs)
    benchmark = read_record(path).benchmark_id
    quiet_pass(_request(benchmark, runs, plugin))
    table = regenerate(benchmark, runs, runs.parent / "boards")
    row = json.loads(twin_path(table).read_text())["rows"][0]
    quiet = json.loads(path.read_text())["cost"]["quiet"]
    assert row["train_images_per_s"] == quiet["train_images_per_s"]
    assert row["inference_images_per_s"] == quiet["inference_images_per_s"]
    assert (row["train_figure"], row["inference_figure"]) == ("quiet", "quiet")
    text = table.read_text()
    assert f"| {quiet['train_images_per_s']:.1f} |" in text
    assert "Where a quiet pass re-measured a row's entry" in text


def test_a_table_measures_each_row_once_and_leaves_other_machines_records(
    runs: Path, plugin: Path, machine: dict[str, Any]
) -> None:
    path = _record_path(runs)
    elsewhere = path.parent.with_name("seed-1") / "record.json"
    data = json.loads(path.read_text())
    data["seed"], data["hardware"]["cpu"]["model"] = 1, "Another CPU"
    elsewhere.parent.mkdir()
    elsewhere.write_text(json.dumps(data, indent=2) + "\n")
    unrecorded = path.parent.with_name("seed-2") / "record.json"
    data = {**data, "seed": 2, "hardware": {}}
    unrecorded.parent.mkdir()
    unrecorded.write_text(json.dumps(data, indent=2) + "\n")
    benchmark = read_record(path).benchmark_id
    report = quiet_pass(_request(runs / "boards" / f"{benchmark}.md", runs, plugin))
    assert [m.records for m in report.measured] == [(path,)]
    reasons = dict(report.untouched)
    here = hardware_kind(hardware.describe(torch.device("cpu")))
    assert reasons[elsewhere] == f"ran on Another CPU; this machine is {here}"
    assert "names no machine" in reasons[unrecorded] and "--unrecorded" in reasons[unrecorded]
    assert "quiet" not in json.loads(elsewhere.read_text())["cost"]
    # asked to, the pass takes a record naming no machine as this machine's kind
    report = quiet_pass(_request(benchmark, runs, plugin, unrecorded=True))
    assert sorted(report.measured[0].records) == sorted([path, unrecorded])


def test_a_busy_machine_is_refused_in_one_line(
    runs: Path, plugin: Path, machine: dict[str, Any]
) -> None:
    machine["load"] = [BUSY_LOAD]
    path = _record_path(runs)
    with pytest.raises(HarnessError, match="the machine is busy") as caught:
        quiet_pass(_request(path.parent, runs, plugin))
    assert "\n" not in str(caught.value) and "--wait SECONDS" in str(caught.value)
    assert "quiet" not in json.loads(path.read_text())["cost"]  # nothing written


def test_measured_anyway_the_figures_are_marked(
    runs: Path, plugin: Path, machine: dict[str, Any]
) -> None:
    machine["load"] = [BUSY_LOAD]
    path = _record_path(runs)
    report = quiet_pass(_request(path.parent, runs, plugin, anyway=True))
    assert report.measured[0].contended is not None

    def shown(window: dict[str, Any] | None) -> str:
        record = json.loads(path.read_text())
        record["cost"].pop("train_window")
        if window is not None:
            record["cost"]["train_window"] = window
        path.write_text(json.dumps(record, indent=2) + "\n")
        table = regenerate(read_record(path).benchmark_id, runs, runs.parent / "boards")
        assert table is not None
        return json.loads(twin_path(table).read_text())["rows"][0]["train_figure"]

    quiet = {"images_per_s": 5.0, "warmup": 5, "timed": 30, "load": [0.5, 0.5, 0.5], "cpus": 2}
    assert shown(quiet) == "run"  # a quiet window of the run's own: the pass gives way to it
    assert shown(None) == "contended"  # an older record: the pass's figure, marked


def test_a_quiet_window_is_waited_for(runs: Path, plugin: Path, machine: dict[str, Any]) -> None:
    machine["load"] = [BUSY_LOAD, BUSY_LOAD, QUIET_LOAD]
    heard: list[str] = []
    path = _record_path(runs)
    report = quiet_pass(_request(path.parent, runs, plugin, wait_s=60), say=heard.append)
    assert report.measured[0].contended is None
    assert heard[0].startswith("waiting for a quiet machine: load average 999.00")


def test_a_folder_that_is_no_run_and_a_table_without_records(runs: Path, plugin: Path) -> None:
    with pytest.raises(HarnessError, match="not a run folder"):
        quiet_pass(_request(runs, runs, plugin))
    with pytest.raises(HarnessError, match="no succeeded records of benchmark nosuch"):
        quiet_pass(_request("leaderboards/nosuch.md", runs, plugin))
    assert len(scan_records(runs)[0]) == 1


def _one_thread(path: Path) -> None:
    """The record as a one-thread run's (the published records' kind)."""
    data = json.loads(path.read_text())
    data["hardware"]["cpu"]["threads"], data["cost"]["device"] = 1, "cpu (1 threads)"
    path.write_text(json.dumps(data, indent=2) + "\n")


def test_a_busy_cpu_is_timed_by_one_threads_cpu_time(
    runs: Path, plugin: Path, machine: dict[str, Any]
) -> None:
    """``--clock cpu`` leaves the waits for a CPU out of the figure: a busy machine is neither
    refused nor marked, and the record and the table say how it was timed."""
    machine["load"] = [BUSY_LOAD]
    path = _record_path(runs)
    two = json.loads(path.read_text())
    two["hardware"]["cpu"]["threads"] = 2
    path.write_text(json.dumps(two, indent=2) + "\n")
    with pytest.raises(HarnessError, match="trained with 2 threads; --clock cpu times one"):
        quiet_pass(_request(path.parent, runs, plugin, clock="cpu"))
    _one_thread(path)
    report = quiet_pass(_request(path.parent, runs, plugin, clock="cpu"))
    quiet = json.loads(path.read_text())["cost"]["quiet"]
    assert quiet["clock"] == "cpu" and quiet["threads"] == 1 and quiet["load"][0] == 999.0
    assert report.measured[0].contended is None
    table = regenerate(read_record(path).benchmark_id, runs, runs.parent / "boards")
    row = json.loads(twin_path(table).read_text())["rows"][0]
    assert row["train_figure"] == "quiet"
    assert "timed by one thread's CPU time" in table.read_text()
    with pytest.raises(HarnessError, match="--clock sundial: choose wall or cpu"):
        quiet_pass(_request(path.parent, runs, plugin, clock="sundial"))
