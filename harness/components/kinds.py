"""The kinds of component, declared once: every name a kind goes by, in one ordered table.

The registry collects each kind from its hook, an entry holds one component of each kind
in its field, the command line chooses it with its option, a sweep varies it by its axis
names, and a record lists it under its field: all of them read ``COMPONENT_KINDS``.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Hook names are the kind's plural with this prefix (``harness_models``).
HOOK_PREFIX = "harness_"


@dataclass(frozen=True)
class Kind:
    """One kind of component and the names it goes by."""

    #: The registry's name for the kind and ``harness list``'s: ``models``.
    plural: str
    #: The entry's field and a record's key, and the noun messages use: ``model``.
    field: str
    #: The option that chooses it on the command line: ``--model``.
    option: str

    @property
    def hook(self) -> str:
        """The plugin hook that offers components of this kind: ``harness_models``."""
        return f"{HOOK_PREFIX}{self.plural}"

    @property
    def axes(self) -> tuple[str, ...]:
        """The names ``harness sweep --vary`` knows it by: the option's word, then the
        field (``aug``, ``augmentation``); one name where they are the same."""
        return tuple(dict.fromkeys((self.option.removeprefix("--"), self.field)))


#: Every kind, in the order lists, tables, entries and records show them.
COMPONENT_KINDS: tuple[Kind, ...] = (
    Kind("models", "model", "--model"),
    Kind("losses", "loss", "--loss"),
    Kind("optimizers", "optimizer", "--optimizer"),
    Kind("schedulers", "scheduler", "--scheduler"),
    Kind("augmentations", "augmentation", "--aug"),
)

#: Plural -> kind (``"losses"`` -> the loss kind).
BY_PLURAL: dict[str, Kind] = {kind.plural: kind for kind in COMPONENT_KINDS}
#: Entry field -> kind (``"loss"`` -> the loss kind).
BY_FIELD: dict[str, Kind] = {kind.field: kind for kind in COMPONENT_KINDS}
