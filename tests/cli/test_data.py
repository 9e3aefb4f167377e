"""``harness data`` (``harness.cli.data``): ``synth`` writes the phantom (never over an
existing dataset), ``check`` names every problem in a line of its own (exit 2) or says all is
valid, ``stats`` prints the per-class table and writes the JSON and the four plots."""

from __future__ import annotations

from pathlib import Path


def test_synth_writes_a_dataset_check_accepts_and_never_overwrites_one(cli, tmp_path: Path) -> None:
    data = tmp_path / "phantom"
    result = cli("data", "synth", data, "--ids", "5", "--size", "64")
    assert result.code == 0, result.err
    assert result.out.strip() == f"wrote {data}"
    checked = cli("data", "check", data)
    assert checked.code == 0 and checked.out.strip() == f"{data}: 10 labelled images, all valid"
    before = sorted((p, p.stat().st_mtime_ns) for p in data.rglob("*"))
    again = cli("data", "synth", data, "--ids", "5", "--size", "64")
    assert again.code == 2 and "already exists" in again.err
    assert sorted((p, p.stat().st_mtime_ns) for p in data.rglob("*")) == before


def test_data_check_reports_every_problem(cli, tmp_path: Path) -> None:
    data = tmp_path / "phantom"
    assert cli("data", "synth", data, "--ids", "5", "--size", "64").code == 0
    jsons = sorted((data / "train" / "outputs_json").rglob("*.json"))
    jsons[0].write_text("{not json")
    jsons[1].unlink()
    result = cli("data", "check", data)
    assert result.code == 2
    assert jsons[0].name in result.err and jsons[1].stem in result.err
    assert len([line for line in result.err.splitlines() if line.startswith("harness:")]) == 2


def test_data_stats_writes_json_and_plots(cli, tmp_path: Path) -> None:
    data = tmp_path / "phantom"
    assert cli("data", "synth", data, "--ids", "5", "--size", "64").code == 0
    result = cli("data", "stats", data, "--out", tmp_path / "stats")
    assert result.code == 0, result.err
    names = sorted(p.name for p in (tmp_path / "stats").iterdir())
    assert names == sorted(
        ["stats.json", "class_areas.png", "overlap_matrix.png", "wrist_angle.png", "contrast.png"]
    )
    assert "Small bones" in result.out
    assert result.out.count("wrote ") == 5
