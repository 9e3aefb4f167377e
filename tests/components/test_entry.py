"""Entries: the component syntax on the command line and the leaderboard label."""

from __future__ import annotations

import pytest

from harness.components.entry import Component, Entry, parse_component
from harness.errors import HarnessError


def test_parse_component_with_typed_parameters() -> None:
    c = parse_component("combo:dice=0.7,bce=0.3", "--loss")
    assert c == Component("combo", (("bce", 0.3), ("dice", 0.7)))
    assert str(c) == "combo:bce=0.3,dice=0.7"
    assert parse_component("sgd:nesterov=true,momentum=1", "--optimizer").kwargs == {
        "momentum": 1,
        "nesterov": True,
    }
    assert parse_component("unetpp:decoder_attention_type=scse", "--model").kwargs == {
        "decoder_attention_type": "scse"
    }
    assert parse_component("dice", "--loss") == Component("dice")


@pytest.mark.parametrize("text", ["", ":a=1", "x:a", "x:1a=2", "x:a=1,a=2"])
def test_bad_component_syntax(text: str) -> None:
    with pytest.raises(HarnessError, match="--loss"):
        parse_component(text, "--loss")


def test_entry_round_trip_and_label() -> None:
    e = Entry(
        model=Component("unetpp"),
        loss=parse_component("combo:dice=0.7,bce=0.3", "--loss"),
        optimizer=Component("adamw"),
        scheduler=Component("flat"),
        augmentation=Component("none"),
        encoder="resnet34",
    )
    assert Entry.from_dict(e.to_dict()) == e
    assert e.label == "unetpp (resnet34) · combo:bce=0.3,dice=0.7 · adamw · flat · none"
    other = Entry.from_dict({**e.to_dict(), "encoder": None})
    assert other.key != e.key
