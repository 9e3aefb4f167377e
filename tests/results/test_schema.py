"""The schema of records and twins: every committed record and twin passes it, and what fails
is named by its field and how, in one phrase, whatever the value held."""

from __future__ import annotations

import json

import pytest

from harness.results import schema
from tests.helpers import REPO, make_record

RECORDS = sorted((REPO / "leaderboards" / "records").rglob("record.json"))
TWINS = sorted((REPO / "leaderboards").glob("*.json"))


def test_every_committed_record_and_twin_passes() -> None:
    assert RECORDS and TWINS
    for path in RECORDS:
        assert schema.problem(schema.Record, json.loads(path.read_text())) is None, path
    for path in TWINS:
        data = json.loads(path.read_text())
        assert schema.problem(schema.TWINS[data["kind"]], data) is None, path


def _record() -> dict:
    return json.loads(json.dumps(make_record("dice", 0, 0.5).to_dict()))


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda r: r["cost"].update(wall_s="60"), "cost.wall_s: not a number"),
        (lambda r: r["cost"].update(wall_s=float("nan")), "cost.wall_s: not a finite number"),
        (lambda r: r["cost"].update(wall_s=-1), "cost.wall_s: less than 0"),
        (lambda r: r.update(mean_dice=1.5), "mean_dice: more than 1"),
        (lambda r: r.update(seed=True), "seed: not a whole number"),
        (lambda r: r.update(hardware={"cpu": 3}), "hardware.cpu: not an object"),
        (lambda r: r["entry"].update(tuned=8), "entry.tuned: not text"),
        (lambda r: r.update(tuning={"trials": [1]}), "tuning.trials[0]: not an object"),
        (lambda r: r["entry"]["loss"].update(name="Dice"), "entry.loss.name: not a plain name"),
        (lambda r: r["entry"]["loss"].update(params={"a": {}}), "entry.loss.params.a: not text"),
        (lambda r: r["benchmark"].update(small_bones=["x"]), "benchmark.small_bones[0]: not one"),
        (
            lambda r: r["benchmark"]["protocol"].update(label="a\u202eb"),
            "benchmark.protocol.label: not one line of text",
        ),
        (lambda r: r["benchmark"].update(id="tiny-abc__other-1234"), "benchmark.id: does not"),
        (lambda r: r["benchmark"].update(extra=1), "benchmark.extra: a field this harness does"),
        (lambda r: r["per_class_dice"].pop("Ulna"), "per_class_dice: lacks Ulna"),
        (lambda r: r["cost"].update(inference_timed=3), "cost.inference_warmup: missing"),
    ],
)
def test_a_field_that_fails_is_named(change, says: str) -> None:
    record = _record()
    change(record)
    found = schema.problem(schema.Record, record)
    assert found is not None and found.startswith(says), found


def test_a_hostile_key_is_named_visibly() -> None:
    record = _record()
    record["cost"]["device"] = 1
    record["entry"]["loss"]["params"] = {"x\n![t](http://h/t.png)": 1}
    found = schema.problem(schema.Record, record)
    assert found is not None and "\n" not in found and "more problem" in found, found


def _twin() -> dict:
    main = (
        REPO / "leaderboards" / "synthetic-2267276f85__phantom-v2-ids20-size256-seed0-d52b2e9a.json"
    )
    return json.loads(main.read_text())


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda t: t["rows"][1].update(interval=[0.9, 0.8]), "rows[1].interval: its low end is"),
        (lambda t: t["rows"][1].update(interval=[0.8]), "rows[1].interval: not a pair"),
        (lambda t: t["rows"][1].update(rank_band=[0, 3]), "rows[1].rank_band: less than 1"),
        (lambda t: t["rows"][1]["test"].update(p_value=1.5), "rows[1].test.p_value: more than 1"),
        (lambda t: t["noise"].update(basis="pixels"), "noise.basis: should be"),
        (lambda t: t["noise"]["rows"].append(99), "noise.rows: not one mean and one layout"),
        (
            lambda t: t["noise"].update(rows=[*range(len(t["noise"]["rows"]) - 1), 99]),
            "noise.rows: names a row the table",
        ),
        (
            lambda t: t["noise"].update(rows=[0, *range(len(t["noise"]["rows"]) - 1)]),
            "noise.rows: a row named twice",
        ),
        (lambda t: t["noise"].update(reference=999), "noise.reference: not one of the model's"),
        (lambda t: t["noise"].pop("layout"), "noise.layout or mean_squares: missing"),
        (lambda t: t["noise"]["mean_squares"]["df"].__setitem__(2, 1e12), "noise.mean_squares.df"),
        (lambda t: t["noise"]["layout"]["images"].__setitem__(0, 0), "noise.layout.images[0]"),
    ],
)
def test_a_twins_judgement_and_noise_model_that_fail_are_named(change, says: str) -> None:
    twin = _twin()
    change(twin)
    found = schema.problem(schema.Leaderboard, twin)
    assert found is not None and found.startswith(says), found


def test_a_twins_chosen_values_may_name_a_components_own_and_nothing_else() -> None:
    name = "synthetic-2267276f85__phantom-v2-ids20-size256-seed0-d52b2e9a.ablation-optimizer-tuned"
    twin = json.loads((REPO / "leaderboards" / f"{name}.json").read_text())
    twin["rows"][1]["chosen"] = {"lr": 0.356, "optimizer.momentum": 0.977}
    assert schema.problem(schema.TWINS["ablation"], twin) is None
    twin["rows"][1]["chosen"] = {"lr<img src=x>": 0.356}
    found = schema.problem(schema.TWINS["ablation"], twin)
    assert found is not None and found.startswith("rows[1].chosen"), found
