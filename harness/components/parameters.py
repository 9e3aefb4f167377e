"""A component's own parameters, read from its factory's signature without calling it.

A factory's signature says what the component takes: the harness's own arguments first
(``harness.components.kinds``: an optimizer's parameters and ``lr``, a model's
``num_classes`` ...), then the component's parameters with their defaults and types. This
module reads the second part, with nothing imported (a plugin written with
``from __future__ import annotations`` has its annotations as text, and they are read as
text), so that ``harness show`` can describe a component and a value that cannot be right
(an unknown name where the factory takes no others, ``smooth=abc`` for a ``float``) is
refused before any data or model work.

Only what the signature says for certain is refused: a factory with ``**params`` passes
further names on (to SMP, to torch) and they are left to it; an annotation that is not a
plain scalar type (``int``, ``float``, ``bool``, ``str``, ``None`` and their unions) is not
checked.
"""

from __future__ import annotations

import difflib
import inspect
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.components.kinds import Kind

#: A parameter's default when it has none (it must be given).
REQUIRED = inspect.Parameter.empty

_SCALARS: dict[str, type] = {
    "int": int,
    "float": float,
    "bool": bool,
    "str": str,
    "None": type(None),
}
_OPTIONAL = re.compile(r"^(?:typing\.)?Optional\[(?P<inner>[^\[\]]+)\]$")


@dataclass(frozen=True)
class Parameter:
    """One parameter of a component: its name, its annotation as written, its default."""

    name: str
    #: The annotation as the factory writes it (``float``, ``str | None``); "" when none.
    annotation: str
    #: The default value, ``REQUIRED`` when the factory has none.
    default: Any = REQUIRED

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def types(self) -> frozenset[type] | None:
        """The scalar types the annotation allows (None: not a plain scalar type)."""
        return _scalar_types(self.annotation)


@dataclass(frozen=True)
class Parameters:
    """What a factory takes beyond the harness's own arguments."""

    own: tuple[Parameter, ...] = ()
    #: The factory takes further keyword parameters (``**params``) and passes them on.
    open: bool = False
    #: False when the signature cannot be read (a builtin): then nothing is checked.
    readable: bool = True
    #: The harness's own arguments for this kind (``lr``, ``image_size``): never parameters.
    contract: tuple[str, ...] = ()

    def names(self) -> list[str]:
        return [p.name for p in self.own]

    def problem(self, key: str, value: Any) -> str | None:
        """Why ``key=value`` cannot be given to this factory, or None when it may be."""
        if key in self.contract:
            return f"'{key}' is the harness's own argument (from the protocol), not a parameter"
        if not self.readable:
            return None
        by_name = {p.name: p for p in self.own}
        if key not in by_name:
            return None if self.open else self._unknown(key)
        allowed = by_name[key].types
        if allowed is None or _fits(value, allowed):
            return None
        shown = str(value).lower() if isinstance(value, bool) else str(value)
        return (
            f"{key}={shown} is {_a(type(value).__name__)}, not {_a(by_name[key].annotation)} "
            f"(values are read as TOML: 0.5, 3, true, a word)"
        )

    def _unknown(self, key: str) -> str:
        names = self.names()
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        takes = f"it takes {', '.join(names)}" if names else "it takes none"
        return f"no parameter '{key}'{hint} ({takes})"


def _a(noun: str) -> str:
    return f"{'an' if noun[:1] in ('a', 'e', 'i', 'o', 'u') else 'a'} {noun}"


def parameters(factory: Callable[..., Any], kind: Kind) -> Parameters:
    """The parameters ``factory`` takes as a component of ``kind``: its signature without
    the first ``kind.positional`` arguments and without ``kind.contract``'s keywords."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return Parameters(readable=False, contract=kind.contract)
    skip = kind.positional
    own: list[Parameter] = []
    open_ = False
    for p in signature.parameters.values():
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and skip:
            skip -= 1
        elif p.kind is p.VAR_KEYWORD:
            open_ = True
        elif p.kind is not p.VAR_POSITIONAL and p.name not in kind.contract:
            own.append(Parameter(p.name, _annotation_text(p.annotation), p.default))
    return Parameters(tuple(own), open_, contract=kind.contract)


def _annotation_text(annotation: Any) -> str:
    """An annotation as written: the text itself, a type's name, or its ``repr``."""
    if annotation is inspect.Parameter.empty:
        return ""
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return repr(annotation).replace("typing.", "").replace("NoneType", "None")


def _scalar_types(text: str) -> frozenset[type] | None:
    """``float`` -> {float}; ``str | None`` -> {str, NoneType}; anything else -> None."""
    text = text.strip()
    optional = _OPTIONAL.match(text)
    if optional:
        inner = _scalar_types(optional["inner"])
        return None if inner is None else inner | {type(None)}
    if not text or "[" in text:
        return None
    found = [_SCALARS.get(part.strip()) for part in text.split("|")]
    return None if None in found else frozenset(t for t in found if t is not None)


def _fits(value: Any, allowed: frozenset[type]) -> bool:
    """Whether a value read from the command line (a TOML scalar) fits the types: an int
    fits a float, a bool fits only a bool."""
    if isinstance(value, bool):
        return bool in allowed
    if isinstance(value, int):
        return int in allowed or float in allowed
    return type(value) in allowed
