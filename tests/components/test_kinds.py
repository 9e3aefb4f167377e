"""The kinds of component (``harness.components.kinds``): one table that the registry's hooks,
the entry's fields, a record's checks, the run options and the sweep axes all come from; the
kinds applied after training (test-time augmentation, post-processing) are in the registry
but in no entry."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

from harness.components import hookspecs
from harness.components.entry import KINDS_BY_FIELD, Component, Entry
from harness.components.kinds import BY_FIELD, BY_PLURAL, COMPONENT_KINDS, TRAINING_KINDS, Kind
from harness.components.registry import KINDS, SINGULAR, Registry
from harness.results import records
from harness.runs.requests import flag, option_fields
from harness.studies.sweep import AXES, parse_vary

PLURALS = [kind.plural for kind in COMPONENT_KINDS]
ALL_FIELDS = [kind.field for kind in COMPONENT_KINDS]
#: The kinds an entry is made of.
FIELDS = [kind.field for kind in TRAINING_KINDS]


def test_the_table_names_each_kind_once() -> None:
    assert PLURALS == [
        "models", "losses", "optimizers", "schedulers", "augmentations", "tta", "postprocessors"
    ]  # fmt: skip
    assert FIELDS == ["model", "loss", "optimizer", "scheduler", "augmentation"]
    assert [*FIELDS, "tta", "postprocessor"] == ALL_FIELDS
    for names in (PLURALS, ALL_FIELDS, [k.option for k in COMPONENT_KINDS]):
        assert len(set(names)) == len(names)
    assert list(BY_PLURAL) == PLURALS and list(BY_FIELD) == ALL_FIELDS
    augmentation = BY_FIELD["augmentation"]
    assert augmentation == Kind(
        "augmentations", "augmentation", "--augmentation", aliases=("--aug",),
        contract=("image_size",),
    )  # fmt: skip
    # One name per thing: the option is the field's word; the old one is only an alias.
    for kind in COMPONENT_KINDS:
        assert kind.option == f"--{kind.field}"


def test_what_is_applied_after_training_is_in_no_entry() -> None:
    after = [kind for kind in COMPONENT_KINDS if not kind.trains]
    assert [kind.plural for kind in after] == ["tta", "postprocessors"]
    assert tuple(kind for kind in COMPONENT_KINDS if kind.trains) == TRAINING_KINDS
    assert not {kind.field for kind in after} & set(KINDS_BY_FIELD)
    assert not {kind.field for kind in after} & set(records._ENTRY_FIELDS)
    # An entry's key, label and folder name are the same whatever post-training plugins exist.
    entry = Entry(**{name: Component(name) for name in FIELDS})
    assert entry.key == "model|loss|optimizer|scheduler|augmentation|"
    assert "postprocessor" not in entry.to_dict()


def test_the_registry_reads_its_kinds_and_hooks_from_the_table(tmp_path: Path) -> None:
    assert list(KINDS) == PLURALS
    assert {kind.plural: kind.field for kind in COMPONENT_KINDS} == SINGULAR
    specs = [name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction)]
    assert sorted(n for n in specs if n.startswith("harness_")) == sorted(
        kind.hook for kind in COMPONENT_KINDS
    )
    # A plugin written from the table alone: each hook's component lands under its kind.
    plugin = tmp_path / "from_the_table.py"
    plugin.write_text(
        "from harness import hookimpl\n"
        + "".join(
            f"@hookimpl\ndef {kind.hook}():\n    return {{'table-{kind.field}': object}}\n"
            for kind in COMPONENT_KINDS
        )
    )
    registry = Registry.load([str(plugin)], entry_points=False)
    for kind in COMPONENT_KINDS:
        assert list(registry.components(kind.plural)) == [f"table-{kind.field}"]


def test_the_entry_holds_one_component_of_each_kind_in_table_order() -> None:
    component_fields = [f.name for f in dataclasses.fields(Entry) if f.type == "Component"]
    assert component_fields == FIELDS
    assert {kind.field: kind.plural for kind in TRAINING_KINDS} == KINDS_BY_FIELD
    entry = Entry(**{name: Component(name) for name in FIELDS})
    assert list(entry.components()) == FIELDS
    assert list(Entry.from_dict(entry.to_dict()).components()) == FIELDS


def test_a_record_is_checked_for_every_kind() -> None:
    assert tuple(FIELDS) == records._ENTRY_FIELDS


def test_the_run_options_are_the_tables() -> None:
    by_name = {f.name: f for f in option_fields()}
    assert {kind.field: flag(by_name[kind.field]).name for kind in TRAINING_KINDS} == {
        kind.field: kind.option for kind in TRAINING_KINDS
    }
    assert {kind.field: flag(by_name[kind.field]).aliases for kind in TRAINING_KINDS} == {
        kind.field: kind.aliases for kind in TRAINING_KINDS
    }
    assert "postprocessor" not in by_name


def test_the_sweep_axes_are_the_tables_then_the_encoder() -> None:
    assert list(AXES) == [axis for kind in TRAINING_KINDS for axis in kind.axes] + ["encoder"]
    assert list(AXES) == [
        "model", "loss", "optimizer", "scheduler", "augmentation", "aug", "encoder"
    ]  # fmt: skip
    for kind in TRAINING_KINDS:
        for axis in kind.axes:
            assert parse_vary(f"{axis}=a,b").name == kind.field
