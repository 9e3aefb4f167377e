"""A table's rows under the noise rules (``harness.results.judging``): units read from records
(images sorted by name), the model fitted to per-image Dice where rows have them, to the runs'
mean Dice where none do, none where neither can be; rows that cannot be modelled said so in
their cells and in the header; the twin keeps the model, and rebuilding it gives the same."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from harness.results.ablation import ablation_data
from harness.results.judging import IMAGES, SEEDS, judge, judge_units, model_of
from harness.results.leaderboard import regenerate, table_data
from harness.results.markdown import render
from harness.results.noise import Unit, fit_noise, verdicts
from harness.results.records import Record
from harness.results.rows import rows
from harness.results.tables import twin_path
from tests.helpers import BENCH, make_record, put_record

IMAGES_NAMES = [f"img{i}.png" for i in range(6)]


def scored(loss: str, seed: int, level: float, names: list[str] = IMAGES_NAMES) -> Record:
    """A record whose images score ``level`` plus an image effect and a seed's luck."""
    rng = np.random.default_rng(zlib.crc32(f"{loss}{seed}".encode()))
    record = make_record(loss, seed, level)
    per_image = level + 0.03 * np.sin(np.arange(len(names))) + rng.normal(0, 0.01, len(names))
    per_image += rng.normal(0, 0.01)
    record.val_images = list(names)
    record.per_image_dice = [[float(np.clip(d, 0, 1))] * 29 for d in per_image]
    record.mean_dice = float(np.mean(np.clip(per_image, 0, 1)))
    return record


def _table(records: list[Record]) -> dict:
    return table_data(BENCH, rows(records, BENCH["id"]))


def _units(record: Record) -> np.ndarray:
    order = np.argsort(record.val_images, kind="stable")
    return np.asarray(record.per_image_dice, dtype=float).mean(axis=1)[order]


def test_the_tables_verdicts_are_the_rules_on_the_records_arrays() -> None:
    levels = {"dice": 0.85, "combo": 0.84, "bce": 0.70, "focal": 0.83}
    records = [scored(loss, s, d) for loss, d in levels.items() for s in range(3)]
    for r in records[::2]:  # images in another order in some records: sorted by name
        order = np.random.default_rng(r.seed).permutation(6)
        r.val_images = [r.val_images[i] for i in order]
        r.per_image_dice = [r.per_image_dice[i] for i in order]
    made = rows(records, BENCH["id"])
    data = table_data(BENCH, made)
    arrays = np.stack([np.stack([_units(r) for r in row.records]) for row in made])
    expected = verdicts(fit_noise(arrays))
    words = {(True, False): "leader", (False, True): "below", (False, False): "≈"}
    assert [r["vs_leader"] for r in data["rows"]] == [words[v.leader, v.below] for v in expected]
    for row, v in zip(data["rows"][1:], expected[1:], strict=True):
        assert row["test"]["p_value"] == pytest.approx(v.p_value, abs=1e-12)
        assert row["test"]["beats_leader"] == pytest.approx(v.beats_leader, abs=1e-12)
    assert data["noise"]["basis"] == IMAGES and data["noise"]["rows"] == [0, 1, 2, 3]
    assert "below" in [r["vs_leader"] for r in data["rows"]]  # bce, 0.15 behind


def test_the_twin_keeps_the_model_and_rebuilding_it_gives_the_same() -> None:
    records = [scored(loss, s, d) for loss, d in (("dice", 0.8), ("bce", 0.7)) for s in range(3)]
    noise = judge(rows(records, BENCH["id"]))
    twin_noise = json.loads(json.dumps(noise.summary()))  # as a twin's file holds it
    rebuilt = model_of(twin_noise)
    for name in ("means", "row_variance", "interval_variance", "shared_variance", "loadings"):
        assert np.array_equal(getattr(rebuilt, name), getattr(noise.model, name)), name
    assert rebuilt.df == noise.model.df and rebuilt.replicated and not rebuilt.images_only


