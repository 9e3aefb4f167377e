"""Paths from outside: outputs that must not overwrite inputs, folders that must be folders,
and paths a record names, confined to the folder the record came from.

A command checks what it was given with these before any work (one line, exit 2): an output
is never an existing folder, never one of the command's inputs (a run's weights, a table's
twin), never a file inside a folder the command reads (a run folder, a dataset), and never
below a file; a folder option (``--runs-dir``, ``--leaderboards-dir``) is never a file.
``confined`` is how a page resolves a path a record names (a study folder, a trial's record,
a run's pictures): inside the runs folder, or not at all.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath, PureWindowsPath

from harness.errors import HarnessError, visible


def _resolved(path: Path) -> Path:
    return Path(os.path.abspath(path)).resolve()


def inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` (links followed) is ``folder`` (links followed) or lies in it."""
    return _resolved(path).is_relative_to(_resolved(folder))


def _same(a: Path, b: Path) -> bool:
    """The same file: one path (links followed), or two names of one file (hard links)."""
    if _resolved(a) == _resolved(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _file_above(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` when it is not a folder (None: there is none)."""
    for parent in _resolved(path).parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def check_output(
    out: Path,
    option: str,
    inputs: Iterable[Path] = (),
    folders: Iterable[tuple[Path, str]] = (),
) -> Path:
    """``out``, when a command may write it; else a ``HarnessError`` (one line) saying why: it
    is an existing folder, lies below a file, is one of ``inputs``, or lies in one of
    ``folders`` (each a folder the command reads, with what it is: ``"the run folder"``)."""
    shown = f"{option} {visible(out)}"
    if out.is_dir():
        raise HarnessError(f"{shown}: is a folder; name the file to write")
    above = _file_above(out)
    if above is not None:
        raise HarnessError(f"{shown}: {visible(above)} is a file, not a folder")
    for given in inputs:
        if _same(out, given):
            raise HarnessError(
                f"{shown}: is {visible(given)}, which this command reads; "
                "write to another file (nothing was written)"
            )
    for folder, what in folders:
        if inside(out, folder):
            raise HarnessError(
                f"{shown}: is inside {what} {visible(folder)}, which this command reads; "
                "write outside it (nothing was written)"
            )
    return out


def check_folder(path: Path, option: str) -> Path:
    """``path``, when it may be used as a folder (it is one, or can be made); else a
    ``HarnessError`` (one line): it is a file, or lies below one."""
    shown = f"{option} {visible(path)}"
    if path.exists() and not path.is_dir():
        raise HarnessError(f"{shown}: is a file, not a folder; name a folder")
    above = _file_above(path)
    if above is not None:
        raise HarnessError(f"{shown}: {visible(above)} is a file, not a folder")
    return path


def relative_parts(text: str) -> tuple[str, ...] | None:
    """The parts of ``text`` as a relative path with no ``..`` (None: absolute, a drive, a
    ``..``, or empty), whichever separator it uses."""
    if not text or PurePosixPath(text).is_absolute() or PureWindowsPath(text).anchor:
        return None
    parts = tuple(p for p in text.replace("\\", "/").split("/") if p not in ("", "."))
    return None if not parts or ".." in parts else parts


def confined(folder: Path, relative: str) -> Path | None:
    """``folder / relative`` when ``relative`` is a relative path that stays inside ``folder``
    with every link followed; None for anything else (absolute, ``..``, a link out)."""
    parts = relative_parts(relative)
    if parts is None:
        return None
    target = Path(folder).joinpath(*parts)
    return target if inside(target, folder) else None
