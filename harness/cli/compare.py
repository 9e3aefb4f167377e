"""``harness compare``: two leaderboards aligned by entry (two ablation tables of one axis by
its values), with deltas and noise."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from harness.cli.root import err, line, out, text


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
    across_benchmarks: Annotated[
        bool,
        typer.Option(
            "--across-benchmarks",
            help="Compare tables of two benchmarks (another protocol hash or dataset) anyway; "
            "the output says what differs",
        ),
    ] = False,
) -> None:
    """Align two leaderboards by entry (two ablation tables of one axis by its values); show
    Dice and cost deltas; flag what is real.

    Each table is read from its JSON twin (given, or beside the markdown given); a table
    written before twins existed, from its markdown. A delta is real when its simultaneous
    95 % interval (both tables' noise models, corrected over the entries compared) excludes 0.
    Tables of two benchmarks are refused unless --across-benchmarks.
    """
    from harness.paths import check_output
    from harness.results.columns import COMPARE, DELTA_DICE
    from harness.results.compare import compare as compare_tables
    from harness.results.significance import difference_method
    from harness.results.tables import twin_path

    if html is not None:  # before any work: the page never replaces a table it reads
        inputs = [
            p for given in (a, b) for p in (given, twin_path(given), given.with_suffix(".md"))
        ]
        check_output(html, "--html", inputs)
    result = compare_tables(a, b, across_benchmarks)
    if result.differences:
        line(
            f"benchmarks differ: A is {result.benchmarks[0]}, B is {result.benchmarks[1]}; "
            + "; ".join(result.differences)
        )
    table = Table(title=text(f"{b.name} minus {a.name}"))
    for column in COMPARE:
        name = column.name if column.terminal_name is None else column.terminal_name
        if column.name == "Entry" and result.axis:  # two ablations: rows are the axis's values
            name = result.axis.capitalize()
        table.add_column(name, justify=column.align)
    for d in result.deltas:
        colour = "green" if d.dice > 0 else "red"
        colour = colour if d.real else "dim"
        row = d.data()
        table.add_row(*(text(c.cell(row), colour if c is DELTA_DICE else "") for c in COMPARE))
    out.print(table)
    if result.deltas:
        line("Noise: " + difference_method(result.tested), style="dim")
    for reason in result.unmodelled:
        line(reason, style="dim")
    for label, names in (("only in A", result.only_a), ("only in B", result.only_b)):
        if names:
            line(f"{label}: {'; '.join(names)}")
    if html is not None:
        from harness.results.pages import write_compare_page

        line(f"wrote {write_compare_page(result, a, b, html)}")
    if fail_below is not None:
        drops = result.drops_below(fail_below)
        for d in drops:
            line(f"harness: {d.entry}: Dice dropped by {-d.dice:.4f} (> {fail_below})", err)
        if drops:
            raise typer.Exit(1)
