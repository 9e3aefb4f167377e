"""``scripts/throughput_spread.py``: docs/scaling.md's before-and-after table is the one the
committed records make, and the spread is measured per identical configuration."""

from __future__ import annotations

import importlib.util
import sys

from harness.results.records import Record
from tests.helpers import REPO, make_record


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "throughput_spread", REPO / "scripts" / "throughput_spread.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


spread = _load_script()


def test_the_table_in_docs_is_the_one_the_records_make() -> None:
    assert spread.main(["--check"]) == 0, (
        "docs/scaling.md's throughput table differs from the records: "
        "run python scripts/throughput_spread.py"
    )


def _timed(seed: int, whole: float, window: float | None) -> Record:
    record = make_record("dice", seed, 0.8)
    record.benchmark = {**record.benchmark, "protocol": {**record.benchmark["protocol"]}}
    record.benchmark["protocol"]["fields"] = {"resolution": 128, "batch_size": 8}
    record.cost.update({"train_images_per_s": whole, "device": "cpu (1 threads)"})
    if window is not None:
        record.cost["train_window"] = {"images_per_s": window, "load": [0.5, 0.5, 0.5], "cpus": 2}
    return record


def test_before_is_the_whole_run_and_after_what_compares() -> None:
    records = [_timed(0, 2.0, 6.0), _timed(1, 8.0, 6.6), _timed(2, 5.0, None)]
    row = spread.table(records).splitlines()[2]
    assert row == (
        "| unetpp | None | 128 | 8 | 1 | 3 | 2.0 / 5.0 / 8.0 (±60 %) | "
        "6.0 / 6.3 / 6.6 (±5 %) | 1 ʷ |"
    )
