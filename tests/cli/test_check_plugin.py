"""``harness check-plugin`` (``harness.cli.check_plugin``): a component's conformance checks
as a table (each check, pass or FAIL, its detail) and a summary line; exit 1 when any check
fails. (What the checks judge: tests/components/test_conformance.py.)"""

from __future__ import annotations

from pathlib import Path


def _rows(out: str) -> list[list[str]]:
    """The table's body rows, cell by cell."""
    return [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines() if "│" in line]


def test_check_plugin_passes_a_builtin_and_fails_a_broken_model(cli, tmp_path: Path) -> None:
    good = cli("check-plugin", "combo:dice=0.5,bce=0.5")
    assert good.code == 0, good.err
    assert good.out.strip().splitlines()[-1].endswith("conforms: 4 of 4 checks passed")
    rows = _rows(good.out)
    assert [row[0] for row in rows][:2] == ["builds", "finite scalar"]
    assert {row[1] for row in rows} == {"pass"}
    broken = tmp_path / "broken_model.py"
    broken.write_text(
        "import torch\n"
        "from harness import hookimpl\n\n\n"
        "def flat(*, num_classes, in_channels, encoder=None):\n"
        "    return torch.nn.Conv2d(in_channels, 3, 1)  # wrong number of classes\n\n\n"
        "@hookimpl\n"
        "def harness_models():\n"
        "    return {'flat-wrong': flat}\n"
    )
    bad = cli("check-plugin", "flat-wrong", "--plugin", broken)
    assert bad.code == 1
    failed = [row for row in _rows(bad.out) if row[1] == "FAIL"]
    assert failed and "29" in " ".join(failed[0])  # the detail says what was expected
    assert "conforms" not in bad.out.strip().splitlines()[-1]
