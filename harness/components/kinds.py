"""The kinds of component, declared once: every name a kind goes by, in one ordered table.

The registry collects each kind from its hook, an entry holds one component of each kind
in its field, the command line chooses it with its option, a sweep varies it by its axis
names, and a record lists it under its field: all of them read ``COMPONENT_KINDS``. What
the harness itself passes to each kind's factory (``contract``) is declared here too, so
that a component's own parameters are the rest of its factory's signature.
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
    #: Older spellings of the option, still accepted and not shown (``--aug``).
    aliases: tuple[str, ...] = ()
    #: The keyword arguments the harness passes to every factory of this kind (from the
    #: protocol); they are not the component's parameters.
    contract: tuple[str, ...] = ()
    #: Positional arguments the harness passes first (an optimizer's parameters, a
    #: scheduler's optimizer), whatever the factory names them.
    positional: int = 0

    @property
    def hook(self) -> str:
        """The plugin hook that offers components of this kind: ``harness_models``."""
        return f"{HOOK_PREFIX}{self.plural}"

    @property
    def axes(self) -> tuple[str, ...]:
        """The names ``harness sweep --vary`` knows it by: the option's word, the field,
        then the older spellings (``augmentation``, ``aug``), each once."""
        words = (self.option, self.field, *self.aliases)
        return tuple(dict.fromkeys(word.removeprefix("--") for word in words))


#: Every kind, in the order lists, tables, entries and records show them.
COMPONENT_KINDS: tuple[Kind, ...] = (
    Kind("models", "model", "--model", contract=("num_classes", "in_channels", "encoder")),
    Kind("losses", "loss", "--loss"),
    Kind("optimizers", "optimizer", "--optimizer", contract=("lr", "weight_decay"), positional=1),
    Kind(
        "schedulers",
        "scheduler",
        "--scheduler",
        contract=("total_steps", "warmup_steps"),
        positional=1,
    ),
    Kind(
        "augmentations",
        "augmentation",
        "--augmentation",
        aliases=("--aug",),
        contract=("image_size",),
    ),
)

#: Plural -> kind (``"losses"`` -> the loss kind).
BY_PLURAL: dict[str, Kind] = {kind.plural: kind for kind in COMPONENT_KINDS}
#: Entry field -> kind (``"loss"`` -> the loss kind).
BY_FIELD: dict[str, Kind] = {kind.field: kind for kind in COMPONENT_KINDS}
