"""``--seeds``: a count or a list; ``--seeds 0`` (almost surely meant seed 0) says what to write."""

from __future__ import annotations

import pytest

from harness.errors import HarnessError
from harness.runs.requests import parse_seeds


def test_seeds_zero_says_how_to_run_seed_zero() -> None:
    with pytest.raises(HarnessError) as info:
        parse_seeds("0", (1,))
    message = str(info.value)
    assert message.startswith("--seeds 0: ")
    assert "--seeds 0," in message and "\n" not in message
    # ... and what it suggests does run seed 0 alone.
    assert parse_seeds("0,", (1,)) == [0]
    assert parse_seeds("1", (1,)) == [0]


def test_other_empty_seed_lists_keep_their_message() -> None:
    with pytest.raises(HarnessError, match="need at least one seed"):
        parse_seeds(",", ())
    with pytest.raises(HarnessError, match="need at least one seed"):
        parse_seeds("-1", ())


def test_seeds_zero_on_the_command_line_exits_2(cli) -> None:
    result = cli("run", "--model", "unet", "--loss", "dice", "--protocol", "tiny", "--seeds", "0")
    assert result.code == 2
    assert "--seeds 0," in result.err and "Traceback" not in result.err
