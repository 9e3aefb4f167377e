"""Every registered training component trains under the `tiny` protocol end to end.

Parametrized over the registry, so a new built-in is covered without editing this file.
The other four components are the protocol's defaults with a small U-Net. The kinds applied
after training (test-time augmentation, post-processing) train nothing: ``harness predict``
and ``harness select`` run them (``tests/inference``, ``tests/studies/test_select.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.components.kinds import BY_PLURAL, TRAINING_KINDS
from harness.components.registry import SINGULAR, Registry

KINDS = [kind.plural for kind in TRAINING_KINDS]

OPTION = {kind: BY_PLURAL[kind].option for kind in KINDS}
CASES = [(kind, name) for kind in KINDS for name in Registry.load().components(kind)]


@pytest.mark.parametrize(("kind", "name"), CASES, ids=[f"{k}-{n}" for k, n in CASES])
def test_runs_under_tiny(cli, tmp_path: Path, kind: str, name: str) -> None:
    chosen = {"--model": "unet", "--loss": "dice", OPTION[kind]: name}
    args = [part for pair in chosen.items() for part in pair]
    result = cli(
        "run", *args, "--protocol", "tiny", "--device", "cpu",
        "--runs-dir", tmp_path / "runs", "--leaderboards-dir", tmp_path / "boards",
    )  # fmt: skip
    assert result.code == 0, result.err[-800:]
    (record_path,) = (tmp_path / "runs").rglob("record.json")
    record = json.loads(record_path.read_text())
    field = SINGULAR[kind]
    assert record["status"] == "succeeded" and record["entry"][field]["name"] == name
