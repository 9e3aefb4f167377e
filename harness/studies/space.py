"""The space an entry is tuned over: the union of what its components declare and, for what
none declares, the protocol's ``[tuning.space]``; less what the protocol fixes
(``[tuning] fixed``) and what the entry sets itself (``--optimizer sgd:momentum=0.95``).

A component declares protocol fields (``lr``: the protocol sets it for the entry, as
``--hparam`` does) or its own parameters (``momentum``: passed into its factory, as
``sgd:momentum=0.93`` is). An own parameter is named after the entry field of its component
(``optimizer.momentum``), so two components' parameters never share a name; a trial's values
and a tuned record's ``tuning.space`` use these names. Two components that declare the same
protocol field would each want their own range for it: that is refused in one line.

A sampled own parameter is rounded to 4 significant digits before it trains, so the value in
the entry's name (``sgd:momentum=0.9312``) is the value it trained with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.components import spaces
from harness.components.entry import KINDS_BY_FIELD, Component, Entry
from harness.components.registry import Registry
from harness.errors import HarnessError
from harness.protocol import Protocol, Range
from harness.runs.requests import RunRequest

#: Where a range comes from when no component declares it.
PROTOCOL = "protocol"
#: Significant digits an own parameter is rounded to.
DIGITS = 4


@dataclass(frozen=True)
class Dimension:
    """One tuned hyper-parameter: its name, range, who chose the range and its default."""

    #: ``lr`` (a protocol field) or ``optimizer.momentum`` (a component's own parameter).
    name: str
    range: Range
    #: ``protocol``, or the name of the component that declared it (``sgd``).
    source: str
    #: What the entry trains with when it is not tuned: the protocol's value, or the
    #: factory's default (the default configuration, a halving study's first).
    default: float

    @property
    def field(self) -> str | None:
        """The entry field of the component that takes it (``optimizer``); None: a protocol
        field."""
        head, dot, _ = self.name.partition(".")
        return head if dot else None

    @property
    def param(self) -> str:
        """The name its factory (or the protocol) knows it by: ``momentum``, ``lr``."""
        return self.name.rpartition(".")[2]


@dataclass(frozen=True)
class EntrySpace:
    """Every dimension an entry is tuned over, sorted by name (the sampler's order)."""

    dimensions: tuple[Dimension, ...]

    @property
    def ranges(self) -> tuple[tuple[str, Range], ...]:
        """The space as a budget holds it (``Tuning.space``)."""
        return tuple((d.name, d.range) for d in self.dimensions)

    @property
    def own(self) -> bool:
        """Whether a component chose any range (the entry has a space of its own)."""
        return any(d.source != PROTOCOL for d in self.dimensions)

    @property
    def defaults(self) -> dict[str, float]:
        """The default configuration: each dimension at the value it has untuned."""
        return {d.name: d.default for d in self.dimensions}

    def to_dict(self) -> dict[str, Any]:
        """As a record's ``tuning.space`` holds it: each name with its range and source."""
        return {d.name: {**dataclasses.asdict(d.range), "from": d.source} for d in self.dimensions}

    def words(self) -> str:
        """Who declared what (``own space: lr, optimizer.momentum from sgd``); "" when the
        protocol chose every range."""
        by: dict[str, list[str]] = {}
        for d in self.dimensions:
            if d.source != PROTOCOL:
                by.setdefault(d.source, []).append(d.name)
        if not by:
            return ""
        return "own space: " + "; ".join(f"{', '.join(n)} from {s}" for s, n in by.items())

    def rounded(self, values: Mapping[str, float]) -> dict[str, float]:
        """A sampled point as it trains: own parameters rounded to ``DIGITS`` digits."""
        fields = {d.name for d in self.dimensions if d.field is not None}
        return {k: float(f"{v:.{DIGITS}g}") if k in fields else v for k, v in values.items()}

    def hparams(self, values: Mapping[str, float]) -> tuple[tuple[str, float], ...]:
        """The protocol fields among ``values``, as an entry's ``hparams``."""
        return tuple(sorted((k, float(v)) for k, v in values.items() if "." not in k))

    def request(self, request: RunRequest, entry: Entry, values: Mapping[str, float]) -> RunRequest:
        """``request`` with ``values``: the protocol fields as the entry's ``hparams``, each
        own parameter in its component's parameters (``sgd:momentum=0.9312``)."""
        changes: dict[str, Any] = {"hparams": self.hparams(values)}
        params: dict[str, dict[str, float]] = {}
        for d in self.dimensions:
            if d.field is not None and d.name in values:
                params.setdefault(d.field, {})[d.param] = values[d.name]
        for field, chosen in params.items():
            component: Component = getattr(entry, field)
            merged = tuple(sorted({**component.kwargs, **chosen}.items()))
            changes[field] = str(Component(component.name, merged))
        return request.replace(**changes)


def entry_space(entry: Entry, proto: Protocol, registry: Registry) -> EntrySpace:
    """The space ``entry`` is tuned over under ``proto``'s budget: the protocol's space, each
    range a component declares in its place, less the fields the protocol fixes and the
    parameters the entry sets. A bad declaration, a field two components declare, or nothing
    left to tune is one line."""
    dims = {k: Dimension(k, r, PROTOCOL, float(getattr(proto, k))) for k, r in proto.tuning.space}
    claimed: dict[str, str] = {}
    for field, component in entry.components().items():
        found = spaces.declared(registry.get(KINDS_BY_FIELD[field], component.name))
        if found is None:
            continue
        for name, rng in found.fields:
            if name in claimed:
                raise HarnessError(
                    f"{name} is declared by both {claimed[name]} and {field} '{component.name}', "
                    "each with its own range; harness tune cannot use both: a protocol field "
                    "belongs in one component's declared space"
                )
            claimed[name] = f"{field} '{component.name}'"
            dims[name] = Dimension(name, rng, component.name, float(getattr(proto, name)))
        defaults = dict(found.defaults)
        for name, rng in found.params:
            if name not in component.kwargs:  # the entry's own choice is not tuned
                key = f"{field}.{name}"
                dims[key] = Dimension(key, rng, component.name, defaults[name])
    for name in proto.tuning.fixed:
        dims.pop(name, None)
    if not dims:
        raise HarnessError(
            f"protocol {proto.name!r}: nothing is left to tune for {entry.label} (the protocol "
            "fixes every field its space and the components name)"
        )
    return EntrySpace(tuple(dims[k] for k in sorted(dims)))
