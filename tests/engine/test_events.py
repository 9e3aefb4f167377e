"""What training tells its watchers (``harness.engine.events``): ``NullObserver`` and
``Observers`` keep the ``TrainObserver`` protocol, and ``Observers`` hands every call to
each observer in order, ``run_ended`` even past one that raises."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import torch

from harness.engine.events import NullObserver, Observers, TrainObserver

METHODS = sorted(
    name
    for name, member in vars(TrainObserver).items()
    if inspect.isfunction(member) and not name.startswith("_")
)

#: One call of each method, with arguments as training sends them.
CALLS: list[tuple[str, tuple[Any, ...]]] = [
    ("run_started", ("seed 0", 24, 0)),
    ("step_done", (1, 1, 3, 0.9)),
    ("validating", (1, 3)),
    ("validated", (1, 8, torch.nn.Identity())),
    ("epoch_done", ({"epoch": 1, "loss": 0.9},)),
    ("message", ("a line",)),
    ("run_ended", ()),
]


class Heard:
    """Writes every call it hears into a log shared with the other observers."""

    def __init__(self, name: str, log: list[tuple[str, str, tuple[Any, ...]]]) -> None:
        self.name, self.log = name, log

    def __getattr__(self, method: str) -> Any:
        if method not in METHODS:
            raise AttributeError(method)
        return lambda *args: self.log.append((self.name, method, args))


def test_every_method_of_the_protocol_is_called_here_and_kept_by_both() -> None:
    assert sorted(name for name, _ in CALLS) == METHODS
    for observer in (NullObserver, Observers):
        for name in METHODS:
            ours = inspect.signature(getattr(observer, name))
            assert ours == inspect.signature(getattr(TrainObserver, name)), (observer, name)


def test_null_observer_hears_everything_and_does_nothing() -> None:
    observer = NullObserver()
    for name, args in CALLS:
        assert getattr(observer, name)(*args) is None


def test_observers_hand_every_call_to_each_in_order() -> None:
    log: list[tuple[str, str, tuple[Any, ...]]] = []
    observers = Observers(Heard("first", log), Heard("second", log))
    for name, args in CALLS:
        getattr(observers, name)(*args)
    expected = [(who, name, args) for name, args in CALLS for who in ("first", "second")]
    assert log == expected
    Observers().run_ended()  # none: nothing to tell


class Fails(NullObserver):
    def __init__(self, error: BaseException) -> None:
        self.error = error

    def run_ended(self) -> None:
        raise self.error


def test_run_ended_reaches_everyone_and_the_first_error_wins() -> None:
    log: list[tuple[str, str, tuple[Any, ...]]] = []
    first, second = RuntimeError("first"), KeyboardInterrupt()
    observers = Observers(Fails(first), Heard("after", log), Fails(second), Heard("last", log))
    with pytest.raises(RuntimeError) as caught:
        observers.run_ended()
    assert caught.value is first
    assert log == [("after", "run_ended", ()), ("last", "run_ended", ())]
