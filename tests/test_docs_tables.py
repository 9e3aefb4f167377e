"""docs/study.md shows what the committed records say: its tables are the ones
``scripts/study_tables.py`` makes from ``leaderboards/records``, and every Dice-looking number
in its prose is a figure of those records (or one of the few exceptions listed here, each with
its reason)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from harness.results.rows import Row

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "study.md"


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "study_tables", ROOT / "scripts" / "study_tables.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


study_tables = _load_script()


@pytest.fixture(scope="module")
def study():
    return study_tables.load_study()


def test_the_tables_in_docs_are_the_ones_the_records_make(study) -> None:
    text = DOC.read_text(encoding="utf-8")
    assert study_tables.rewrite(text, study_tables.blocks(study)) == text, (
        "docs/study.md's tables differ from the records: run python scripts/study_tables.py"
    )


def test_a_table_edited_by_hand_is_caught(study) -> None:
    text = DOC.read_text(encoding="utf-8")
    edited = text.replace("0.6994 ± 0.0209", "0.6995 ± 0.0209", 1)
    assert edited != text
    assert study_tables.rewrite(edited, study_tables.blocks(study)) == text


def test_the_rows_follow_the_committed_ablation_tables(study) -> None:
    for axis, column in study.fixed.items():
        assert [v for v, _ in column.values] == study_tables.ablation_values(
            study_tables.BOARDS / f"{study.benchmark}.ablation-{axis}.md"
        )
        assert all(len(row.records) == 3 for _, row in column.values)


# --- the prose ---------------------------------------------------------------------------------

Figures = Callable[[object], Sequence[float]]


def _fixed(study, axis: str, value: str) -> Row:
    return study.fixed[axis].row(value)


def _tuned(study, axis: str, value: str) -> Row:
    """The row under the full schedule (one shared space): today's, or the one replaced."""
    return _full(study, axis).row(value)


def _full(study, axis: str):
    return study_tables._by_schedule(study, axis)["full"]


def _halved(study, axis: str, value: str) -> Row:
    """The row under successive halving, over the entry's own space."""
    return study_tables._by_schedule(study, axis)["halving"].row(value)


def _halving_trials(row: Row) -> list[dict]:
    """The trials of a row tuned under halving: each configuration at each rung it reached."""
    return list(row.records[0].tuning["trials"])


def _audit(entry: str) -> dict:
    """The committed audit of ``entry`` under eta 2 from 20 epochs."""
    path = ROOT / "docs" / "audits" / f"unetpp-dice-{entry}-warmup-cosine-none-eta2-from20.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _full_dice(entry: str) -> list[float]:
    """Each audited configuration's Dice at the full horizon, best first."""
    return sorted((c["full_dice"] for c in _audit(entry)["configs"]), reverse=True)


def _cost(study, axis: str, schedule: str) -> float:
    """Seeds + trials over seeds, of one tuned table under ``schedule``."""
    seeds, trials = study_tables._hours(
        r for _, r in study_tables._by_schedule(study, axis)[schedule].values
    )
    return (seeds + trials) / seeds


def _study_cost(study, schedule: str) -> float:
    """Seeds + trials over seeds, of the four tuned tables under ``schedule`` (each entry
    once)."""
    seeds, trials = study_tables._hours(
        r
        for axis in study_tables.TUNED
        for _, r in study_tables._by_schedule(study, axis)[schedule].values
    )
    return (seeds + trials) / seeds


def _gain(study, axis: str, value: str) -> float:
    return _tuned(study, axis, value).mean - _fixed(study, axis, value).mean


def _trials(row: Row) -> list[tuple[float, float]]:
    """(lr, Dice on the tuning fold) of each trial of a tuned row."""
    return [(t["values"]["lr"], t["mean_dice"]) for t in row.records[0].tuning["trials"]]


def _chosen_trial(row: Row) -> float:
    return float(row.records[0].tuning["chosen"]["mean_dice"])


def _lr(row: Row) -> float:
    return dict(row.entry.hparams)["lr"]


def _space(study) -> dict:
    """The tuning space of the full schedule's tuned rows (one space for all)."""
    return _tuned(study, "loss", "dice").records[0].tuning["tuning"]["space"]


def _cv(study, value: str) -> Row:
    """The cross-validated model row of ``value``."""
    assert study.cross_validated is not None, "no cross-validated model table committed"
    return study.cross_validated.row(value)


