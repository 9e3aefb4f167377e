"""``harness check-plugin``: the conformance check of one component."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from harness.cli.root import line, out, text


def check_plugin(
    name: Annotated[str, typer.Argument(help="Component name, optionally NAME:KEY=VALUE,...")],
    kind: Annotated[str | None, typer.Option(help="models, losses, ... (when ambiguous)")] = None,
    encoder: Annotated[str | None, typer.Option(help="Encoder for a model's check")] = None,
    plugin: Annotated[
        list[str] | None, typer.Option(help="Extra plugin module or .py file")
    ] = None,
) -> None:
    """Conformance check of one component; exit 1 when any check fails, 2 when its declared
    tuning space is bad."""
    from harness.components.conformance import check_component, resolve_kind
    from harness.components.entry import parse_component
    from harness.components.registry import Registry
    from harness.components.spaces import declared

    spec = parse_component(name, "check-plugin")
    registry = Registry.load(plugin or ())
    kind = resolve_kind(registry, spec.name, kind)
    declared(registry.get(kind, spec.name))  # a bad declaration: one line, exit 2
    report = check_component(registry, kind, spec.name, spec.kwargs, encoder=encoder)
    table = Table(title=text(report.title))
    for col in ("check", "result", "detail"):
        table.add_column(col)
    for check in report.checks:
        result = text("pass", "green") if check.passed else text("FAIL", "red")
        table.add_row(text(check.name), result, text(check.detail))
    out.print(table)
    line(report.summary)
    if not report.ok:
        raise typer.Exit(1)
