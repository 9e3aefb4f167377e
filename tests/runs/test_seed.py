"""One job trained here (``harness.runs.seed``): a run folder held by one process at a time
(a second is one line); a fresh start clears the folder's old checkpoints and what a killed
writer left, a resume needs its checkpoint and continues in the precision it started in; a
checkpoint belongs to its benchmark, entry, seed and fold; weights are written as
safetensors; a failed run's record says why. Training itself is tested end to end in
tests/runs/test_dispatch.py, tests/engine/test_resume.py and tests/cli/."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from harness.engine import checkpoint
from harness.errors import HarnessError
from harness.runs import seed as seeds
from harness.runs.job import Action
from tests.helpers import Recorder


def _job(folder: Path, action: Action = Action.TRAIN, fold: int | None = None) -> SimpleNamespace:
    plan = SimpleNamespace(
        benchmark=SimpleNamespace(id="tiny-abc__phantom-1234"),
        entry=SimpleNamespace(key="unet|dice|adamw|warmup-cosine|none|"),
        launch=SimpleNamespace(precision=SimpleNamespace(name="fp32")),
        device=torch.device("cpu"),
        executor="in-process",
    )
    return SimpleNamespace(plan=plan, seed=2, fold=fold, folder=folder, action=action,
                           unit="seed 2")  # fmt: skip


def test_a_run_folder_is_held_by_one_process_at_a_time(tmp_path: Path) -> None:
    folder = tmp_path / "runs" / "seed-0"
    with seeds.hold(folder):
        assert folder.is_dir()
        with pytest.raises(HarnessError) as caught, seeds.hold(folder):
            pass
    said = str(caught.value)
    assert said.startswith(f"{folder}: another harness process is running this run (lock ")
    assert "\n" not in said
    assert not list(folder.iterdir())  # released: no .lock left
    with seeds.hold(folder):  # and held again
        pass


def test_a_checkpoint_belongs_to_its_benchmark_entry_seed_and_fold(tmp_path: Path) -> None:
    assert seeds.run_id(_job(tmp_path)) == {
        "benchmark": "tiny-abc__phantom-1234",
        "entry": "unet|dice|adamw|warmup-cosine|none|",
        "seed": 2,
    }
    assert seeds.run_id(_job(tmp_path, fold=4))["fold"] == 4


def test_a_fresh_start_clears_old_checkpoints_and_a_killed_writers_files(tmp_path: Path) -> None:
    ckpt = checkpoint.directory(tmp_path)
    ckpt.mkdir()
    (ckpt / "last.pt").write_bytes(b"an earlier run's")
    dead = tmp_path / ".record.json.tmp-999999999-abcd"  # no such pid: its writer was killed
    dead.write_text("{half")
    start = seeds._start(_job(tmp_path), Recorder())
    assert not ckpt.exists() and not dead.exists()
    assert start.resume_from is None and start.resumes == [] and start.started


def test_a_resume_whose_checkpoint_is_gone_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="the checkpoint to resume from disappeared"):
        seeds._start(_job(tmp_path, Action.RESUME), Recorder())


def test_a_checkpoint_in_another_precision_is_refused(tmp_path: Path) -> None:
    """The safety net behind the run folders: a checkpoint never continues in another
    precision (one line naming both)."""
    saved = checkpoint.Checkpoint(
        tmp_path / "last.pt", tmp_path / "last.safetensors", {}, {"precision": "fp16"}
    )
    with pytest.raises(checkpoint.CheckpointError, match="trained in fp16 and would continue"):
        seeds._check_precision(saved, "fp32")
    seeds._check_precision(saved, "fp16")
    older = checkpoint.Checkpoint(
        saved.path, saved.weights_path, {}, {}
    )  # saved before precision was
    seeds._check_precision(older, "fp32")


def test_weights_are_safetensors_that_load_back_the_same(tmp_path: Path) -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    path = tmp_path / "weights-final.safetensors"
    seeds.save_weights(path, model)
    (size,) = struct.unpack("<Q", path.read_bytes()[:8])
    header = json.loads(path.read_bytes()[8 : 8 + size])  # safetensors: a JSON header, no pickle
    assert set(header) - {"__metadata__"} == set(model.state_dict())
    loaded = load_file(path)
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left


def test_a_failed_record_says_why_and_what_ran_it(tmp_path: Path) -> None:
    base = {"seed": 2, "benchmark": {"id": "b"}, "entry": {"model": {}}, "fold": None}
    record = seeds.failed_record(_job(tmp_path), "loss became nan at step 3", base, 12.5)
    assert record.status == "failed" and record.mean_dice is None and record.per_class_dice == {}
    assert record.error == "loss became nan at step 3"
    assert record.cost == {"wall_s": 12.5, "device": "cpu", "executor": "in-process"}
    assert record.seed == 2 and record.finished_at
