"""The kinds of component, declared once: every name a kind goes by, in one ordered table.

The registry collects each kind from its hook, ``harness list``, ``show`` and
``check-plugin`` cover it: all of them read ``COMPONENT_KINDS``. A kind that trains
(``Kind.trains``) is also part of an entry: an entry holds one component of each such kind
in its field, the command line of ``run`` chooses it with its option, a sweep varies it by
its axis names, and a record lists it under its field; those read ``TRAINING_KINDS``. The
kinds applied after training (test-time augmentation, post-processing) are chosen by
``harness predict`` and ``harness select`` and never enter an entry, its key or its folder.
What the harness itself passes to each kind's factory (``contract``) is declared here too,
so that a component's own parameters are the rest of its factory's signature.
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
    #: Part of a training entry (its identity, hash and folder). False: applied to a trained
    #: model's outputs (``harness predict``, ``harness select``), never part of an entry.
    trains: bool = True

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
    Kind("tta", "tta", "--tta", trains=False),
    Kind("postprocessors", "postprocessor", "--postprocessor", trains=False),
)

#: The kinds an entry is made of, in table order: what trains (``Kind.trains``).
TRAINING_KINDS: tuple[Kind, ...] = tuple(kind for kind in COMPONENT_KINDS if kind.trains)

#: Plural -> kind (``"losses"`` -> the loss kind).
BY_PLURAL: dict[str, Kind] = {kind.plural: kind for kind in COMPONENT_KINDS}
#: Entry field -> kind (``"loss"`` -> the loss kind).
BY_FIELD: dict[str, Kind] = {kind.field: kind for kind in COMPONENT_KINDS}