def _cv_gap(study, fold: int) -> float:
    """UNet++ minus the Attention U-Net on one fold of the cross-validated table."""
    return _cv(study, "unetpp").by_seed()[fold] - _cv(study, "attention-unet").by_seed()[fold]


def _stds(column) -> list[float]:
    return [row.std for _, row in column.values]


def _one(values: Sequence[float]) -> float:
    """The value they all share (NaN, which matches no number, when they differ)."""
    return values[0] if len(set(values)) == 1 else float("nan")


CV_TABLE = "synthetic-46ab025203__phantom-v2-ids20-size256-seed0-d52b2e9a"
SELECT_TABLE = f"{CV_TABLE}.select"


def _twin(name: str) -> dict:
    """A committed table's JSON twin."""
    return json.loads((ROOT / "leaderboards" / f"{name}.json").read_text(encoding="utf-8"))


def _picked(members: str, tta: str, postprocessor: str) -> dict:
    """The selection's row of ``members`` (joined by +) under ``tta`` and ``postprocessor``."""
    (row,) = [
        r
        for r in _twin(SELECT_TABLE)["rows"]
        if "+".join(r["members"]) == members
        and (r["tta"], r["postprocessor"]) == (tta, postprocessor)
    ]
    return row


def _flip_gains() -> list[float]:
    """The least and the most the mirror adds to a model alone."""
    models = {m for r in _twin(SELECT_TABLE)["rows"] for m in r["members"]}
    gains = [
        _picked(m, "hflip", "none")["mean_dice"] - _picked(m, "none", "none")["mean_dice"]
        for m in models
    ]
    return [min(gains), max(gains)]


def _first_below() -> dict:
    rows = _twin(SELECT_TABLE)["rows"]
    return next(r for r in rows if r["vs_leader"] == "below")


_MODELS = ("unetpp", "fpn", "deeplabv3plus", "attention-unet")

