"""Tuning spaces that components declare: the hyper-parameters a component wants tuned by
``harness tune``, and their ranges.

SGD wants a learning rate two orders of magnitude above Lion's, and a momentum: the range a
protocol gives every entry suits neither. A factory says what it wants with the
``harness.tunable`` decorator (which sets its ``tuning_space`` attribute; a factory may set
that attribute to the same mapping itself)::

    from harness import hookimpl, tunable

    @tunable(lr=(1e-3, 1.0, "log"), momentum=(0.8, 0.99))
    def sgd(params, *, lr, weight_decay, momentum: float = 0.9):
        ...

Each name is either a protocol field the harness tunes (``harness.protocol.TUNABLE``: ``lr``,
``weight_decay``, ``warmup_epochs``, ``grad_clip``), which the protocol then sets for the
entry, or one of the factory's own parameters, which ``harness tune`` passes into the factory
(``sgd:momentum=0.93``). An own parameter must take a float and have a numeric default: the
default is the configuration a tuning starts from. A range is ``(low, high)`` (sampled
uniformly) or ``(low, high, "log")`` (uniformly in log space, so ``low > 0``).

The declaration is read without calling the factory, and checked by ``harness check-plugin``
and by ``harness tune`` (``declared``): a name the factory does not take, bounds out of order,
a log range that reaches 0 are one line naming the component. Nothing else reads it: a run
of the component is the same with or without one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from harness.components.registry import SINGULAR, Registered
from harness.errors import HarnessError, visible
from harness.protocol import TUNABLE, Range, range_problem

#: The factory attribute that holds a declared space (``tunable`` sets it).
TUNING_SPACE = "tuning_space"
#: How a range is written: ``(low, high)``, ``(low, high, "log")`` or a ``Range``.
RangeSpec = tuple[float, float] | tuple[float, float, str] | Range
#: A declared name: a protocol field or a parameter (the entry's rule for keys).
KEY = re.compile(r"^[a-z_][a-z0-9_]*$")
#: The scales a range may name as its third item.
SCALES = ("linear", "log")

F = TypeVar("F", bound=Callable[..., Any])


def tunable(**ranges: RangeSpec) -> Callable[[F], F]:
    """Declare the hyper-parameters ``harness tune`` should tune for this factory and their
    ranges: ``@tunable(lr=(1e-3, 1.0, "log"), momentum=(0.8, 0.99))``. The factory is
    returned as it was, with its ``tuning_space`` attribute set (checked when it is used)."""

    def mark(factory: F) -> F:
        setattr(factory, TUNING_SPACE, dict(ranges))
        return factory

    return mark


@dataclass(frozen=True)
class Declared:
    """A component's declared space, checked: its ranges by name (sorted) and the default of
    each of its own parameters among them (the configuration a tuning starts from)."""

    #: ``optimizer``, ``loss``...: the entry field the component fills.
    field: str
    #: The component's name (``sgd``).
    name: str
    ranges: tuple[tuple[str, Range], ...]
    #: The factory's default of each declared own parameter.
    defaults: tuple[tuple[str, float], ...] = ()

    @property
    def fields(self) -> tuple[tuple[str, Range], ...]:
        """The protocol fields it declares (``lr``)."""
        return tuple((k, r) for k, r in self.ranges if k in TUNABLE)

    @property
    def params(self) -> tuple[tuple[str, Range], ...]:
        """Its own parameters it declares (``momentum``)."""
        return tuple((k, r) for k, r in self.ranges if k not in TUNABLE)

    def describe(self) -> dict[str, str]:
        """Each declared name with its range in words (``harness show``, ``harness list``)."""
        return {k: str(r) for k, r in self.ranges}


def declared(component: Registered) -> Declared | None:
    """The space ``component`` declares (None: it declares none); a bad declaration is a
    one-line ``HarnessError`` naming the component and what is wrong."""
    raw = getattr(component.factory, TUNING_SPACE, None)
    if raw is None:
        return None
    ranges, wrong = _read(component, raw)
    if wrong is not None:
        noun = SINGULAR.get(component.kind, component.kind)
        raise HarnessError(
            f"{noun} '{component.name}' from {component.provider()} declares a bad tuning "
            f"space: {wrong}; fix its @tunable(...) declaration "
            f"(`harness check-plugin {component.name}` checks it)"
        )
    own = {p.name: p for p in component.parameters().own}
    defaults = tuple((k, float(own[k].default)) for k, _ in ranges if k not in TUNABLE)
    return Declared(SINGULAR[component.kind], component.name, ranges, defaults)


def problem(component: Registered) -> str | None:
    """What is wrong with the space ``component`` declares, in one line (None: nothing, or
    it declares none)."""
    try:
        declared(component)
    except HarnessError as exc:
        return str(exc)
    return None


def _read(component: Registered, raw: Any) -> tuple[tuple[tuple[str, Range], ...], str | None]:
    """The declared ranges, sorted by name, and the first problem (None: none)."""
    if not isinstance(raw, Mapping) or not raw:
        return (), "expected a mapping of names to ranges, e.g. @tunable(lr=(1e-4, 1e-2, 'log'))"
    out: list[tuple[str, Range]] = []
    for name, spec in raw.items():
        shown = visible(name, 60)
        if not isinstance(name, str) or not KEY.match(name):
            return (), f"{shown}: not a parameter name (lower-case letters, digits, underscores)"
        found = _range(spec)
        if isinstance(found, str):
            return (), f"{shown}: {visible(found, 200)}"
        wrong = None if name in TUNABLE else _parameter_problem(component, name)
        if wrong is not None:
            return (), f"{shown}: {wrong}"
        out.append((name, found))
    return tuple(sorted(out)), None


def _range(spec: Any) -> Range | str:
    """A ``Range`` from ``(low, high)``, ``(low, high, "log"|"linear")`` or a ``Range``; or
    why it is none."""
    if isinstance(spec, Range):
        low, high, log = spec.low, spec.high, spec.log
    elif isinstance(spec, tuple | list) and len(spec) in (2, 3):
        scale = spec[2] if len(spec) == 3 else "linear"
        if scale not in SCALES:
            return f"the scale {scale!r} is not one of {', '.join(SCALES)}"
        low, high, log = spec[0], spec[1], scale == "log"
    else:
        return f"{spec!r} is not (low, high) or (low, high, 'log')"
    wrong = range_problem(low, high, log)
    return Range(float(low), float(high), log) if wrong is None else wrong


def _parameter_problem(component: Registered, name: str) -> str | None:
    """Why the factory's own parameter ``name`` cannot be tuned (None: it can)."""
    own = component.parameters()
    if not own.readable:
        return "the factory's signature cannot be read, so its parameters cannot be tuned"
    if name in own.contract:
        return f"'{name}' is the harness's own argument, not a parameter or a protocol field"
    found = {p.name: p for p in own.own}.get(name)
    if found is None:
        takes = ", ".join(own.names()) or "none"
        return (
            f"not a parameter of the factory (it takes {takes}) nor a protocol field "
            f"({', '.join(TUNABLE)})"
        )
    if found.types is not None and float not in found.types:
        return f"the parameter is {found.annotation}; only a float parameter can be tuned"
    default = found.default
    if isinstance(default, bool) or not isinstance(default, int | float):
        return "the parameter needs a numeric default (the configuration tuning starts from)"
    return None
