"""``harness show KIND NAME``: one component's provider, parameters, docstring and tuning space."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from harness.cli.root import out

if TYPE_CHECKING:
    from harness.components.describe import Description


def show(
    kind: Annotated[
        str,
        typer.Argument(
            help="models, losses, optimizers, schedulers, augmentations, tta or postprocessors"
        ),
    ],
    name: Annotated[str, typer.Argument(help="The component's name, e.g. dice")],
    plugin: Annotated[
        list[str] | None, typer.Option(help="Extra plugin module or .py file")
    ] = None,
) -> None:
    """Show a component: its provider, its parameters with types and defaults, what it does."""
    from harness.components.describe import describe
    from harness.components.registry import Registry

    info = describe(Registry.load(plugin or ()), kind, name)
    lines = _heading(info) + _parameters(info)
    if info.tuning_space is not None:
        width = max(len(k) for k in info.tuning_space)
        lines += [
            "",
            "Tuning space (harness tune; the protocol's [tuning.space] for the rest):",
            *(f"  {k:<{width}}  {v}" for k, v in info.tuning_space.items()),
        ]
    elif info.tuning_problem is not None:
        lines += ["", f"Tuning space: invalid: {info.tuning_problem}"]
    for line in lines:
        out.print(line, markup=False, highlight=False, soft_wrap=True)


def _heading(info: Description) -> list[str]:
    from harness.components.kinds import BY_PLURAL

    component = info.component
    lines = [
        f"{BY_PLURAL[component.kind].field} {component.name}",
        f"  provided by {component.provider()}",
    ]
    if info.about:
        lines += ["", info.about]
    option = BY_PLURAL[component.kind].option
    lines += ["", f"Parameters ({option} {component.name}:KEY=VALUE,...):"]
    return lines


def _parameters(info: Description) -> list[str]:
    """A line per parameter (name, type, default, aligned); what the factory does with others."""
    own = info.parameters
    if not own.readable:
        return ["  its factory's signature cannot be read"]
    rows = [
        (p.name, p.annotation or "—", "required" if p.required else f"default {_shown(p.default)}")
        for p in own.own
    ]
    width = [max((len(row[i]) for row in rows), default=0) for i in range(2)]
    lines = [f"  {n:<{width[0]}}  {t:<{width[1]}}  {d}" for n, t, d in rows]
    if own.open:
        lines.append("  further parameters go to what the factory builds (it takes **params)")
    return lines or ["  none"]


def _shown(value: Any) -> str:
    """A default as the command line writes it (``true``, ``0.5``, ``None``)."""
    return str(value).lower() if isinstance(value, bool) else str(value)
