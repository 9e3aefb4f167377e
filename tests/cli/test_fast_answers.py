"""Answers that need no model come without importing one: ``harness --help``, ``list`` and
``show``, and the errors of a bad option or component parameter, each in a fresh process
whose ``sys.modules`` is read afterwards (the speed itself: benchmarks/test_cli_speed.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

#: What takes seconds to import, and none of these answers needs.
HEAVY = ("torch", "segmentation_models_pytorch", "timm", "albumentations", "cv2")

PROBE = (
    f"HEAVY = {HEAVY!r}\n"
    + """
import json, sys
from harness.cli import main
sys.argv = ["harness", *sys.argv[1:]]
try:
    main()
    code = 0
except SystemExit as exc:
    code = exc.code
heavy = [m for m in HEAVY if m in sys.modules]
print("PROBE " + json.dumps({"code": code, "heavy": heavy}))
"""
)


def probe(tmp_path: Path, *args: str) -> tuple[int, list[str], str]:
    """Exit code, heavy modules imported, and stderr of ``harness ARGS`` in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("PROBE "))
    found = json.loads(line.removeprefix("PROBE "))
    return found["code"], found["heavy"], done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("list",),
        ("list", "losses"),
        ("list", "tta"),
        ("show", "models", "unet"),
        ("show", "postprocessors", "fill-holes"),
        ("run", "--help"),
        ("select", "--help"),
    ],  # fmt: skip
    ids=" ".join,
)
def test_help_list_and_show_import_no_model_library(tmp_path: Path, args: tuple[str, ...]) -> None:
    code, heavy, err = probe(tmp_path, *args)
    assert code == 0, err
    assert heavy == [], f"harness {' '.join(args)} imported {heavy}"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("run", "--model", "unet", "--loss", "dice:smooth=abc", "--protocol", "tiny"),
         "smooth=abc is a str, not a float"),
        (("run", "--model", "unett", "--loss", "dice"), "unknown model 'unett'"),
        (("run", "--model", "unet", "--loss", "dice", "--augmentaton", "flip"),
         "did you mean --augmentation?"),
        (("sweep", "--vary", "loss=dice,combo:dice=x", "--protocol", "tiny"),
         "dice=x is a str, not a float"),
        (("tune", "--optimizer", "sgd:lr=0.1", "--protocol", "tiny"),
         "'lr' is the harness's own argument"),
        (("show", "losses", "dcie"), "did you mean: dice?"),
        (("run", "--model", "unet", "--loss", "dice", "--protocol", "tinny"),
         "unknown protocol 'tinny'"),
        (("run", "--model", "unet", "--loss", "dice", "--set", "epochz=3"),
         "did you mean epochs?"),
        (("select", "tiny-0__x-1", "--max-members", "0"), "--max-members 0: give at least 1"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else "",
)  # fmt: skip
def test_bad_input_that_needs_no_model_is_refused_without_one(
    tmp_path: Path, args: tuple[str, ...], said: str
) -> None:
    code, heavy, err = probe(tmp_path, *args)
    assert code == 2 and said in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert heavy == [], f"harness {' '.join(args)} imported {heavy} before refusing"
    assert list(tmp_path.iterdir()) == []  # no runs folder, nothing written
