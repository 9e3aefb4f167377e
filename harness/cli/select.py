"""``harness select``: the ensemble, test-time augmentation and post-processing to ship,
chosen on the cross-validated folds' kept predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli import bars
from harness.cli.root import err, line, say


def _names(text: str | None) -> tuple[str, ...] | None:
    """``none,hflip``: the names in order, each once (None: not given)."""
    if text is None:
        return None
    return tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))


def select(
    benchmark: Annotated[
        str,
        typer.Argument(
            help="A cross-validated benchmark (--folds all) whose runs kept their predictions "
            "(--keep-predictions)"
        ),
    ],
    entries: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[ENTRY]...",
            help="Entries to ensemble, by folder name (runs/<benchmark>/<entry>) or folder; "
            "default: every entry that kept its predictions on every fold",
        ),
    ] = None,
    max_members: Annotated[
        int, typer.Option(help="The largest ensemble tried (1: each entry alone; 2: and pairs)")
    ] = 2,
    tta: Annotated[
        str | None,
        typer.Option(
            help="Test-time augmentations to try, comma-separated (default: every one the runs "
            "kept; none is always tried)"
        ),
    ] = None,
    postprocessor: Annotated[
        str | None,
        typer.Option(
            help="Post-processors to try, comma-separated (default: every one installed; none "
            "is always tried)"
        ),
    ] = None,
    runs_dir: Annotated[Path, typer.Option(help="Where the run records are")] = Path("runs"),
    leaderboards_dir: Annotated[
        Path | None,
        typer.Option(help="Where the table goes (default: <runs-dir>/leaderboards)"),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(help="The benchmark's dataset (default: the built-in phantom it names)"),
    ] = None,
    plugin: Annotated[
        list[str] | None, typer.Option(help="Extra plugin module or .py file (repeatable)")
    ] = None,
) -> None:
    """Rank every entry and ensemble, with every test-time augmentation and post-processor, by
    cross-validated Dice from the runs' kept predictions; write the table and print the
    `harness predict` command that ships #1."""
    from harness.paths import check_folder
    from harness.studies.select import SelectRequest
    from harness.studies.select import select as run

    request = SelectRequest(
        benchmark=benchmark,
        entries=tuple(entries or ()),
        max_members=max_members,
        tta=_names(tta),
        postprocessors=_names(postprocessor),
        runs_dir=runs_dir,
        leaderboards_dir=leaderboards_dir,
        data=data,
        plugins=tuple(plugin or ()),
    )
    request.check()  # one line before anything is read
    check_folder(runs_dir, "--runs-dir")
    check_folder(request.table.parent, "--leaderboards-dir")
    with bars.bar("Scoring", err) as progress:
        made = run(request, progress=progress, say=lambda text: say(f"harness: {text}"))
    rows = made.data["rows"]
    for row in rows[:5]:
        line(f"#{row['rank']} {row['entry']}: CV Dice {row['mean_dice']:.4f} ({row['vs_leader']})")
    held = made.data["held_out"]
    if held.get("scored"):
        line(f"held-out test images: #1 scores {held['mean_dice']:.4f} on {held['images']}")
    else:
        line(f"held-out test images: not scored ({held.get('reason')})")
    if made.table is not None:
        line(f"wrote {made.table}")
    line(f"ship #1: {made.command}")
