"""Atomic writes: a reader sees a file's old bytes or its new bytes, never a mix.

Every file the harness writes that someone else reads (records, tables, checkpoints,
submissions, statistics, pictures, memo files) goes through here: a temp file beside the
target, flushed and fsynced, renamed over it, and the folder fsynced so the rename
survives a power cut. Temp files left by a killed writer are swept by the next write.

A write that fails (a full disk above all) leaves the earlier file as it was and no temp
file, and raises an ``OSError`` naming the file it was writing; ``out_of_space`` and
``cannot_write`` are how callers tell and say it in one line.
"""

from __future__ import annotations

import errno
import glob
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

#: The errors of a write that ran out of room: the disk, or the user's quota, is full.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def atomic_write_text(path: Path, text: str) -> None:
    """Write, flush to disk, then rename over ``path``: readers see the old or the new file."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, fsync it, rename it over ``path``.

    A kill at any moment leaves ``path`` with its old bytes or its new bytes, never a mix;
    the folder is fsynced too so the rename survives a power cut. A write that fails (a
    full disk) removes its temp file and raises ``OSError`` naming ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Not mkstemp: its files are private (0600); records and tables keep the usual umask.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise _naming(exc, path) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _naming(exc, path) from None
        raise
    fsync_dir(path.parent)
    _sweep_stale_temps(path)


def atomic_write_files(files: Mapping[Path, bytes]) -> None:
    """Write every file of ``files`` (path to bytes) or none: each to a temp file beside it,
    fsynced, and only when all are on disk, each renamed over its path. A write that fails (a
    full disk) removes every temp file, leaves every earlier file as it was, and raises
    ``OSError`` naming the file it was writing."""
    temps: list[tuple[Path, Path]] = []
    try:
        for path, data in files.items():
            temps.append((_written_temp(Path(path), data), Path(path)))
        for tmp, path in temps:
            os.replace(tmp, path)
    except BaseException as exc:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and len(temps) < len(files):
            raise _naming(exc, Path(list(files)[len(temps)])) from None
        raise
    for folder in dict.fromkeys(path.parent for _, path in temps):
        fsync_dir(folder)
    for _, path in temps:
        _sweep_stale_temps(path)


def _written_temp(path: Path, data: bytes) -> Path:
    """A fsynced temp file beside ``path`` holding ``data`` (removed again when that fails)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def append_whole(path: Path, data: bytes) -> None:
    """Append ``data`` to ``path`` whole or not at all: a write that fails (a full disk) is
    cut off again, so the file keeps its earlier lines and no half of a new one, and raises
    ``OSError`` naming ``path``. (A log's lines, ``tail -f``-able; not for files replaced.)"""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    except OSError as exc:
        raise _naming(exc, path) from None
    try:
        size = os.fstat(fd).st_size
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except OSError as exc:
            os.ftruncate(fd, size)
            raise _naming(exc, path) from None
    finally:
        os.close(fd)


def _naming(exc: OSError, path: Path) -> OSError:
    """``exc`` as the failed write of ``path`` (its errno kept; a write's own error names no
    file, or names the temp file)."""
    if exc.errno is None:
        return exc
    if exc.filename is not None and Path(exc.filename) != path and not _is_temp(exc, path):
        return exc  # the folder could not be made: that folder is the one to name
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


def _is_temp(exc: OSError, path: Path) -> bool:
    return Path(exc.filename).name.startswith(f".{path.name}.tmp-")


def out_of_space(exc: BaseException) -> bool:
    """Whether ``exc`` is a write that found the disk (or the quota) full."""
    return isinstance(exc, OSError) and exc.errno in NO_SPACE


def cannot_write(exc: OSError, where: Path | None = None) -> str:
    """One line for a failed write: ``FOLDER: the disk is full (No space left on device)``,
    or ``FILE: cannot be written (REASON)`` for any other error; ``where`` names the file
    or folder when the error names none."""
    where = Path(exc.filename) if exc.filename is not None else where
    reason = exc.strerror or str(exc)
    if out_of_space(exc):
        folder = where if where is None or where.is_dir() else where.parent
        return f"{folder or 'a folder'}: the disk is full ({reason})"
    return f"{where or 'a file'}: cannot be written ({reason})"


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (renames) to disk, where the platform allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _sweep_stale_temps(path: Path) -> None:
    """Remove temp files of ``path`` left by writers that were killed (their pid is gone)."""
    prefix = f".{path.name}.tmp-"
    for tmp in path.parent.glob(f"{glob.escape(prefix)}*"):
        _remove_if_stale(tmp, tmp.name[len(prefix) :])


def sweep_stale_temps(folder: Path) -> None:
    """Remove every temp file in ``folder`` whose writer was killed before its rename."""
    for tmp in Path(folder).glob(".*.tmp-*"):
        _remove_if_stale(tmp, tmp.name.rpartition(".tmp-")[2])


def _remove_if_stale(tmp: Path, suffix: str) -> None:
    pid_text = suffix.partition("-")[0]
    if pid_text.isdigit() and int(pid_text) != os.getpid() and not _alive(int(pid_text)):
        tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True