def test_rows_without_per_image_dice_are_not_modelled_and_said_so(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for s in range(3):
        put_record(runs, f"d{s}", scored("dice", s, 0.85))
        put_record(runs, f"c{s}", scored("combo", s, 0.845))
        put_record(runs, f"b{s}", make_record("bce", s, 0.90 + s / 100))  # the best, unscored
    table = regenerate(BENCH["id"], runs, tmp_path / "boards")
    twin = json.loads(twin_path(table).read_text())
    first = twin["rows"][0]
    assert "bce" in first["entry"] and first["vs_leader"] == "?"
    assert first["interval"] is None and first["rank_band"] is None and first["test"] is None
    assert [r["vs_leader"] for r in twin["rows"][1:]] == ["leader", "≈"]
    assert twin["noise"]["rows"] == [1, 2] and twin["noise"]["reference"] == 1
    text = table.read_text(encoding="utf-8")
    line = next(x for x in text.splitlines() if x.startswith("| 1 |"))
    assert "| 0.9100 | — | — | 3 | ? |" in line
    assert "**Not modelled**: 1 row without per-image Dice" in text and "(#1)" in text


def test_a_table_without_per_image_dice_falls_back_on_the_runs_mean_dice(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for s, (a, b) in enumerate([(0.80, 0.70), (0.82, 0.71), (0.81, 0.72)]):
        put_record(runs, f"a{s}", make_record("dice", s, a))
        put_record(runs, f"b{s}", make_record("bce", s, b))
    table = regenerate(BENCH["id"], runs, tmp_path / "boards")
    twin = json.loads(twin_path(table).read_text())
    assert twin["noise"]["basis"] == SEEDS
    assert [r["vs_leader"] for r in twin["rows"]] == ["leader", "below"]
    assert all(r["interval"] and r["rank_band"] for r in twin["rows"])
    text = table.read_text(encoding="utf-8")
    assert "**No per-image Dice**" in text and "mean Dice alone" in text


def test_one_row_has_no_model_and_leads(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for s in range(2):
        put_record(runs, f"d{s}", scored("dice", s, 0.8))
    twin = json.loads(twin_path(regenerate(BENCH["id"], runs, tmp_path / "b")).read_text())
    assert twin["noise"] == {"basis": None, "rows": [], "problem": twin["noise"]["problem"]}
    assert "1 row(s)" in twin["noise"]["problem"]
    assert twin["rows"][0]["vs_leader"] == "leader" and twin["rows"][0]["interval"] is None


def test_one_seed_a_row_is_judged_on_the_images_alone_and_the_header_says_so(
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs"
    for loss, level in (("dice", 0.85), ("combo", 0.80), ("bce", 0.6)):
        put_record(runs, loss, scored(loss, 0, level))
    table = regenerate(BENCH["id"], runs, tmp_path / "boards")
    twin = json.loads(twin_path(table).read_text())
    assert twin["noise"]["images_only"] and twin["noise"]["basis"] == IMAGES
    assert "**One seed a row**" in table.read_text(encoding="utf-8")


def test_other_images_or_damaged_per_image_dice_leave_a_row_out() -> None:
    records = [scored(loss, s, d) for loss, d in (("dice", 0.8), ("bce", 0.7)) for s in range(2)]
    records += [scored("combo", s, 0.75, [f"x{i}.png" for i in range(6)]) for s in range(2)]
    focal = [scored("focal", s, 0.72) for s in range(2)]
    focal[0].val_images[1] = focal[0].val_images[0]  # a name twice: whose score is whose?
    jaccard = [scored("jaccard", s, 0.71) for s in range(2)]
    jaccard[1].per_image_dice = jaccard[1].per_image_dice[:-1]  # one image without scores
    made = rows(records + focal + jaccard, BENCH["id"])
    noise = judge(made)
    names = [row.entry.loss.name for row in made]
    assert sorted(names[i] for i in noise.unmodelled) == ["combo", "focal", "jaccard"]
    assert noise.basis == IMAGES and noise.model.rows == 2


def test_units_are_read_in_image_name_order() -> None:
    first, second = scored("dice", 0, 0.8), scored("bce", 0, 0.6)
    expected = fit_noise(np.stack([[_units(first)], [_units(second)]]))
    shuffled = [5, 3, 0, 4, 1, 2]
    second.val_images = [second.val_images[i] for i in shuffled]
    second.per_image_dice = [second.per_image_dice[i] for i in shuffled]
    noise = judge(rows([first, second], BENCH["id"]))
    assert noise.model is not None
    assert np.array_equal(noise.model.means, expected.means)
    assert np.array_equal(noise.model.row_variance, expected.row_variance)


def test_per_image_dice_that_do_not_average_to_the_mean_dice_are_not_the_rows_scores() -> None:
    records = [scored(loss, s, d) for loss, d in (("dice", 0.8), ("bce", 0.7)) for s in range(2)]
    combo = [scored("combo", s, 0.75) for s in range(2)]
    combo[1].mean_dice = 0.95  # ranked by 0.95, its images say otherwise
    made = rows(records + combo, BENCH["id"])
    noise = judge(made)
    assert [made[i].entry.loss.name for i in noise.unmodelled] == ["combo"]


def test_an_ablation_is_judged_by_the_same_rule_in_its_own_order() -> None:
    levels = {"bce": 0.70, "dice": 0.85, "combo": 0.845}  # the best value is not first
    records = [scored(loss, s, d) for loss, d in levels.items() for s in range(3)]
    by_loss = {row.entry.loss.name: row for row in rows(records, BENCH["id"])}
    made = [(loss, by_loss[loss].entry.key, by_loss[loss]) for loss in levels]
    data = ablation_data("loss", [*made, ("focal", None, None)], BENCH["id"])
    arrays = np.stack([np.stack([_units(r) for r in by_loss[v].records]) for v in levels])
    expected = verdicts(fit_noise(arrays))
    words = {(True, False): "best", (False, True): "below", (False, False): "≈"}
    assert [r.get("vs_best") for r in data["rows"]] == [
        *(words[v.leader, v.below] for v in expected),
        None,
    ]
    assert [r["vs_best"] for r in data["rows"][:3]] == ["below", "best", "≈"]
    assert data["noise"]["rows"] == [0, 1, 2] and data["noise"]["reference"] == 1
    assert "**Resolution**" in "\n".join(render(data).splitlines())


def test_rows_given_as_units_are_judged_as_rows_of_records_are() -> None:
    """``judge_units`` (``harness select``'s configurations, which have no records): the same
    model and verdicts as the records' rows with the same per-image Dice."""
    levels = {"dice": 0.85, "combo": 0.84, "bce": 0.70}
    made = rows([scored(loss, s, d) for loss, d in levels.items() for s in range(3)], BENCH["id"])
    units = [[Unit(_units(r), None) for r in row.records] for row in made]
    by_units = judge_units(units, [row.mean for row in made])
    by_records = judge(made)
    assert by_units.summary() == by_records.summary()
    assert [j.data() for j in by_units.judged] == [j.data() for j in by_records.judged]
    alone = judge_units([[Unit(np.array([0.5]))]], [0.5])  # one row: no model, it leads
    assert alone.model is None and alone.judged[0].leader and alone.problem
