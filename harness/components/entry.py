"""Entries: the plugin choices that vary between rows of one leaderboard.

A component is written on the command line as ``NAME`` or ``NAME:KEY=VALUE,KEY=VALUE``
(e.g. ``--loss combo:dice=0.7,bce=0.3``). Values are read as TOML scalars, so
``0.7`` is a float, ``3`` an int, ``true`` a bool and a bare word a string.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.components.kinds import TRAINING_KINDS
from harness.errors import HarnessError
from harness.protocol import TUNABLE, Protocol

_KEY = re.compile(r"^[a-z_][a-z0-9_]*$")
Scalar = str | int | float | bool


@dataclass(frozen=True)
class Component:
    """One plugin choice: its public name and the parameters given to its factory."""

    name: str
    params: tuple[tuple[str, Scalar], ...] = ()

    @property
    def kwargs(self) -> dict[str, Scalar]:
        return dict(self.params)

    def __str__(self) -> str:
        if not self.params:
            return self.name
        return self.name + ":" + ",".join(f"{k}={_format(v)}" for k, v in self.params)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.kwargs}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Component:
        return cls(data["name"], tuple(sorted(data.get("params", {}).items())))


def _format(value: Scalar) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def parse_component(text: str, option: str) -> Component:
    """Parse ``NAME[:KEY=VALUE,...]``; ``option`` (e.g. ``--loss``) is named in errors."""
    name, _, rest = text.strip().partition(":")
    name = name.strip()
    if not name:
        raise HarnessError(f"{option} {text!r}: missing a name, e.g. {option} dice")
    params: dict[str, Scalar] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))) if rest else ():
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not _KEY.match(key):
            raise HarnessError(
                f"{option} {text!r}: parameter {item!r} must be KEY=VALUE "
                f"(e.g. {option} {name}:alpha=0.5)"
            )
        if key in params:
            raise HarnessError(f"{option} {text!r}: parameter {key!r} given twice")
        params[key] = _parse_scalar(raw.strip())
    return Component(name, tuple(sorted(params.items())))


def _parse_scalar(raw: str) -> Scalar:
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw
    return value if isinstance(value, str | int | float | bool) else raw


#: Entry field -> plugin kind ("loss" -> "losses"), in table order (``harness.components.kinds``).
KINDS_BY_FIELD: dict[str, str] = {kind.field: kind.plural for kind in TRAINING_KINDS}


@dataclass(frozen=True)
class Entry:
    """What one leaderboard row varies: five components and an optional encoder override."""

    model: Component
    loss: Component
    optimizer: Component
    scheduler: Component
    augmentation: Component
    encoder: str | None = None
    tta: str = "none"
    #: Protocol fields the entry sets for itself, e.g. ``(("lr", 0.03),)``: a tuned entry's
    #: chosen values or a tuning trial's sampled ones (``--hparam``). They replace the
    #: protocol's values in training; the benchmark (and its hash) stays the protocol's.
    hparams: tuple[tuple[str, float], ...] = ()
    #: The tuning budget that chose ``hparams``: ``"<trials>-<tuning hash>"`` (None: not tuned).
    tuned: str | None = None
    #: The precision its runs trained in when not fp32 (``bf16``, ``fp16``): the same
    #: components in another precision are another measurement, with a row of their own.
    precision: str | None = None

    def components(self) -> dict[str, Component]:
        return {f: getattr(self, f) for f in KINDS_BY_FIELD}

    @property
    def label(self) -> str:
        """The row's name in a leaderboard: every component with its parameters, then the
        entry's own hyperparameters (``tuned 8: lr=0.03`` when a tuning budget chose them)."""
        parts = [str(self.model) + (f" ({self.encoder})" if self.encoder else "")]
        parts += [str(c) for f, c in self.components().items() if f != "model"]
        if self.tta != "none":
            parts.append(f"tta {self.tta}")
        values = ", ".join(f"{k}={v:.3g}" for k, v in self.hparams)
        if self.tuned:
            parts.append(f"tuned {self.tuned.split('-')[0]}: {values}")
        elif values:
            parts.append(values)
        if self.precision:
            parts.append(self.precision)
        return " · ".join(parts)

    @property
    def key(self) -> str:
        """A stable identity for grouping the seeds of one entry."""
        key = "|".join(str(c) for c in self.components().values()) + f"|{self.encoder or ''}"
        if self.tta != "none":
            key += f"|tta={self.tta}"
        if self.hparams:
            key += "|" + ",".join(f"{k}={v!r}" for k, v in self.hparams)
        key += f"|tuned={self.tuned}" if self.tuned else ""
        return key + (f"|precision={self.precision}" if self.precision else "")

    def protocol_for(self, protocol: Protocol) -> Protocol:
        """``protocol`` with the entry's own hyperparameters (the same protocol without any)."""
        if not self.hparams:
            return protocol
        return dataclasses.replace(protocol, **dict(self.hparams))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {f: c.to_dict() for f, c in self.components().items()}
        data["encoder"] = self.encoder
        data["tta"] = self.tta
        data.update(self.extras())
        return data

    def extras(self) -> dict[str, Any]:
        """``hparams``, ``tuned`` and ``precision`` as a record writes them (nothing for an
        entry without)."""
        out: dict[str, Any] = {}
        if self.hparams:
            out["hparams"] = dict(self.hparams)
        if self.tuned:
            out["tuned"] = self.tuned
        if self.precision:
            out["precision"] = self.precision
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entry:
        comps = {f: Component.from_dict(data[f]) for f in KINDS_BY_FIELD}
        hparams = tuple((str(k), float(v)) for k, v in (data.get("hparams") or {}).items())
        return cls(
            **comps,
            encoder=data.get("encoder"),
            tta=data.get("tta", "none"),
            hparams=hparams,
            tuned=data.get("tuned"),
            precision=data.get("precision"),
        )


def parse_hparams(items: Sequence[str]) -> tuple[tuple[str, float], ...]:
    """``--hparam lr=0.03`` (repeatable): protocol fields the entry sets for itself."""
    out: dict[str, float] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or key not in TUNABLE:
            raise HarnessError(
                f"--hparam {item!r}: expected FIELD=NUMBER with FIELD one of {', '.join(TUNABLE)}"
            )
        try:
            value = float(raw)
        except ValueError:
            raise HarnessError(f"--hparam {item!r}: {raw.strip()!r} is not a number") from None
        if key in out:
            raise HarnessError(f"--hparam {key}: given twice")
        out[key] = value
    return tuple(sorted(out.items()))