#: Each phrase of the prose that holds a number, and the figures its numbers must round to,
#: in order, at the digits the prose shows.
FIGURES: dict[str, Figures] = {
    "SGD over its own space learns: 0.028 under the full schedule, 0.769 now (its seeds "
    "0.727–0.845)": lambda s: [
        _tuned(s, "optimizer", "sgd").mean,
        _halved(s, "optimizer", "sgd").mean,
        min(_halved(s, "optimizer", "sgd").dice),
        max(_halved(s, "optimizer", "sgd").dice),
    ],
    "(lr 0.36, momentum 0.977)": lambda s: [
        _halved(s, "optimizer", "sgd").chosen["lr"],
        _halved(s, "optimizer", "sgd").chosen["optimizer.momentum"],
    ],
    "reaches lr 1 and momentum 0.99": lambda s: [
        _halved(s, "optimizer", "sgd").records[0].tuning["space"]["optimizer.momentum"]["high"]
    ],
    "the adaptive optimizers' band (0.892–0.903)": lambda s: [
        min(_halved(s, "optimizer", v).mean for v in ("adam", "adamw", "lion")),
        max(_halved(s, "optimizer", v).mean for v in ("adam", "adamw", "lion")),
    ],
    "(0.483 and 0.057 on the tuning fold, against 0.672–0.852 for five of AdamW's six)": lambda s: [
        _full_dice("sgd")[0],
        _full_dice("sgd")[1],
        _full_dice("adamw")[4],
        _full_dice("adamw")[0],
    ],
    # The threshold the prose draws: it holds when exactly four configurations fall below it.
    "put four below lr 0.04": lambda s: [
        0.04 if sum(c["values"]["lr"] < 0.04 for c in _audit("sgd")["configs"]) == 4 else 1.0
    ],
    "Dice + BCE is within noise of it (0.895 against 0.903) and BCE alone is below (0.036)": (
        lambda s: [
            _halved(s, "loss", "combo").mean,
            _halved(s, "loss", "dice").mean,
            _halved(s, "loss", "bce").mean,
        ]
    ),
    "scored 0.000–0.015 at 20 epochs and all three that went on scored 0.000 at 40": lambda s: [
        min(t["mean_dice"] for t in _halving_trials(_halved(s, "loss", "bce")) if t["rung"] == 1),
        max(t["mean_dice"] for t in _halving_trials(_halved(s, "loss", "bce")) if t["rung"] == 1),
        max(t["mean_dice"] for t in _halving_trials(_halved(s, "loss", "bce")) if t["rung"] == 2),
    ],
    "flat chose a smaller lr (0.0044) than warm-up + cosine (0.0128)": lambda s: [
        _halved(s, "scheduler", "flat").chosen["lr"],
        _halved(s, "scheduler", "warmup-cosine").chosen["lr"],
    ],
    "(0.885–0.897, where the full schedule's spread 0.863–0.907)": lambda s: [
        min(_halved(s, "scheduler", "flat").dice),
        max(_halved(s, "scheduler", "flat").dice),
        min(_tuned(s, "scheduler", "flat").dice),
        max(_tuned(s, "scheduler", "flat").dice),
    ],
    # Trials and seeds train the same epochs an entry (6×20 + 3×40 against 3×80).
    "(at 0.78 of a seed's cost an epoch": lambda s: [_study_cost(s, "halving") - 1],
    "All four chose the same configuration (lr 0.0128, weight decay 0.0531)": lambda s: [
        _one([_halved(s, "model", v).chosen["lr"] for v in _MODELS]),
        _one([_halved(s, "model", v).chosen["weight_decay"] for v in _MODELS]),
    ],
    "the Attention U-Net gained the most (+0.057)": lambda s: [
        _halved(s, "model", "attention-unet").mean - _tuned(s, "model", "attention-unet").mean
    ],
    "(FPN +0.033, DeepLabV3+ unchanged)": lambda s: [
        _halved(s, "model", "fpn").mean - _tuned(s, "model", "fpn").mean
    ],
    "seeds spread by 0.06 (standard deviation) and the table resolved only 0.099; under "
    "halving they spread by 0.020 and it resolves 0.044": lambda s: [
        _tuned(s, "model", "attention-unet").std,
        _full(s, "model").noise.mdd,
        _halved(s, "model", "attention-unet").std,
        study_tables._by_schedule(s, "model")["halving"].noise.mdd,
    ],
    "Lion gained the most (+0.019, within noise)": lambda s: [
        _halved(s, "optimizer", "lion").mean - _tuned(s, "optimizer", "lion").mean
    ],
    "the Attention U-Net next, 0.835": lambda s: [_fixed(s, "model", "attention-unet").mean],
    "Dice + BCE 0.047 below it": lambda s: [
        _fixed(s, "loss", "dice").mean - _fixed(s, "loss", "combo").mean
    ],
    "flat's seeds spread by 0.03, standard deviation": lambda s: [
        _fixed(s, "scheduler", "flat").std
    ],
    "(0.879–0.884)": lambda s: [
        min(_fixed(s, "optimizer", v).mean for v in ("adam", "adamw", "lion")),
        max(_fixed(s, "optimizer", v).mean for v in ("adam", "adamw", "lion")),
    ],
    "moved each by at most 0.015": lambda s: [
        max(abs(_gain(s, "optimizer", v)) for v in ("adam", "adamw", "lion"))
    ],
    "SGD gains (0.009 → 0.028)": lambda s: [
        _fixed(s, "optimizer", "sgd").mean,
        _tuned(s, "optimizer", "sgd").mean,
    ],
    "the largest point drawn (0.09; the space ends at 0.3)": lambda s: [
        max(lr for lr, _ in _trials(_tuned(s, "optimizer", "sgd"))),
        _space(s)["lr"]["high"],
    ],
    "(FPN +0.110, DeepLabV3+ +0.049, UNet++ +0.015)": lambda s: [
        _gain(s, "model", "fpn"),
        _gain(s, "model", "deeplabv3plus"),
        _gain(s, "model", "unetpp"),
    ],
    "seeds spread by 0.06, standard deviation": lambda s: [
        _tuned(s, "model", "attention-unet").std
    ],
    "FPN's gap of 0.086 is under the 0.099 this table resolves": lambda s: [
        _tuned(s, "model", "unetpp").mean - _tuned(s, "model", "fpn").mean,
        _full(s, "model").noise.mdd,
    ],
    "all three chose the same point (lr 0.0107)": lambda s: [
        _one([_lr(row) for _, row in _full(s, "loss").values])
    ],
    "(0.834 → 0.888)": lambda s: [_fixed(s, "loss", "combo").mean, _tuned(s, "loss", "combo").mean],
    "BCE alone stays near 0.06": lambda s: [_tuned(s, "loss", "bce").mean],
    "trials scored 0.000–0.061 on the tuning fold at every lr from 7e-4 to 0.09": lambda s: [
        min(d for _, d in _trials(_tuned(s, "loss", "bce"))),
        max(d for _, d in _trials(_tuned(s, "loss", "bce"))),
        max(lr for lr, _ in _trials(_tuned(s, "loss", "bce"))),
    ],
    "both chose lr 0.0107": lambda s: [_one([_lr(row) for _, row in _full(s, "scheduler").values])],
    "lifted flat by 0.007 and warm-up + cosine by 0.015": lambda s: [
        _gain(s, "scheduler", "flat"),
        _gain(s, "scheduler", "warmup-cosine"),
    ],
    "spread (0.863–0.907)": lambda s: [
        min(_tuned(s, "scheduler", "flat").dice),
        max(_tuned(s, "scheduler", "flat").dice),
    ],
    "(0.853 against 0.838)": lambda s: [
        _chosen_trial(_tuned(s, "scheduler", "flat")),
        _chosen_trial(_tuned(s, "scheduler", "warmup-cosine")),
    ],
    "trails on every fold, by 0.030–0.081": lambda s: [
        min(_cv_gap(s, f) for f in range(5)),
        max(_cv_gap(s, f) for f in range(5)),
    ],
    "(by 0.030 in this one run, 0.046 over three seeds": lambda s: [
        _cv_gap(s, 0),
        _fixed(s, "model", "unetpp").mean - _fixed(s, "model", "attention-unet").mean,
    ],
    "it is its best fold (0.884), and its mean over folds (0.866) is 0.015 below": lambda s: [
        max(_cv(s, "unetpp").by_seed().values()),
        _cv(s, "unetpp").mean,
        _fixed(s, "model", "unetpp").mean - _cv(s, "unetpp").mean,
    ],
    "the gap is now 0.056, above this table's resolution (0.047)": lambda s: [
        _cv(s, "unetpp").mean - _cv(s, "attention-unet").mean,
        _twin(CV_TABLE)["noise"]["mdd"],
    ],
    "raises UNet++ from 0.8657 to 0.8899 and every model by 0.024–0.038": lambda s: [
        _picked("unetpp", "none", "none")["mean_dice"],
        _picked("unetpp", "hflip", "none")["mean_dice"],
        *_flip_gains(),
    ],
    "lowers every model, UNet++ to 0.6698": lambda s: [
        _picked("unetpp", "multiscale", "none")["mean_dice"]
    ],
    "takes UNet++ with flips from 0.8899 to 0.8957": lambda s: [
        _picked("unetpp", "hflip", "none")["mean_dice"],
        _picked("unetpp", "hflip", "largest-component")["mean_dice"],
    ],
    "(flips, largest component), scores 0.8907, below UNet++ alone (by 0.005": lambda s: [
        _picked("attention-unet+unetpp", "hflip", "largest-component")["mean_dice"],
        _twin(SELECT_TABLE)["rows"][0]["mean_dice"]
        - _picked("attention-unet+unetpp", "hflip", "largest-component")["mean_dice"],
    ],
    "leads the others by 0.056 or more": lambda s: [
        _cv(s, "unetpp").mean
        - max(_cv(s, v).mean for v in ("fpn", "deeplabv3plus", "attention-unet"))
    ],
    "Its resolution is 0.0655 Dice": lambda s: [_twin(SELECT_TABLE)["noise"]["mdd"]],
    "the Attention U-Net alone without flips (0.8101)": lambda s: [_first_below()["mean_dice"]],
    "what it gains over the plain model, 0.030": lambda s: [
        _twin(SELECT_TABLE)["rows"][0]["mean_dice"] - _picked("unetpp", "none", "none")["mean_dice"]
    ],
    "over folds is 0.020–0.053 against 0.008–0.021 over seeds": lambda s: [
        min(_stds(s.cross_validated)),
        max(_stds(s.cross_validated)),
        min(_stds(s.fixed["model"])),
        max(_stds(s.fixed["model"])),
    ],
}

