"""Checkpoints: exact round trips, a commit that survives a kill between any two writes,
and nothing unpickled from a file that could run code."""

from __future__ import annotations

import pickle
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.engine import checkpoint
from harness.engine.checkpoint import CheckpointError
from harness.errors import HarnessError


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.Conv2d(4, 2, 1)
    )
    return model.to(memory_format=torch.channels_last)  # weights no longer contiguous


def _state(epoch: int) -> dict:
    opt = torch.optim.AdamW(_model().parameters(), lr=1e-3)
    return {
        "epoch": epoch,
        "history": [{"epoch": epoch, "loss": 0.5}],
        "optimizer": opt.state_dict(),
    }


def test_round_trip_is_exact_and_channels_last_is_fine(tmp_path: Path) -> None:
    model = _model()
    assert not model[0].weight.is_contiguous()
    checkpoint.save(tmp_path, "last", model.state_dict(), _state(3))
    loaded = checkpoint.load(tmp_path, "last")
    assert loaded is not None and loaded.epoch == 3 and loaded.batch == 0
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.weights[key], value), key
    assert loaded.state["history"] == [{"epoch": 3, "loss": 0.5}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "last.safetensors"]


def test_tied_weights_are_saved(tmp_path: Path) -> None:
    a = torch.nn.Linear(3, 3)
    b = torch.nn.Linear(3, 3)
    b.weight = a.weight
    model = torch.nn.Sequential(a, b)
    checkpoint.save(tmp_path, "last", model.state_dict(), {"epoch": 1})
    loaded = checkpoint.load(tmp_path)
    assert torch.equal(loaded.weights["0.weight"], loaded.weights["1.weight"])


def test_no_checkpoint_is_none(tmp_path: Path) -> None:
    assert checkpoint.load(tmp_path / "absent", "last") is None
    assert not checkpoint.exists(tmp_path)


def test_a_kill_between_any_two_writes_leaves_a_usable_pair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _model()
    checkpoint.save(tmp_path, "last", model.state_dict(), _state(1))
    new = {k: v + 1 if v.is_floating_point() else v for k, v in model.state_dict().items()}

    # Killed after the new weights went to last.next.safetensors, before the commit.
    writes = []
    real_write = checkpoint.atomic_write_bytes

    def die_on_second(path: Path, data: bytes) -> None:
        writes.append(path.name)
        if len(writes) == 2:
            raise KeyboardInterrupt  # stands for kill -9 just before the state file's rename
        real_write(path, data)

    monkeypatch.setattr(checkpoint, "atomic_write_bytes", die_on_second)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(tmp_path, "last", new, _state(2))
    monkeypatch.undo()
    old = checkpoint.load(tmp_path)
    assert old.epoch == 1 and torch.equal(old.weights["0.weight"], model.state_dict()["0.weight"])

    # Killed after the commit, before the weights took their name: load finishes the rename.
    real_replace = Path.replace

    def no_rename(self: Path, target: Path) -> Path:
        if self.name == "last.next.safetensors":
            raise KeyboardInterrupt
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", no_rename)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(tmp_path, "last", new, _state(2))
    monkeypatch.undo()
    assert (tmp_path / "last.next.safetensors").exists()
    fresh = checkpoint.load(tmp_path)
    assert fresh.epoch == 2 and torch.equal(fresh.weights["0.weight"], new["0.weight"])
    assert not (tmp_path / "last.next.safetensors").exists()


@pytest.mark.parametrize("victim", ["last.pt", "last.safetensors"])
@pytest.mark.parametrize("damage", ["truncate", "garbage", "delete"])
def test_damaged_files_are_errors_naming_the_file(tmp_path: Path, victim: str, damage: str) -> None:
    checkpoint.save(tmp_path, "last", _model().state_dict(), _state(1))
    path = tmp_path / victim
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00not a checkpoint" * 10)
    else:
        path.unlink()
    if victim == "last.pt" and damage == "delete":
        assert checkpoint.load(tmp_path) is None  # no commit, no checkpoint
        return
    with pytest.raises(CheckpointError, match=re.escape(str(path))) as info:
        checkpoint.load(tmp_path)
    assert "\n" not in str(info.value)


def test_a_pickle_that_runs_code_is_refused_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    checkpoint.save(tmp_path, "last", _model().state_dict(), _state(1))
    (tmp_path / "last.pt").write_bytes(pickle.dumps({"kind": Exploit()}, protocol=2))
    with pytest.raises(CheckpointError, match="last.pt"):
        checkpoint.load(tmp_path)
    assert not marker.exists()


def test_state_that_would_need_unpickling_is_refused_at_save(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match=r"\['scheduler'\]\['fn'\].*function"):
        checkpoint.save(tmp_path, "last", {}, {"epoch": 1, "scheduler": {"fn": lambda s: s}})
    assert not checkpoint.exists(tmp_path)


def test_global_random_states_round_trip(tmp_path: Path) -> None:
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    checkpoint.save(tmp_path, "last", {}, {"epoch": 0, "rng": checkpoint.global_rng_state()})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    checkpoint.set_global_rng_state(checkpoint.load(tmp_path).state["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_albumentations_random_state_round_trips(tmp_path: Path) -> None:
    import albumentations as A

    def transform() -> A.Compose:
        return A.Compose([A.HorizontalFlip(p=0.5), A.Rotate(limit=30, p=0.5)])

    image = np.arange(64 * 64, dtype=np.uint8).reshape(64, 64)
    first = transform()
    first.set_random_seed(0)
    for _ in range(3):
        first(image=image)
    state = {"epoch": 0, "augment": checkpoint.augment_rng_state(first)}
    checkpoint.save(tmp_path, "last", {}, state)
    expected = [first(image=image)["image"] for _ in range(4)]

    second = transform()
    second.set_random_seed(123)
    checkpoint.set_augment_rng_state(second, checkpoint.load(tmp_path).state["augment"])
    for want in expected:
        assert np.array_equal(second(image=image)["image"], want)
