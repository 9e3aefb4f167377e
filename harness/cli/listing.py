"""``harness list``: the protocols and every component, with who provides it."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from harness.cli.root import out
from harness.components.kinds import COMPONENT_KINDS
from harness.errors import HarnessError

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
        table = Table(title=k)
        for col in ("name", "plugin", "distribution"):
            table.add_column(col)
        for component in registry.components(k).values():
            dist = (
                f"{component.distribution} {component.version}" if component.distribution else "—"
            )
            table.add_row(component.name, component.plugin, dist)
        out.print(table)
