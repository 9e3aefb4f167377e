"""``harness select`` (``harness.studies.select``) on crafted runs: every configuration scored
from kept predictions, post-processing kept class by class by its rule (a third-party
post-processor included, and rejected for the class it makes worse), the table judged,
published and deterministic, the held-out test images scored once for #1, and every bad
input one line."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from harness.classes import CLASSES
from harness.errors import HarnessError
from harness.results.records import WEIGHTS_NAME
from harness.studies.select import RULE, SelectRequest, kept_classes, select
from tests.helpers import PLUGIN, selection_benchmark, selection_data, selection_runs

RADIUS = CLASSES.index("Radius")

#: A third-party post-processor: each class's largest piece (the specks go), and the Radius
#: emptied: it helps the speckled classes and makes the Radius worse.
DESPECKLE = """
import numpy as np

from harness import hookimpl
from harness.classes import CLASSES


def despeckle_but_radius():
    def run(masks):
        import cv2

        out = np.zeros_like(masks)
        for c, mask in enumerate(masks):
            if mask.any():
                n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8))
                out[c] = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        out[CLASSES.index("Radius")] = False
        return out

    return run


@hookimpl
def harness_postprocessors():
    return {"despeckle-but-radius": despeckle_but_radius}
"""


def _rng(name: str, fold: int, salt: int) -> np.random.Generator:
    return np.random.default_rng([int(hashlib.sha1(name.encode()).hexdigest()[:8], 16), fold, salt])


def blurred(salt: int, miss: float):
    """Confident inside the truth but for a ``miss`` share of its pixels, unsure near it."""

    def predict(truth: np.ndarray, name: str, fold: int) -> np.ndarray:
        rng = _rng(name, fold, salt)
        p = np.where(truth, 0.9, 0.05).astype(np.float32)
        p[truth & (rng.random(truth.shape) < miss)] = 0.3
        return p

    return predict


def speckled(salt: int):
    """Right on the bones, with a speck of false positive far from each class's bone."""

    def predict(truth: np.ndarray, name: str, fold: int) -> np.ndarray:
        p = blurred(salt, 0.05)(truth, name, fold)
        for c in range(len(CLASSES)):
            rows, cols = np.nonzero(truth[c])
            if rows.size:
                r, q = (int(rows.mean()) + 32) % 64, (int(cols.mean()) + 32) % 64
                p[c, r : r + 2, q : q + 2] = 0.95
        return p

    return predict


MEMBERS = {
    "good": {"none": blurred(1, 0.15), "hflip": blurred(2, 0.10)},
    "speckled": {"none": speckled(3), "hflip": speckled(4)},
}


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("select")
    data = selection_data(root)
    plugin = root / "despeckle.py"
    plugin.write_text(textwrap.dedent(DESPECKLE))
    bench = selection_runs(root / "runs", data, MEMBERS)
    return {"root": root, "data": data, "bench": bench, "plugin": str(plugin)}


def _request(crafted: dict, **changes) -> SelectRequest:
    base = {
        "benchmark": crafted["bench"],
        "runs_dir": crafted["root"] / "runs",
        "leaderboards_dir": crafted["root"] / "boards",
        "data": crafted["data"],
        "plugins": (crafted["plugin"],),
    }
    return SelectRequest(**{**base, **changes})


@pytest.fixture(scope="module")
def selected(crafted: dict):
    return select(_request(crafted))


def test_every_configuration_is_a_row_ranked_by_cross_validated_dice(selected) -> None:
    rows = selected.data["rows"]
    posts = selected.data["settings"]["postprocessors"]
    assert selected.data["settings"]["tta"] == ["none", "hflip"]
    assert posts[0] == "none" and {"largest-component", "fill-holes"} <= set(posts)
    assert "despeckle-but-radius" in posts  # the third-party plugin's
    assert len(rows) == 3 * 2 * len(posts)  # good, speckled, both; 2 TTAs
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    dice = [r["mean_dice"] for r in rows]
    assert dice == sorted(dice, reverse=True)
    assert rows[0]["vs_leader"] == "leader" and rows[0]["interval"] is not None
    assert {r["n"] for r in rows} == {2}  # folds
    names = [m["name"] for m in selected.data["members"]]
    assert names == ["small-cnn (good)", "small-cnn (speckled)"]  # what tells them apart


def test_one_member_under_no_tta_nor_post_processing_is_its_leaderboard_row(
    crafted: dict, selected
) -> None:
    by_key = {r["key"]: r for r in selected.data["rows"]}
    for member in ("good", "speckled"):
        records = sorted((crafted["root"] / "runs").glob(f"*/{member}/*/record.json"))
        means = [json.loads(p.read_text())["mean_dice"] for p in records]
        assert by_key[f"{member}|none|none"]["mean_dice"] == pytest.approx(
            np.mean(means), abs=1e-12
        )


