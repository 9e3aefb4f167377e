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
    from harness.results.columns import COMPARE, DELTA_DICE
    from harness.results.compare import compare as compare_tables
    from harness.results.significance import DIFFERENCE_METHOD

    result = compare_tables(a, b)
    table = Table(title=f"{b.name} minus {a.name}")
    for column in COMPARE:
        name = column.name if column.terminal_name is None else column.terminal_name
        table.add_column(name, justify=column.align)
    for d in result.deltas:
        noise = d.within_noise
        colour = "dim" if noise in (True, None) else ("green" if d.dice > 0 else "red")
        row = d.data()
        table.add_row(
            *(
                f"[{colour}]{c.cell(row)}[/{colour}]" if c is DELTA_DICE else c.cell(row)
                for c in COMPARE
            )
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
