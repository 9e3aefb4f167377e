"""A lock between processes (and threads) that leaves no file behind.

filelock's Unix lock keeps its lock file on release, on purpose: deleting the file after
unlocking lets a process that had already opened the old file lock it while a newcomer creates
and locks a new one under the same name, and both hold "the" lock (tox-dev/filelock#27, #574,
#577). So every table, index and study lock would leave a ``.lock`` file beside what it
guards. This lock removes its file without that race, as flock-based tools that clean up do:

- the holder unlinks the path *while it still holds the lock*, then closes (and so unlocks);
- whoever then acquires a lock checks that the file it locked is still the one at the path
  (same device and inode) and, when it is not (it was unlinked while this one waited), opens
  the path afresh and waits again.

Only the holder of the file at the path is the holder of the lock, and the file exists only
while someone holds it (a holder killed with ``kill -9`` leaves it, empty; the next holder
removes it). Where ``fcntl.flock`` is missing (Windows), filelock's lock is used, which
deletes its own file there.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import TracebackType
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: How often a lock with a timeout tries again.
POLL_S = 0.05


class Lock:
    """An exclusive lock on ``path`` (created while held, removed on release); not re-entrant.

    ``with Lock(path):`` waits as long as it takes; ``acquire(timeout=0)`` tries once. A lock
    not acquired in time raises ``TimeoutError``.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._fallback = None if fcntl is not None else _filelock(self.path)

    @property
    def held(self) -> bool:
        return self._fd is not None or bool(self._fallback and self._fallback.is_locked)

    def acquire(self, timeout: float | None = None) -> Lock:
        """Hold the lock; ``timeout`` seconds at most (None: wait as long as it takes)."""
        if self._fallback is not None:  # pragma: no cover - Windows
            try:
                self._fallback.acquire(timeout=-1 if timeout is None else timeout)
            except Exception as exc:
                raise TimeoutError(f"{self.path}: held by another process") from exc
            return self
        if self._fd is not None:
            raise RuntimeError(f"{self.path}: this lock is already held (it is not re-entrant)")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            fd = self._open()
            try:
                got = _flock(fd, deadline)
                if got and _same_file(fd, self.path):
                    self._fd = fd
                    return self
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
            if not got:
                raise TimeoutError(f"{self.path}: held by another process")

    def release(self) -> None:
        """Remove the file (still held, so no one else holds it), then unlock."""
        if self._fallback is not None:  # pragma: no cover - Windows
            self._fallback.release()
            return
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(fd)

    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        return os.open(self.path, flags, 0o666)

    def __enter__(self) -> Lock:
        return self.acquire()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def _flock(fd: int, deadline: float | None) -> bool:
    """Lock ``fd`` exclusively: waiting as long as it takes (``deadline`` None) or until the
    monotonic ``deadline``; whether it was locked."""
    if deadline is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_S)


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``fd`` is still the file at ``path`` (a holder removes it before unlocking)."""
    try:
        there = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (there.st_dev, there.st_ino) == (mine.st_dev, mine.st_ino)


def _filelock(path: Path) -> Any:  # pragma: no cover - Windows
    from filelock import FileLock

    return FileLock(str(path))