def test_a_postprocessor_is_kept_only_for_the_classes_it_helps(selected) -> None:
    rows = {r["key"]: r for r in selected.data["rows"]}
    third = rows["speckled|none|despeckle-but-radius"]
    assert "Radius" not in third["kept_for"]  # it empties the Radius: rejected there
    assert len(third["kept_for"]) > 20  # the specks it removes elsewhere: kept there
    plain = rows["speckled|none|none"]
    for c in CLASSES:  # no class gets worse
        assert third["per_class_dice"][c] >= plain["per_class_dice"][c]
    built_in = rows["speckled|none|largest-component"]
    assert "Radius" in built_in["kept_for"] and built_in["mean_dice"] > plain["mean_dice"]
    assert selected.data["settings"]["rule"] == RULE


def test_the_rule_on_a_crafted_case() -> None:
    """Class 0 rises on both folds: kept. Class 1 rises overall but falls on fold 1: rejected.
    Class 2 is unchanged, class 3 falls: rejected."""
    plain = {0: np.full((2, 29), 0.5), 1: np.full((3, 29), 0.5)}
    post = {f: d.copy() for f, d in plain.items()}
    post[0][:, 0] += 0.1
    post[1][:, 0] += 0.01
    post[0][:, 1] += 0.3
    post[1][:, 1] -= 0.01
    post[0][:, 3] -= 0.1
    keep = kept_classes(plain, post)
    assert keep.tolist() == [True] + [False] * 28


def test_the_table_is_published_with_its_twin_and_page_and_says_how(
    crafted: dict, selected
) -> None:
    table = selected.table
    assert table == crafted["root"] / "boards" / f"{crafted['bench']}.select.md"
    text = table.read_text()
    for said in (
        "Chosen on cross-validation only",
        RULE,
        "despeckle-but-radius",
        "Held-out test images**: not scored (the dataset's test images have no labels)",
        "harness predict RUNS/",
        "| # | Members | TTA | Post-processing | CV Dice | 95 % CI | Rank (95 %) |",
    ):
        assert said in text, said
    assert json.loads(table.with_suffix(".json").read_text())["kind"] == "selection"
    assert table.with_suffix(".html").is_file()
    assert "select</a>" in (table.parent / "index.html").read_text()


def test_the_ship_command_is_what_predict_takes(crafted: dict, selected) -> None:
    best = selected.data["rows"][0]
    command = selected.command.split()
    runs = (crafted["root"] / "runs").as_posix()
    assert command[:2] == ["harness", "predict"] and command[2].startswith(runs)
    assert command[command.index("--data") + 1] == str(crafted["data"])
    if best["tta"] != "none":
        assert command[command.index("--tta") + 1] == best["tta"]
    if best["kept_for"]:
        assert command[command.index("--postprocessor") + 1] == best["postprocessor"]
    assert command[-2:] == ["--plugin", crafted["plugin"]]


def test_same_records_same_bytes(crafted: dict, selected) -> None:
    again = select(_request(crafted, leaderboards_dir=crafted["root"] / "again"))
    for suffix in (".md", ".json", ".html"):
        first = selected.table.with_suffix(suffix).read_bytes()
        assert again.table.with_suffix(suffix).read_bytes() == first, suffix


def test_restricted_choices_and_a_larger_ensemble(crafted: dict) -> None:
    made = select(
        _request(
            crafted,
            leaderboards_dir=crafted["root"] / "one",
            tta=("hflip",),
            postprocessors=("largest-component",),
            entries=("good",),
            max_members=3,
        )
    )
    rows = made.data["rows"]
    assert {(r["tta"], r["postprocessor"]) for r in rows} == {
        ("none", "none"), ("none", "largest-component"), ("hflip", "none"),
        ("hflip", "largest-component"),
    }  # fmt: skip
    assert {r["key"].split("|")[0] for r in rows} == {"good"}
    assert {tuple(r["members"]) for r in rows} == {(made.data["members"][0]["entry"],)}
    assert {r["passes"] for r in rows} == {2, 4}  # 2 runs x 1 or 2 passes


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"max_members": 0}, "--max-members 0: give at least 1"),
        ({"benchmark": "tiny-0__x-1"}, "no record of this benchmark"),
        ({"entries": ("nope",)}, "ENTRY nope: no entry of"),
        ({"entries": ("runs/other-bench/good",)}, "an entry of benchmark other-bench, not"),
        ({"tta": ("multiscale",)}, "--tta multiscale: not kept by every member's runs"),
        ({"postprocessors": ("fill",)}, "unknown postprocessor 'fill'"),
    ],
)
def test_bad_input_is_one_line(crafted: dict, changes: dict, says: str) -> None:
    with pytest.raises(HarnessError, match=None) as caught:
        select(_request(crafted, leaderboards_dir=crafted["root"] / "bad", **changes))
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_a_benchmark_that_is_not_cross_validated_is_selected_on_its_fold(tmp_path: Path) -> None:
    data = selection_data(tmp_path)
    bench = selection_runs(
        tmp_path / "runs", data, MEMBERS, folds=(0,), bench=selection_benchmark(data, None)
    )
    made = select(SelectRequest(bench, runs_dir=tmp_path / "runs", data=data, tta=("none",)))
    rows = made.data["rows"]
    assert {r["n"] for r in rows} == {1} and list(rows[0]["dice_by_fold"]) == ["0"]
    assert {r["passes"] for r in rows} == {1, 2}


