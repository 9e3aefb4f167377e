"""``scripts/publish_records.py``: a runs folder's records copied into the published layout,
each with the kept predictions it names (``harness select`` reads them there); predictions that
are not the record's stop it with one line."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tests.helpers import REPO, selection_data, selection_runs

SCRIPT = REPO / "scripts" / "publish_records.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("publish_records", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sure(truth: np.ndarray, name: str, fold: int) -> np.ndarray:
    return np.where(truth, 0.8, 0.1).astype(np.float32)


def _publish(
    runs: Path, to: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    """The script's ``main`` as its command line runs it: exit code, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["publish_records.py", str(runs), "--to", str(to)])
    code = _script().main()
    out, err = capsys.readouterr()
    return code, out, err


def test_records_go_with_their_kept_predictions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = selection_data(tmp_path)
    selection_runs(tmp_path / "runs", data, {"kept": {"none": _sure}})
    selection_runs(tmp_path / "runs", data, {"plain": {"none": _sure}}, keep=False)
    (tmp_path / "runs" / "noise.txt").write_text("not copied")
    code, out, err = _publish(tmp_path / "runs", tmp_path / "published", capsys, monkeypatch)
    assert code == 0, err
    assert out.startswith("4 records copied")
    copied = sorted(
        p.relative_to(tmp_path / "published")
        for p in (tmp_path / "published").rglob("*")
        if p.is_file()
    )
    originals = sorted(
        p.relative_to(tmp_path / "runs")
        for p in (tmp_path / "runs").rglob("*")
        if p.name in ("record.json", "predictions.npz")
    )
    assert copied == originals and len([p for p in copied if p.name == "predictions.npz"]) == 2
    for path in copied:
        assert (tmp_path / "published" / path).read_bytes() == (
            tmp_path / "runs" / path
        ).read_bytes()
    code, out, _ = _publish(tmp_path / "runs", tmp_path / "published", capsys, monkeypatch)
    assert out.startswith("0 records copied to") and "(4 already there)" in out


def test_predictions_that_are_not_the_records_stop_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = selection_data(tmp_path)
    selection_runs(tmp_path / "runs", data, {"kept": {"none": _sure}})
    (record, *_) = sorted((tmp_path / "runs").rglob("record.json"))
    doc = json.loads(record.read_text())
    doc["predictions"]["sha256"] = "0" * 64
    record.write_text(json.dumps(doc))
    code, _, err = _publish(tmp_path / "runs", tmp_path / "published", capsys, monkeypatch)
    assert code == 2
    assert err.startswith("publish_records: error: ") and "SHA-256" in err
    assert len(err.strip().splitlines()) == 1
