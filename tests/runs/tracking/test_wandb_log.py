"""``--track wandb`` offline (``WANDB_MODE=offline``, no network): the W&B run's files in the
run folder, every step's loss in its history, and a stopped run resumed under the same id."""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.runs.tracking.about import STATE_NAME, TRACKED_RECORD
from tests.helpers import STEPS_PER_EPOCH, record_of, run_args

pytest.importorskip("wandb")


@pytest.fixture(autouse=True)
def _offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """W&B offline, its settings and caches in the test's folder, not the user's home."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / name.lower()))


def _records(path: Path) -> Iterator[bytes]:
    """The records of a ``.wandb`` file: a 7-byte header, then LevelDB's log format (32 KiB
    blocks of chunks: CRC, length, type FULL=1 / FIRST=2 / MIDDLE=3 / LAST=4)."""
    data, pos, block, pending = path.read_bytes(), 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if left < 7 or (kind == 0 and length == 0):  # a block's padding
            pos += left if left < 7 else left
            continue
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            yield pending


def history(path: Path) -> tuple[set[str], list[tuple[int, set[str]]]]:
    """The run ids a ``.wandb`` file names and its history rows: (step, keys)."""
    from wandb.proto import wandb_internal_pb2 as pb

    ids, rows = set(), []
    for raw in _records(path):
        record = pb.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            ids.add(record.run.run_id)
        elif kind == "history":
            items = {i.key or "/".join(i.nested_key): i.value_json for i in record.history.item}
            keys = {k.split("/_")[0] for k in items if not k.startswith("_")}
            rows.append((json.loads(items["_step"]), keys))
    return ids, rows


def test_an_offline_wandb_run_stopped_and_resumed_keeps_its_id_and_each_step_once(
    cli, plugin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs, boards = tmp_path / "runs", tmp_path / "boards"
    args = [*run_args(plugin, runs, boards), "--track", "wandb"]
    monkeypatch.setenv("HARNESS_TEST_SIGINT", "train:11")  # Ctrl-C at epoch 2, batch 3
    assert cli(*args).code == 130
    monkeypatch.delenv("HARNESS_TEST_SIGINT")
    (state,) = runs.rglob(STATE_NAME)
    run_id = json.loads(state.read_text())["wandb"]["id"]
    folder = state.parent
    assert list(folder.glob(f"wandb/offline-run-*-{run_id}/run-{run_id}.wandb"))
    time.sleep(1.1)  # W&B names a session's folder by its start, to the second

    result = cli(*args, "--resume")
    assert result.code == 0, result.err
    assert "tracking stopped" not in result.out + result.err
    assert json.loads(state.read_text())["wandb"]["id"] == run_id  # the same W&B run
    files = sorted(folder.glob("wandb/offline-run-*/run-*.wandb"))
    rows = []
    for path in files:
        ids, found = history(path)
        assert ids == {run_id}, path
        rows += found
    assert len(files) == 2  # the stopped session's and the resumed one's
    total = 4 * STEPS_PER_EPOCH
    assert sorted(step for step, keys in rows if "train/loss" in keys) == list(range(1, total + 1))
    validated = [e * STEPS_PER_EPOCH for e in range(1, 5)]
    assert sorted(step for step, keys in rows if "val/mean_dice" in keys) == validated
    assert sorted(step for step, keys in rows if "val_dice/Ulna" in keys) == validated
    assert sorted(step for step, keys in rows if "val/prediction" in keys) == validated
    latest = files[-1].parent / "files"
    tracked = (latest / TRACKED_RECORD).read_bytes()
    assert tracked == (folder / "record.json").read_bytes()
    assert (latest / "curves.png").is_file() and (latest / "metrics.jsonl").is_file()
    assert record_of(runs)["status"] == "succeeded"  # the only record.json under runs/
