"""``scripts/tuning_audits.py``: the committed audits of successive halving (docs/audits) follow
from their configurations' Dice, at least two entries are audited as docs/tuning.md's rule
asks, and the table docs/tuning.md shows is the one they make."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "tuning_audits", REPO / "scripts" / "tuning_audits.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


audits = _load_script()


def test_the_committed_audits_follow_from_their_dice_and_cover_two_entries() -> None:
    found = audits.load()  # raises where a figure is not its recomputation
    entries = {report["entry"] for _, report in found}
    assert {e.split(" · ")[2] for e in entries} >= {"adamw", "sgd"}, entries
    for stem, report in found:
        assert (audits.FOLDER / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
        assert stem == audits.name(report)
        assert len(report["configs"]) == 6 and all(c["full_dice"] for c in report["configs"])


def test_the_table_in_docs_is_the_one_the_audits_make() -> None:
    text = audits.DOC.read_text(encoding="utf-8")
    lines = audits.table(audits.load())
    assert audits.rewrite(text, lines) == text, (
        "docs/tuning.md's audits differ: run python scripts/tuning_audits.py"
    )
    assert audits.main(["--check"]) == 0


def test_an_edited_figure_is_named(tmp_path: Path) -> None:
    costly = {p: json.loads(p.read_text(encoding="utf-8")) for p in audits.FOLDER.glob("*.json")}
    source, report = max(costly.items(), key=lambda item: item[1]["regret"])
    assert report["regret"] > 0
    report["regret"] = 0.0  # what a hopeful hand would write
    (tmp_path / source.name).write_text(json.dumps(report), encoding="utf-8")
    with pytest.raises(SystemExit, match=f"{source.name}: regret do not follow from its Dice"):
        audits.load(tmp_path)


def test_collect_names_each_audit_by_its_entry_and_schedule(tmp_path: Path) -> None:
    source = sorted(audits.FOLDER.glob("*.json"))[0]
    study = tmp_path / "runs" / "bench" / "tuning" / "study-1"
    study.mkdir(parents=True)
    shutil.copyfile(source, study / "audit.json")
    shutil.copyfile(source.with_suffix(".png"), study / "audit.png")
    (copied,) = audits.collect(tmp_path / "runs", tmp_path / "out")
    assert copied == tmp_path / "out" / source.name
    assert copied.with_suffix(".png").read_bytes() == source.with_suffix(".png").read_bytes()
