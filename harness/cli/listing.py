"""``harness list``: the protocols and every component, with who provides it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from harness.cli.root import out
from harness.components.kinds import COMPONENT_KINDS
from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.components.registry import Registered

#: Narrower than this, a description wraps rather than being cut to one line.
_DESCRIPTION_MIN = 24
#: What ``harness list`` shows: each kind of component (in the one table of kinds), protocols.
LIST_KINDS = (*(kind.plural for kind in COMPONENT_KINDS), "protocols")


def list_(
    kind: Annotated[str | None, typer.Argument(help=f"One of: {', '.join(LIST_KINDS)}")] = None,
    plugin: Annotated[
        list[str] | None, typer.Option(help="Extra plugin module or .py file")
    ] = None,
) -> None:
    """Show every component with the plugin and distribution that provides it."""
    from harness import protocol as protocols
    from harness.components.registry import KINDS, Registry

    if kind is not None and kind not in LIST_KINDS:
        raise HarnessError(f"harness list {kind!r}: choose one of {', '.join(LIST_KINDS)}")
    if kind in (None, "protocols"):
        table = Table(title="protocols")
        for col in ("name", "hash", "description"):
            table.add_column(col)
        for p in protocols.builtins():
            table.add_row(p.name, p.hash, p.description)
        out.print(table)
    if kind == "protocols":
        return
    registry = Registry.load(plugin or ())
    for k in [kind] if kind else KINDS:
        out.print(_components_table(k, registry.components(k).values()))
    out.print("`harness show KIND NAME` describes one, with its parameters.", markup=False)


def _components_table(kind: str, components: Iterable[Registered]) -> Table:
    """Name, plugin, distribution and the docstring's first line: cut to one line where the
    terminal is wide enough for the other columns to stay whole (`harness show` has the
    rest), else wrapped."""
    from harness.components.describe import space_summary, summary

    components = list(components)
    rows = [
        (c.name, c.plugin, f"{c.distribution} {c.version}" if c.distribution else "—",
         space_summary(c), summary(c.factory))
        for c in components
    ]  # fmt: skip
    # The tuning space column only for a kind where some component declares one.
    spaced = any(row[3] for row in rows)
    rows = [row if spaced else (*row[:3], row[4]) for row in rows]
    columns = ("name", "plugin", "distribution", *(("tuning space",) if spaced else ()))
    columns += ("description",)
    fixed_width = len(columns) - 1
    widths = [max([len(col), *(len(row[i]) for row in rows)]) for i, col in enumerate(columns)]
    room = out.width - sum(widths[:fixed_width]) - 3 * len(columns) - 1  # borders and padding
    table = Table(title=kind)
    for col in columns:
        table.add_column(col, no_wrap=col == "name")
    for *fixed, about in rows:
        text = Text(about)
        if room >= _DESCRIPTION_MIN:
            text.truncate(room, overflow="ellipsis")
        table.add_row(*fixed, text)
    return table
