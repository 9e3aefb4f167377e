"""The lock that leaves no file: one holder at a time across processes, however many wait,
and no ``.lock`` file once released (its holder removes it while it still holds it)."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from harness.locking import Lock


def _count(args: tuple[str, str, int]) -> None:
    lock, counter, times = args
    for _ in range(times):
        with Lock(lock):
            value = int(Path(counter).read_text())
            time.sleep(0.0005)  # a reader-writer race, unless the lock is exclusive
            Path(counter).write_text(str(value + 1))


def test_one_holder_at_a_time_and_no_file_left(tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    counter.write_text("0")
    lock = tmp_path / "table.md.lock"
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(_count, [(str(lock), str(counter), 50)] * 4)
    assert counter.read_text() == "200"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter"]


def test_a_held_lock_times_out_and_is_free_once_released(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    held = Lock(path).acquire()
    assert path.exists()
    with pytest.raises(TimeoutError):
        Lock(path).acquire(timeout=0)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        Lock(path).acquire(timeout=0.2)
    assert time.monotonic() - started >= 0.2
    held.release()
    assert not path.exists()
    with Lock(path):
        assert path.exists()
    assert not path.exists()


def test_a_file_left_by_a_killed_holder_is_taken_and_removed(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    path.write_text("")  # what a holder killed with kill -9 leaves: a file no one locks
    lock = Lock(path).acquire(timeout=0)
    lock.release()
    assert not path.exists()