def test_runs_without_kept_predictions_are_refused(tmp_path: Path) -> None:
    data = selection_data(tmp_path)
    bench = selection_runs(tmp_path / "runs", data, {"plain": MEMBERS["good"]}, keep=False)
    request = SelectRequest(bench, runs_dir=tmp_path / "runs", data=data)
    with pytest.raises(HarnessError, match="no entry .* kept its predictions on every fold"):
        select(request)


def test_predictions_that_are_not_the_records_are_refused(tmp_path: Path) -> None:
    data = selection_data(tmp_path)
    bench = selection_runs(tmp_path / "runs", data, {"good": MEMBERS["good"]})
    (kept, *_) = sorted((tmp_path / "runs").rglob("predictions.npz"))
    data_bytes = bytearray(kept.read_bytes())
    data_bytes[len(data_bytes) // 2] ^= 1  # one bit changed
    kept.write_bytes(bytes(data_bytes))
    with pytest.raises(HarnessError, match="predictions.npz: not the predictions its record"):
        select(SelectRequest(bench, runs_dir=tmp_path / "runs", data=data))


def test_another_dataset_is_refused(crafted: dict, tmp_path: Path) -> None:
    other = selection_data(tmp_path, labelled_test=True)
    with pytest.raises(HarnessError, match="not the dataset .* was made on"):
        select(_request(crafted, data=other, leaderboards_dir=tmp_path / "b"))


def test_the_held_out_test_images_are_scored_once_for_the_chosen(tmp_path: Path) -> None:
    """With labelled test images and the runs' weights, #1 alone is scored on them through
    ``harness predict`` (its members' every run, its TTA and post-processing)."""
    import torch

    from harness.components.registry import Registry
    from harness.runs.seed import save_weights

    data = selection_data(tmp_path, labelled_test=True)
    plugin = tmp_path / "small.py"
    plugin.write_text(PLUGIN)
    bench = selection_runs(tmp_path / "runs", data, {"good": MEMBERS["good"]})
    build = Registry.load([str(plugin)]).get("models", "small-cnn").factory
    for record in (tmp_path / "runs").rglob("record.json"):
        torch.manual_seed(0)
        save_weights(record.parent / WEIGHTS_NAME, build(num_classes=29, in_channels=1))
    request = SelectRequest(
        bench,
        runs_dir=tmp_path / "runs",
        data=data,
        plugins=(str(plugin),),
        postprocessors=("largest-component",),
    )
    held = select(request).data["held_out"]
    assert held["scored"] and held["rank"] == 1 and held["images"] == 2
    assert 0 <= held["mean_dice"] <= 1
    text = (tmp_path / "runs" / "leaderboards" / f"{bench}.select.md").read_text()
    assert "scored once, for #1 alone (after the choice)" in text


def test_a_members_speed_is_the_one_its_table_shows_a_quiet_pass_first() -> None:
    """Inference images/s per member: each run's quiet pass (``harness cost``) where it has
    one, else the run's own figure, as the leaderboard shows them."""
    import dataclasses

    from harness.components.entry import Entry
    from harness.studies.select import Member, Run
    from tests.helpers import make_record

    def run(own: float, quiet: float | None) -> Run:
        record = make_record("dice", 0, 0.8)
        cost = dict(record.cost, inference_images_per_s=own)
        if quiet is not None:
            cost["quiet"] = {"inference_images_per_s": quiet, "machine": ""}
        return Run(dataclasses.replace(record, cost=cost), None, "r")  # type: ignore[arg-type]

    entry = Entry.from_dict(make_record("dice", 0, 0.8).entry)
    member = Member("m", entry, (run(10.0, 40.0), run(20.0, None)))
    assert member.images_per_s == pytest.approx((40.0 + 20.0) / 2)
    assert Member("m", entry, (run(10.0, None),)).images_per_s == pytest.approx(10.0)
