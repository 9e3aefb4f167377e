"""``harness compare``: two leaderboards aligned by entry, with deltas and noise."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from harness.cli.root import err, out


def compare(
    a: Annotated[
        Path, typer.Argument(help="The reference leaderboard (its .json twin, or its .md)")
    ],
    b: Annotated[Path, typer.Argument(help="The leaderboard to compare with it (.json or .md)")],
    fail_below: Annotated[
        float | None,
        typer.Option(help="Exit 1 when a shared row's Dice drops by more than this"),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(help="Also write the comparison as a self-contained web page to this file"),
    ] = None,
) -> None:
    """Align two leaderboards by entry; show Dice and cost deltas; flag what is within noise.

    Each table is read from its JSON twin (given, or beside the markdown given); a table
    written before twins existed, from its markdown.
    """
    from harness.results.compare import compare as compare_tables
    from harness.results.significance import DIFFERENCE_METHOD

    result = compare_tables(a, b)
    table = Table(title=f"{b.name} minus {a.name}")
    for col in ("Entry", "A Dice", "B Dice", "Δ Dice", "", "Δ img/s", "Δ peak MB"):
        table.add_column(col, justify="left" if col == "Entry" else "right")
    for d in result.deltas:
        noise = d.within_noise
        colour = "dim" if noise in (True, None) else ("green" if d.dice > 0 else "red")
        mark = {True: "within noise", False: "real", None: "noise unknown"}[noise]
        table.add_row(
            d.entry,
            f"{d.a.mean:.4f}",
            f"{d.b.mean:.4f}",
            f"[{colour}]{d.dice:+.4f}[/{colour}]",
            mark,
            _signed(d.cost("images_per_s"), 1),
            _signed(d.cost("peak_mb"), 0),
        )
    out.print(table)
    if result.deltas:
        out.print(DIFFERENCE_METHOD, style="dim", markup=False, highlight=False)
    for label, names in (("only in A", result.only_a), ("only in B", result.only_b)):
        if names:
            out.print(f"{label}: {'; '.join(names)}", markup=False)
    if html is not None:
        from harness.results.pages import write_compare_page

        out.print(f"wrote {write_compare_page(result, a, b, html)}", soft_wrap=True)
    if fail_below is not None:
        drops = result.drops_below(fail_below)
        for d in drops:
            err.print(f"harness: {d.entry}: Dice dropped by {-d.dice:.4f} (> {fail_below})")
        if drops:
            raise typer.Exit(1)


def _signed(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:+.{digits}f}"
