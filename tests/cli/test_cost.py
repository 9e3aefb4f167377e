"""``harness cost``: bad input is one line and exit 2 (a folder that is no run, a table with
no records, a busy machine, a record of no known machine), and nothing is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from harness.engine import cost, hardware, throughput
from harness.results.records import write_record
from tests.helpers import BENCH, make_record


def _run_folder(root: Path, machine: bool = True) -> Path:
    """A run folder whose record names this machine (or, ``machine=False``, none)."""
    record = make_record("dice", 0, 0.8)
    if machine:
        record.hardware = hardware.describe(torch.device("cpu"))
    folder = root / "runs" / BENCH["id"] / "unetpp-dice" / "seed-0"
    write_record(folder / "record.json", record)
    return folder


def _one_line_exit_2(result: object, *words: str) -> None:
    assert result.code == 2, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: error: "), result.err
    assert "Traceback" not in result.err
    for word in words:
        assert word in lines[0], lines[0]


def test_a_folder_that_is_no_run(cli, tmp_path: Path) -> None:
    _one_line_exit_2(cli("cost", tmp_path), "not a run folder", "record.json")


def test_a_table_with_no_records(cli, tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    result = cli("cost", "leaderboards/nosuch.md", "--runs-dir", tmp_path / "runs")
    _one_line_exit_2(result, "no succeeded records of benchmark nosuch", "--runs-dir")
    result = cli("cost", "nosuch", "--runs-dir", tmp_path / "missing")
    _one_line_exit_2(result, "--runs-dir", "not a folder")


def test_a_busy_machine_is_refused(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(throughput.os, "getloadavg", lambda: (999.0, 999.0, 999.0))
    monkeypatch.setattr(cost, "SAMPLE_S", 0.0)
    folder = _run_folder(tmp_path)
    before = (folder / "record.json").read_bytes()
    _one_line_exit_2(cli("cost", folder), "the machine is busy", "load average 999.00", "--anyway")
    assert (folder / "record.json").read_bytes() == before


def test_a_record_of_no_known_machine_is_left_alone(cli, tmp_path: Path) -> None:
    folder = _run_folder(tmp_path, machine=False)
    _one_line_exit_2(cli("cost", folder), "names no machine", "--unrecorded")
    assert "quiet" not in json.loads((folder / "record.json").read_text())["cost"]


def test_a_failed_run_and_a_negative_wait(cli, tmp_path: Path) -> None:
    record = make_record("dice", 0, 0.8, status="failed")
    folder = tmp_path / "failed"
    write_record(folder / "record.json", record)
    _one_line_exit_2(cli("cost", folder), "status is 'failed'")
    _one_line_exit_2(cli("cost", folder, "--wait", "-1"), "--wait -1")
