"""What a component is, for people: who provides it, its parameters, what its docstring
says, and the tuning space it declares, read without building it (``harness show``,
``harness list``'s description column)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.components import spaces
from harness.components.kinds import BY_FIELD, BY_PLURAL
from harness.components.parameters import Parameters
from harness.components.registry import Registered, Registry
from harness.errors import HarnessError


@dataclass(frozen=True)
class Description:
    """One component described: ``harness show KIND NAME`` renders it."""

    component: Registered
    #: Its own parameters (the harness's arguments left out), from the factory's signature.
    parameters: Parameters
    #: The first paragraph of the factory's docstring ("" when it has none).
    about: str
    #: The hyper-parameters it asks to be tuned and their ranges in words, when it declares
    #: them (``harness.components.spaces``).
    tuning_space: Mapping[str, Any] | None = None
    #: What is wrong with the space it declares, in one line (None: nothing, or none declared).
    tuning_problem: str | None = None


def plural_of(kind: str) -> str:
    """``model`` or ``models`` -> ``models``; any other text as it is (for the registry to
    name the near matches)."""
    found = BY_FIELD.get(kind) or BY_PLURAL.get(kind)
    return found.plural if found is not None else kind


def describe(registry: Registry, kind: str, name: str) -> Description:
    """Component ``name`` of ``kind`` (plural or singular) described; an unknown kind or
    name is the registry's one-line error with the near matches."""
    component = registry.get(plural_of(kind), name)
    return Description(
        component=component,
        parameters=component.parameters(),
        about=first_paragraph(component.factory),
        tuning_space=declared_tuning_space(component),
        tuning_problem=spaces.problem(component),
    )


def declared_tuning_space(component: Registered) -> Mapping[str, Any] | None:
    """The tuning space ``component`` declares, each name with its range in words
    (``lr: [0.001, 1] log``); None when it declares none, or declares a bad one (whose
    problem ``spaces.problem`` says)."""
    try:
        found = spaces.declared(component)
    except HarnessError:
        return None
    return None if found is None else found.describe()


def space_summary(component: Registered) -> str:
    """The declared space on one line (``lr [0.001, 1] log, momentum [0.8, 0.99]``): "" when
    it declares none, ``invalid (...)`` when it declares a bad one (``harness list``)."""
    if spaces.problem(component) is not None:
        return f"invalid (harness check-plugin {component.name})"
    found = declared_tuning_space(component) or {}
    return ", ".join(f"{k} {v}" for k, v in found.items())


def first_paragraph(factory: Callable[..., Any]) -> str:
    """The first paragraph of a factory's docstring, on one line ("" without one)."""
    paragraph = _doc(factory).split("\n\n", 1)[0]
    return " ".join(paragraph.split())


def summary(factory: Callable[..., Any]) -> str:
    """The first line of a factory's docstring (``harness list``'s description column)."""
    return _doc(factory).split("\n", 1)[0].strip()


def _doc(factory: Callable[..., Any]) -> str:
    """The docstring as people read it: reStructuredText's double backquotes made single."""
    return (inspect.getdoc(factory) or "").strip().replace("``", "`")
