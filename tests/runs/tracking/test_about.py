"""What every tracker says about a run (``harness.runs.tracking.about``): its params and tags
from the record's benchmark and entry, an epoch's scalars by one naming, the files a finished
run leaves, and ``tracking.json``, where each tracker notes the run a resume continues."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from harness.runs.tracking import WEIGHTS_ENV
from harness.runs.tracking.about import (
    STATE_NAME,
    TRACKED_RECORD,
    RunAbout,
    epoch_scalars,
    final_files,
    read_state,
    write_state,
)

BENCHMARK = {
    "id": "tiny-abc__phantom-1234",
    "dataset": {"name": "phantom", "fingerprint": "1234abcd"},
    "protocol": {"name": "tiny", "hash": "abc", "fields": {"epochs": 2, "lr": 0.001}},
}
ENTRY = {
    "model": {"name": "unet", "params": {}, "plugin": "builtin", "distribution": "h",
              "version": "1"},
    "loss": {"name": "combo", "params": {"dice": 0.7}, "plugin": "p.py", "distribution": None,
             "version": None},
    "effective_encoder": "resnet34",
    "tta": "flip",
    "hparams": {"lr": 0.03},
}  # fmt: skip


def _about(fold: int | None = None, weights: str | None = None) -> RunAbout:
    run = {"benchmark": BENCHMARK, "entry": ENTRY, "seed": 2, "fold": fold}
    return RunAbout.of(
        run, unit="seed 2", name="unet · combo seed 2", group="unet · combo", runs_dir=Path("r"),
        weights=weights,
    )  # fmt: skip


def test_params_and_tags_say_the_benchmark_and_the_entry_as_text() -> None:
    about = _about()
    assert about.experiment == BENCHMARK["id"] and about.group == "unet · combo"
    assert dict(about.params) == {
        "protocol.name": "tiny",
        "protocol.hash": "abc",
        "protocol.epochs": "2",
        "protocol.lr": "0.001",
        "dataset.name": "phantom",
        "dataset.fingerprint": "1234abcd",
        "seed": "2",  # no fold: none said
        "entry.model": "unet",
        "entry.loss": "combo",
        "entry.loss.params": '{"dice": 0.7}',
        "entry.effective_encoder": "resnet34",
        "entry.tta": "flip",
        "entry.hparams.lr": "0.03",
    }
    assert about.tags["harness.benchmark"] == BENCHMARK["id"]
    assert about.tags["harness.protocol_hash"] == "abc"
    assert about.tags["harness.loss.plugin"] == "p.py"
    assert about.tags["harness.model.version"] == "h 1"
    assert all(isinstance(v, str) for v in (*about.params.values(), *about.tags.values()))
    assert _about(fold=3).params["fold"] == "3"
    assert about.texts["benchmark"].startswith("    {")  # indented: markdown's code block


def test_an_epochs_scalars_are_named_alike_for_every_tracker() -> None:
    metrics = {"epoch": 2, "loss": 0.5, "lr": 0.01, "step": 8}
    assert dict(epoch_scalars(metrics)) == {
        "train/epoch": 2.0, "train/epoch_loss": 0.5, "train/lr": 0.01
    }  # fmt: skip
    validated = {**metrics, "images_per_s": 40, "val_mean_dice": 0.7,
                 "val_per_class_dice": {"Ulna": 0.9}}  # fmt: skip
    assert dict(epoch_scalars(validated)) == {
        "train/epoch": 2.0, "train/epoch_loss": 0.5, "train/lr": 0.01,
        "train/images_per_s": 40.0, "val/mean_dice": 0.7, "val_dice/Ulna": 0.9,
    }  # fmt: skip


def test_a_finished_runs_files_are_those_it_has_the_weights_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("record.json", "metrics.jsonl", "curves.png", "w.safetensors"):
        (tmp_path / name).write_text("x")
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    about = _about(weights="w.safetensors")
    assert final_files(tmp_path, about) == {
        TRACKED_RECORD: tmp_path / "record.json",  # not record.json where the trackers keep it
        "metrics.jsonl": tmp_path / "metrics.jsonl",
        "curves.png": tmp_path / "curves.png",
    }
    monkeypatch.setenv(WEIGHTS_ENV, "1")
    assert final_files(tmp_path, about)["w.safetensors"] == tmp_path / "w.safetensors"
    assert "w.safetensors" not in final_files(tmp_path, _about())  # no weights named


def test_each_tracker_notes_its_run_and_keeps_the_others_notes(tmp_path: Path) -> None:
    assert read_state(tmp_path) == {}
    threads = [
        threading.Thread(target=write_state, args=(tmp_path, name, {"id": name}))
        for name in ("mlflow", "wandb")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert read_state(tmp_path) == {"mlflow": {"id": "mlflow"}, "wandb": {"id": "wandb"}}
    write_state(tmp_path, "wandb", {"id": "again"})
    assert json.loads((tmp_path / STATE_NAME).read_text())["wandb"] == {"id": "again"}
    (tmp_path / STATE_NAME).write_text("[1, 2]")  # not a note of trackers
    assert read_state(tmp_path) == {}
    (tmp_path / STATE_NAME).write_text("{cut")
    assert read_state(tmp_path) == {}
