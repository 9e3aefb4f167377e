"""Faults: kill -9 at random moments during training and during leaderboard writes.

Whatever moment a kill lands on, every file left behind is valid (records parse,
checkpoints load or are absent, a leaderboard holds its old bytes or its new bytes, never
a mix), and the next run or regeneration succeeds. The moments are random; the seed is
printed with any failure (``HARNESS_FAULT_SEED`` replays one).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.classes import CLASSES
from harness.engine import checkpoint
from harness.results.leaderboard import regenerate
from harness.results.records import Record, read_record, write_record
from tests.helpers import assert_same_result, record_of, run_args, subprocess_env


@pytest.fixture
def fault_seed() -> int:
    return int(os.environ.get("HARNESS_FAULT_SEED") or time.time_ns() % 100_000)


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*.tmp-*") if p.is_file()]


def epochs_done(runs: Path) -> int:
    """Epochs the run's last checkpoint holds (-1: none yet)."""
    for path in sorted(runs.rglob("checkpoints/last.pt")):  # never half-written, but a run
        with contextlib.suppress(checkpoint.CheckpointError):  # that succeeds removes it
            return checkpoint.load_state(path)["epoch"]
    return -1


def check_left_behind(runs: Path, boards: Path, board_before: dict[str, bytes]) -> None:
    """Records parse, checkpoints load or are absent, the leaderboards are untouched."""
    for path in runs.rglob("record.json"):
        assert read_record(path) is not None, path
    for folder in runs.rglob("checkpoints"):
        for name in ("last", "best"):
            checkpoint.load(folder, name)  # raises on anything half-written
    if not any(read_record(p).status == "succeeded" for p in runs.rglob("record.json")):
        now = {p.name: p.read_bytes() for p in boards.glob("*.md")}
        assert now == board_before


def test_kill_9_at_random_moments_of_training_then_resume(
    cli,
    plugin: Path,  # noqa: F811
    reference: dict,  # noqa: F811
    tmp_path: Path,
    fault_seed: int,
) -> None:
    rng = random.Random(fault_seed)
    runs, boards = tmp_path / "runs", tmp_path / "boards"
    # The benchmark's leaderboard already exists (another entry's row): kills never touch it.
    boards.mkdir()
    board = boards / f"{reference['benchmark']['id']}.md"
    board.write_text("| # | Entry |\n| 1 | another entry |\n")
    board_before = {board.name: board.read_bytes()}
    args = run_args(plugin, runs, boards)
    kills: list[tuple[int | None, list[tuple[int, int]]]] = []
    for attempt in range(3):
        before = epochs_done(runs)
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness", *args, *(["--resume"] if attempt else [])],
            env=subprocess_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Let training get under way (a checkpoint written by this process), then a random moment.
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if epochs_done(runs) > before:
                break
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        check_left_behind(runs, boards, board_before)
        saved = [checkpoint.load(p.parent) for p in runs.rglob("checkpoints/last.pt")]
        kills.append((proc.returncode, [(c.epoch, c.batch) for c in saved]))
    assert kills[0][0] == -signal.SIGKILL, (fault_seed, kills)  # killed part-way, not finished
    final = cli(*args, "--resume")
    assert final.code == 0, (fault_seed, kills, final.err)
    mine = record_of(runs)
    try:
        assert_same_result(mine, reference)
    except AssertionError as exc:
        raise AssertionError(
            f"fault seed {fault_seed}, (exit, checkpoint) per kill {kills}; "
            f"history {mine['history']} against {reference['history']}"
        ) from exc
    assert not temp_files(runs), (fault_seed, temp_files(runs))


#: Loops forever in forked children, each toggling a record and regenerating its
#: leaderboard, and kills each child with SIGKILL at a random moment; after each kill it
#: snapshots what the child left behind for the test to check.
WRITER = r"""
import os, random, shutil, signal, sys, time
from pathlib import Path

from harness.results.leaderboard import regenerate
from harness.results.records import read_record, write_record

runs, boards, snaps = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
bench, cycles, seed = sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
rng = random.Random(seed)
(record_path,) = runs.rglob("record.json")
for cycle in range(cycles):
    pid = os.fork()
    if pid == 0:
        try:
            for i in range(10**9):
                record = read_record(record_path)
                value = (0.25, 0.75)[i % 2]
                record.mean_dice = value
                record.per_class_dice = {c: value for c in record.per_class_dice}
                write_record(record_path, record)
                regenerate(bench, runs, boards)
        finally:
            os._exit(1)
    time.sleep(rng.uniform(0.01, 0.25))
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    snap = snaps / f"cycle-{cycle}"
    shutil.copytree(boards, snap / "boards")
    shutil.copy(record_path, snap / "record.json")
"""


def _record(value: float) -> Record:
    component = {"params": {}, "plugin": "p", "distribution": "harness", "version": "0"}
    names = {"model": "unetpp", "loss": "dice", "optimizer": "adamw", "scheduler": "flat"}
    entry = {k: {**component, "name": v} for k, v in names.items()}
    entry |= {"augmentation": {**component, "name": "none"}, "encoder": None}
    return Record(
        status="succeeded",
        seed=0,
        mean_dice=value,
        per_class_dice={c: value for c in CLASSES},
        benchmark={
            "id": "tiny-abc__phantom-1234",
            "dataset": {"name": "phantom", "fingerprint": "1234" * 16},
            "protocol": {"name": "tiny", "label": "tiny", "hash": "abc", "fields": {"epochs": 2}},
        },
        entry=entry,
        cost={"parameters": 1e6, "wall_s": 60, "device": "cpu"},
    )


def test_kill_9_during_leaderboard_writes_leaves_old_or_new_bytes(
    tmp_path: Path, fault_seed: int
) -> None:
    bench = "tiny-abc__phantom-1234"
    expected = {}
    for value in (0.25, 0.75):  # the only two tables the writer can produce
        scratch = tmp_path / f"scratch-{value}"
        write_record(scratch / "runs" / "r" / "record.json", _record(value))
        expected[value] = regenerate(bench, scratch / "runs", scratch / "boards").read_bytes()
    assert expected[0.25] != expected[0.75]
    runs, boards, snaps = tmp_path / "runs", tmp_path / "boards", tmp_path / "snaps"
    record_path = runs / "entry" / "seed-0" / "record.json"
    write_record(record_path, _record(0.25))
    regenerate(bench, runs, boards)
    cycles = 6
    proc = subprocess.run(
        [sys.executable, "-c", WRITER, str(runs), str(boards), str(snaps), bench, str(cycles),
         str(fault_seed)],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    for cycle in range(cycles):
        snap = snaps / f"cycle-{cycle}"
        record = read_record(snap / "record.json")
        assert record is not None and record.mean_dice in expected, (fault_seed, cycle)
        table = (snap / "boards" / f"{bench}.md").read_bytes()
        assert table in expected.values(), (fault_seed, cycle, table[:200])
        assert sorted(p.name for p in (snap / "boards").glob("*.md")) == [f"{bench}.md"]
    # The next regeneration succeeds, matches the records, and sweeps the killed writers' temps.
    table = regenerate(bench, runs, boards).read_bytes()
    assert table == expected[json.loads(record_path.read_text())["mean_dice"]]
    write_record(record_path, _record(0.25))
    assert not temp_files(runs) and not temp_files(boards), fault_seed
