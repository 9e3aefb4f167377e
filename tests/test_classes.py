"""The 29 classes (``harness.classes``): the competition's names in the competition's order,
since channel i of every mask, prediction and submission row is ``CLASSES[i]``."""

from __future__ import annotations

from harness.classes import CLASS_INDEX, CLASSES, NUM_CLASSES

#: The competition's class list, written out: the order is the data format.
COMPETITION = (
    "finger-1", "finger-2", "finger-3", "finger-4", "finger-5",
    "finger-6", "finger-7", "finger-8", "finger-9", "finger-10",
    "finger-11", "finger-12", "finger-13", "finger-14", "finger-15",
    "finger-16", "finger-17", "finger-18", "finger-19",
    "Trapezium", "Trapezoid", "Capitate", "Hamate",
    "Scaphoid", "Lunate", "Triquetrum", "Pisiform",
    "Radius", "Ulna",
)  # fmt: skip

CARPALS = {"Trapezium", "Trapezoid", "Capitate", "Hamate", "Scaphoid", "Lunate", "Triquetrum",
           "Pisiform"}  # fmt: skip


def test_the_29_classes_are_the_competitions_in_its_order() -> None:
    assert NUM_CLASSES == 29
    assert CLASSES == COMPETITION
    assert len(set(CLASSES)) == NUM_CLASSES


def test_nineteen_finger_bones_then_the_eight_carpals_then_the_forearm() -> None:
    assert CLASSES[:19] == tuple(f"finger-{i}" for i in range(1, 20))
    assert set(CLASSES[19:27]) == CARPALS
    assert CLASSES[27:] == ("Radius", "Ulna")


def test_the_index_is_the_channel_of_each_name() -> None:
    assert len(CLASS_INDEX) == NUM_CLASSES
    assert all(CLASSES[CLASS_INDEX[name]] == name for name in CLASSES)
    assert CLASS_INDEX["finger-1"] == 0 and CLASS_INDEX["Ulna"] == NUM_CLASSES - 1
