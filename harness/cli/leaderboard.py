"""``harness leaderboard``: regenerate the tables from the run records."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from harness.cli.root import line, say


def leaderboard(
    target: Annotated[
        str | None, typer.Argument(help="A leaderboard file or benchmark id (default: all)")
    ] = None,
    runs_dir: Annotated[Path, typer.Option(help="Where the run records are")] = Path("runs"),
    leaderboards_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where leaderboard tables go (default: <runs-dir>/leaderboards; a published "
            "folder such as leaderboards/ is written only when named)"
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Exit 1 when any record could not be used (each is named)")
    ] = False,
) -> None:
    """Regenerate leaderboard tables from the run records."""
    from harness.errors import NotWritten
    from harness.paths import check_folder
    from harness.results.refresh import regenerate_all

    check_folder(runs_dir, "--runs-dir")
    tables = leaderboards_dir or runs_dir / "leaderboards"
    check_folder(tables, "--leaderboards-dir")
    excluded: list[Any] = []
    unwritten: NotWritten | None = None
    try:
        paths = regenerate_all(
            target,
            runs_dir,
            tables,
            report=_excluded(excluded),
            say=lambda line: say(f"harness: {line}"),
        )
    except NotWritten as exc:  # a full disk: the tables that could be written were
        unwritten, paths = exc, getattr(exc, "written", [])
    for path in paths:
        if path is not None:
            line(f"wrote {path}")
    if unwritten is not None:
        raise unwritten  # one line, exit 1
    if strict and excluded:
        say(f"harness: --strict: {len(excluded)} record(s) could not be used (named above)")
        raise typer.Exit(1)


def _excluded(heard: list[Any]) -> Any:
    """A report that names each record a table leaves out on stderr, one line each."""

    def report(unusable: Any) -> None:
        heard.append(unusable)
        say(f"harness: warning: {unusable}; left out of its table")

    return report