#: Phrases that hold a ratio (``1.67x``): the prose check above reads only Dice-like numbers.
RATIOS: dict[str, Figures] = {
    "optimizer table cost 1.67x its seeds, the full schedule's 3.16x; the loss table 1.86x "
    "(2.84x), the scheduler table 1.68x (3.01x)": lambda s: [
        _cost(s, "optimizer", "halving"),
        _cost(s, "optimizer", "full"),
        _cost(s, "loss", "halving"),
        _cost(s, "loss", "full"),
        _cost(s, "scheduler", "halving"),
        _cost(s, "scheduler", "full"),
    ],
    "the model table 1.79x (2.79x); the study as a whole, each entry once, 1.78x against "
    "2.85x": lambda s: [
        _cost(s, "model", "halving"),
        _cost(s, "model", "full"),
        _study_cost(s, "halving"),
        _study_cost(s, "full"),
    ],
    "their records cost 1.48x the full schedule's seeds": lambda s: [
        study_tables._hours(r for a in study_tables.TUNED for _, r in s.fixed[a].values)[0]
        / study_tables._hours(r for a in study_tables.TUNED for _, r in _full(s, a).values)[0]
    ],
}


def test_every_ratio_in_the_prose_is_the_records(study) -> None:
    prose = _prose(DOC.read_text(encoding="utf-8"))
    for phrase, figures in RATIOS.items():
        assert phrase in prose, phrase
        shown = re.findall(r"\d+\.\d+", phrase)
        made = [f"{v:.2f}" for v in figures(study)]
        assert shown == made, phrase


