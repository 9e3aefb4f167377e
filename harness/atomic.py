"""Atomic writes: a reader sees a file's old bytes or its new bytes, never a mix.

Every file the harness writes that someone else reads (records, tables, checkpoints,
submissions, statistics, pictures, memo files) goes through here: a temp file beside the
target, flushed and fsynced, renamed over it, and the folder fsynced so the rename
survives a power cut. Temp files left by a killed writer are swept by the next write.
"""

from __future__ import annotations

import glob
import os
import secrets
from pathlib import Path


def atomic_write_text(path: Path, text: str) -> None:
    """Write, flush to disk, then rename over ``path``: readers see the old or the new file."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, fsync it, rename it over ``path``.

    A kill at any moment leaves ``path`` with its old bytes or its new bytes, never a mix;
    the folder is fsynced too so the rename survives a power cut.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    # Not mkstemp: its files are private (0600); records and tables keep the usual umask.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    _sweep_stale_temps(path)


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
