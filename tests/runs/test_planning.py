"""Planning (``harness.runs.planning``): ``Planner.resolve`` checks a request without touching
data; another precision is another entry (its own key, label and folder); a run's folder is
``RUNS/<benchmark>/<entry slug>-<key hash>/seed-N`` (``fold-K-seed-N``), plain names that
stay inside the runs folder; a benchmark is named by its protocol's hash and its dataset's
fingerprint."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.data.sources import DatasetInfo
from harness.errors import HarnessError
from harness.runs.planning import Benchmark, Planner, Resolved, run_dir
from harness.runs.requests import RunRequest

FINGERPRINT = "0123456789abcdef" * 4


def _resolve(**options: object) -> Resolved:
    request = RunRequest.from_options(
        model="unet", loss="dice", protocol="tiny", device="cpu", **options
    )
    return Planner().resolve(request)


def _plan(resolved: Resolved, runs: Path) -> SimpleNamespace:
    """What ``run_dir`` reads of a plan: its benchmark, entry and runs folder."""
    benchmark = Benchmark(DatasetInfo(Path("d"), "My Phantom", FINGERPRINT), resolved.protocol)
    return SimpleNamespace(benchmark=benchmark, entry=resolved.entry, runs_dir=runs)


def test_resolving_checks_the_request_and_touches_no_data(tmp_path: Path) -> None:
    resolved = _resolve(data=tmp_path / "not made yet", seeds="3")
    assert resolved.seeds == (0, 1, 2) and resolved.protocol.name == "tiny"
    assert not (tmp_path / "not made yet").exists()
    with pytest.raises(HarnessError, match="^--tta 'spin': choose one of"):
        _resolve(tta="spin")
    with pytest.raises(HarnessError, match="^--tuned: says a tuning budget chose --hparam"):
        _resolve(tuned="8-abc")
    with pytest.raises(HarnessError, match="^--hparam: protocol 'tiny': lr must be > 0"):
        _resolve(hparams=("lr=-1",))  # the protocol's own checks refuse it


def test_another_precision_is_another_entry_and_folder(tmp_path: Path) -> None:
    plain, auto, fp16 = _resolve(), _resolve(precision="auto"), _resolve(precision="fp16")
    assert plain.entry.precision is None and auto.entry == plain.entry  # fp32 on this CPU
    assert fp16.entry.precision == "fp16" and fp16.launch.precision.name == "fp16"
    assert fp16.entry.key != plain.entry.key and fp16.entry.label.endswith(" · fp16")
    folders = {run_dir(_plan(r, tmp_path), 0) for r in (plain, auto, fp16)}
    assert len(folders) == 2


def test_a_run_folder_is_named_by_benchmark_entry_and_seed(tmp_path: Path) -> None:
    resolved = _resolve()
    plan = _plan(resolved, tmp_path / "runs")
    key = hashlib.sha256(resolved.entry.key.encode()).hexdigest()[:8]
    entry = f"unet-dice-adamw-warmup-cosine-none-{key}"
    bench = f"tiny-{resolved.protocol.hash}__My Phantom-01234567"
    assert plan.benchmark.id == bench
    assert run_dir(plan, 2) == tmp_path / "runs" / bench / entry / "seed-2"
    assert run_dir(plan, 0, fold=3) == tmp_path / "runs" / bench / entry / "fold-3-seed-0"


def test_a_run_folder_never_leaves_the_runs_folder(tmp_path: Path) -> None:
    resolved = _resolve()
    climbing = dataclasses.replace(resolved.entry, tta="../../" + "x" * 80)  # in its label
    plan = _plan(dataclasses.replace(resolved, entry=climbing), tmp_path / "runs")
    folder = run_dir(plan, 0)
    assert folder.parent.name.startswith("unet-dice-") and ".." not in folder.parts
    assert len(folder.parent.name) <= 60 + 1 + 8  # the slug cut at 60, the key's hash
    plan.benchmark = SimpleNamespace(id="a/b")  # were a benchmark's id ever a path
    with pytest.raises(HarnessError, match="is not a plain name; report this bug"):
        run_dir(plan, 0)


def test_a_benchmark_records_its_dataset_and_protocol() -> None:
    proto = _resolve(sets=("epochs=3",)).protocol
    benchmark = Benchmark(DatasetInfo(Path("d"), "phantom", FINGERPRINT), proto, ("Ulna",))
    assert benchmark.to_dict() == {
        "id": f"tiny-{proto.hash}__phantom-01234567",
        "dataset": {"name": "phantom", "fingerprint": FINGERPRINT},
        "protocol": {
            "name": "tiny", "label": proto.label, "hash": proto.hash,
            "fields": proto.hashed_fields(),
        },
        "small_bones": ["Ulna"],
    }  # fmt: skip
    assert proto.hashed_fields()["epochs"] == 3 and proto.hash != _resolve().protocol.hash


def test_a_planner_loads_each_set_of_plugins_once() -> None:
    planner = Planner()
    assert planner.registry(()) is planner.registry(())
    assert planner.weights("none", "resnet34") is planner.weights("none", "resnet34")
    assert planner.preparations == 0  # resolving prepared nothing