_FIRST_CV = "the cross-validated table's first records, replaced (in the git history)"
_EARLIER = "the earlier tables, made on another machine; their records were not kept"

#: Numbers the records cannot give, each with the reason.
EXCEPTIONS = {
    "moved by up to 0.015": _EARLIER,
    "best by 0.017 before": _EARLIER,
    "the study's 0.9197 for BCE": "the inspiring study's own figure, on the real data",
    "(0.75, 1 and 1.25 times the side)": "the multiscale augmentation's scales, not Dice",
    "0.8330 against 0.8590, a gap below that table's resolution of 0.0452": _FIRST_CV,
    "folds by −0.055 to +0.013 and UNet++'s by −0.004 to +0.035": _FIRST_CV,
}

_NUMBER = re.compile(r"(?<![\w.])0\.\d+")


def _prose(text: str) -> str:
    """The page without its generated tables and code blocks, every run of white space one
    space (so a phrase does not depend on where a line was wrapped)."""
    text = re.sub(r"<!-- study-tables:(\S+) -->.*?<!-- /study-tables:\1 -->", " ", text, flags=re.S)
    text = re.sub(r"^```.*?^```", " ", text, flags=re.S | re.M)
    return re.sub(r"\s+", " ", text)


def _spans(prose: str, phrase: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(re.escape(phrase), prose)]


def check_prose(text: str, study) -> list[str]:
    """Every problem with the prose's numbers: a phrase not found, a number that is not the
    records' figure, a number no phrase accounts for."""
    prose = _prose(text)
    problems, covered = [], []
    for phrase, figures in {**FIGURES, **{p: None for p in EXCEPTIONS}}.items():
        spans = _spans(prose, phrase)
        if not spans:
            problems.append(f"not in docs/study.md: {phrase!r}")
            continue
        covered += spans
        if figures is None:
            continue
        shown = _NUMBER.findall(phrase)
        made = list(figures(study))
        assert len(shown) == len(made), phrase  # the table above is wrong, not the page
        for number, value in zip(shown, made, strict=True):
            digits = len(number.split(".")[1])
            if f"{abs(value):.{digits}f}" != number:
                problems.append(f"{phrase!r}: {number} where the records give {value:.4f}")
    for m in _NUMBER.finditer(prose):
        if not any(a <= m.start() < b for a, b in covered):
            context = prose[max(0, m.start() - 40) : m.end() + 10]
            problems.append(f"{m[0]} in '…{context}…' is not accounted for (add it to FIGURES)")
    return problems


def test_every_number_in_the_prose_is_a_figure_of_the_records(study) -> None:
    assert check_prose(DOC.read_text(encoding="utf-8"), study) == []


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("the Attention U-Net next, 0.835", "the Attention U-Net next, 0.836"),
        ("SGD gains (0.009 → 0.028)", "SGD gains (0.009 → 0.029)"),
        ("is a coin toss", "is a coin toss (0.912)"),
    ],
    ids=["a changed number", "another", "a new number"],
)
def test_an_edited_number_fails(study, before: str, after: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    assert before in text
    assert check_prose(text.replace(before, after, 1), study)


def test_a_wrong_figure_is_named(study, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(FIGURES, "BCE alone stays near 0.06", lambda s: [0.07])
    problems = check_prose(DOC.read_text(encoding="utf-8"), study)
    assert problems == ["'BCE alone stays near 0.06': 0.06 where the records give 0.0700"]
