"""What a sweep varies: an axis of the entry and its values, read from ``--vary``.

Light on purpose (no torch, no data): ``harness sweep`` reads ``--vary`` and checks each
value's component before it loads anything that trains.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.components.entry import parse_component
from harness.components.kinds import TRAINING_KINDS
from harness.errors import HarnessError

#: Axis name on the command line -> RunRequest field: each kind's axes
#: (``harness.components.kinds``), then the encoder.
AXES = {
    **{axis: kind.field for kind in TRAINING_KINDS for axis in kind.axes},
    "encoder": "encoder",
}


@dataclass(frozen=True)
class Axis:
    name: str  # the RunRequest field
    values: tuple[str, ...]

    @property
    def title(self) -> str:
        return self.name.capitalize()


def parse_vary(text: str) -> Axis:
    """``AXIS=v1,v2,...`` with component parameters kept attached to their value."""
    key, sep, rest = text.partition("=")
    key = key.strip()
    if not sep or key not in AXES:
        raise HarnessError(
            f"--vary {text!r}: expected AXIS=v1,v2,... with AXIS one of {', '.join(AXES)}"
        )
    values: list[str] = []
    for piece in (p.strip() for p in rest.split(",")):
        if not piece:
            continue
        if "=" in piece and ":" not in piece and values and ":" in values[-1]:
            values[-1] += "," + piece
        else:
            values.append(piece)
    if len(values) < 2:
        raise HarnessError(f"--vary {text!r}: give at least two values to compare")
    if len(set(values)) != len(values):
        raise HarnessError(f"--vary {text!r}: a value is repeated")
    for value in values:
        if AXES[key] != "encoder":
            parse_component(value, f"--vary {key}")
    return Axis(AXES[key], tuple(values))
