"""Records (``harness.results.records``): written as JSON that reads back as the same record;
read defensively, each file a table cannot use named with why (the field, and what is wrong
with it) and the benchmark it belongs to; links never followed, a folder whose name hides
characters refused; the kind of machine a record ran on, in one line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.classes import CLASSES
from harness.results.records import (
    hardware_kind,
    inspect_record,
    read_json,
    read_record,
    scan_records,
    write_record,
)
from tests.helpers import BENCH, make_record, put_record, seeded_runs


def test_records_are_valid_json_and_round_trip(tmp_path: Path) -> None:
    path = put_record(tmp_path, "r", make_record("dice", 0, 0.5))
    data = json.loads(path.read_text())
    assert {"status", "seed", "mean_dice", "per_class_dice"} <= set(data)
    assert read_record(path) == make_record("dice", 0, 0.5)


def test_reasons_name_what_is_wrong(tmp_path: Path) -> None:
    path = put_record(tmp_path, "r", make_record("dice", 0, 0.5))
    data = json.loads(path.read_text())
    cases = {
        "is not a JSON object": [1, 2],
        "has schema 7; this harness reads schema 1": {**data, "schema": 7},
        "per_class_dice.Lunate: not a number": {
            **data,
            "per_class_dice": {**data["per_class_dice"], "Lunate": "x"},
        },
        "status: should be 'succeeded' or 'failed'": {**data, "status": "done"},
        "benchmark.id: not a plain benchmark id": {
            **data,
            "benchmark": {**data["benchmark"], "id": "../x"},
        },
        "has keys this harness does not know: surprise": {**data, "surprise": 1},
    }
    for reason, content in cases.items():
        path.write_text(json.dumps(content))
        found = inspect_record(path)
        assert isinstance(found, str) and reason in found, (reason, found)
    assert "cannot be read" in str(inspect_record(tmp_path / "missing.json"))


def test_an_unreadable_record_is_attributed_by_its_folder(tmp_path: Path) -> None:
    runs = seeded_runs(tmp_path)
    first = runs / BENCH["id"] / "dice" / "seed-0" / "record.json"
    first.write_text("{")
    stray = runs / "elsewhere" / "record.json"
    stray.parent.mkdir()
    stray.write_text("")
    _, unusable = scan_records(runs)
    assert {u.path: u.benchmark for u in unusable} == {first: BENCH["id"], stray: None}


def test_the_classes_of_the_per_class_table_come_from_the_records(tmp_path: Path) -> None:
    """A record's per-class Dice is keyed by the 29 classes alone (an unknown class is named)."""
    path = tmp_path / "record.json"
    record = make_record("dice", 0, 0.5)
    record.per_class_dice = {**record.per_class_dice, "Nose": 0.5}
    write_record(path, record)
    found = inspect_record(path)
    assert isinstance(found, str) and found.startswith("per_class_dice.Nose: not one of")
    assert "Nose" not in CLASSES


def test_a_link_is_never_followed(tmp_path: Path) -> None:
    """A ``record.json`` that is a link is not read, and a linked folder is not walked: a runs
    folder from elsewhere may lead out of itself, or round in a circle."""
    elsewhere = seeded_runs(tmp_path / "elsewhere")
    real = elsewhere / BENCH["id"] / "dice" / "seed-0" / "record.json"
    runs = tmp_path / "runs"
    linked = runs / BENCH["id"] / "dice" / "seed-0" / "record.json"
    linked.parent.mkdir(parents=True)
    linked.symlink_to(real)
    (runs / BENCH["id"] / "bce").symlink_to(elsewhere / BENCH["id"] / "dice")
    (runs / BENCH["id"] / "loop").symlink_to(runs)
    assert read_record(real) == make_record("dice", 0, 0.8)
    assert read_json(linked) == "is not a plain file (a link, a folder or a device)"
    assert read_record(linked) is None
    usable, unusable = scan_records(runs)
    assert usable == [] and [(u.path, u.benchmark) for u in unusable] == [(linked, BENCH["id"])]


def test_a_folder_whose_name_hides_characters_makes_its_record_unusable(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    fine = put_record(runs, "fine", make_record("dice", 0, 0.8))
    hidden = put_record(runs, "line\nbreak", make_record("dice", 1, 0.8))
    usable, unusable = scan_records(runs)
    assert [path for path, _ in usable] == [fine]
    (found,) = unusable
    assert found.path == hidden and "holds a line break, a control character" in found.reason
    assert found.benchmark == BENCH["id"]  # the record itself names it
    assert "\n" not in str(found)  # named on one line


def test_an_oversized_or_deeply_nested_file_is_refused_before_it_is_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.results import records

    path = tmp_path / "record.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    assert read_json(path) == "is nested too deeply to be a record"
    monkeypatch.setattr(records, "MAX_BYTES", 1000)
    path.write_text(json.dumps(make_record("dice", 0, 0.5).to_dict()))
    assert os.path.getsize(path) > 1000 and read_json(path).startswith("is larger than")


def test_the_kind_of_machine_is_its_gpus_else_its_cpu() -> None:
    gpu = {"name": "NVIDIA H100", "memory_mb": 81559}
    hardware = {"cpu": {"model": "Xeon"}, "gpus": [gpu, gpu], "cuda": "12.4", "driver": "550"}
    assert hardware_kind(hardware) == (
        "NVIDIA H100 (80 GiB), NVIDIA H100 (80 GiB) (CUDA 12.4, driver 550)"
    )
    assert hardware_kind({"cpu": {"model": "Xeon"}, "gpus": []}) == "Xeon"
    assert hardware_kind({}) == ""  # a record from before hardware was kept
