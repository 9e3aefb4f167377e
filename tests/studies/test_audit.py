"""The audit of halving's choice (``harness.studies.audit``): Kendall's τ per rung, the regret,
seeded bootstrap intervals over configurations, the rule's verdict, the JSON and the PNG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.protocol import Tuning
from harness.studies import audit, halving
from harness.studies.audit import Scores

SCHEDULE = halving.rungs(Tuning(trials=6, schedule="halving", eta=3, min_epochs=6), 80)


def _configs(full: list[float | None], first: list[float | None]) -> list[Scores]:
    """Six configurations: their first rung's Dice, the best two's second rung (their full
    Dice minus a little), and their full-horizon Dice."""
    going = halving.promote(dict(enumerate(first)), 2)
    return [
        Scores(
            number=n,
            values={"lr": 10.0**-n},
            rungs={0: first[n], **({1: (full[n] or 0) - 0.01} if n in going else {})},
            full=full[n],
        )
        for n in range(6)
    ]


def test_kendall_tau() -> None:
    assert audit.kendall([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert audit.kendall([1, 2, 3, 4], [40, 30, 20, 10]) == pytest.approx(-1.0)
    assert audit.kendall([1, 2], [1, 2]) is None  # too few pairs
    assert audit.kendall([1, 1, 1], [1, 2, 3]) is None  # no order in one


def test_halving_order_and_regret() -> None:
    configs = _configs(
        full=[0.80, 0.85, 0.70, 0.60, 0.90, 0.50], first=[0.5, 0.6, 0.4, 0.3, 0.2, 0.1]
    )
    # Configurations 1 and 0 went on; 1 scores best at the second rung: halving chooses it.
    assert audit.chosen(configs).number == 1
    assert audit.regret(configs) == pytest.approx(0.90 - 0.85)  # 4 was best at full horizon
    assert configs[4].order_key() == (0, 0.2, -4)
    failed = [Scores(0, {}, {0: None}, None), Scores(1, {}, {0: 0.3}, 0.4)]
    assert audit.chosen(failed).number == 1 and audit.regret(failed) == 0.0


def test_interval_is_seeded_and_covers_the_statistic() -> None:
    values = [0.1, 0.4, 0.2, 0.9, 0.5, 0.3]

    def mean(rows: list[int]) -> float:
        return sum(values[i] for i in rows) / len(rows)

    first = audit.interval(mean, len(values), seed=0)
    assert first == audit.interval(mean, len(values), seed=0)  # same seed, same interval
    assert first != audit.interval(mean, len(values), seed=1)
    assert first[0] < sum(values) / len(values) < first[1]
    assert audit.interval(lambda rows: None, 6, seed=0) is None


def test_the_report_and_the_rule() -> None:
    agree = _configs(full=[0.9, 0.8, 0.7, 0.6, 0.5, 0.4], first=[0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    report = audit.audit(agree, SCHEDULE, seed=0)
    assert report["format"] == "harness-tuning-audit/1"
    first, second = report["rungs"]
    assert first == {
        "rung": 1, "epochs": 6, "configs": 6, "pairs": 6, "kendall_tau": pytest.approx(1.0),
        "interval": first["interval"],
    }  # fmt: skip
    assert first["interval"][1] == pytest.approx(1.0) and second["pairs"] == 2
    assert second["kendall_tau"] is None and second["interval"] is None
    assert report["chosen"] == {"number": 0, "full_dice": 0.9} == report["best"]
    assert report["regret"] == 0.0 and report["regret_interval"] == [0.0, 0.0]
    assert report["bootstrap"] == {
        "resamples": audit.RESAMPLES, "level": 0.95, "seed": 0, "over": "configurations"
    }  # fmt: skip
    assert report["rule"]["keep_halving"] and report["rule"]["tau_min"] == 0.6
    assert report["configs"][0]["rungs"] == {"6": 0.6, "18": pytest.approx(0.89)}
    disagree = _configs(full=[0.4, 0.5, 0.6, 0.7, 0.8, 0.9], first=[0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    bad = audit.audit(disagree, SCHEDULE, seed=0)
    assert bad["rungs"][0]["kendall_tau"] == pytest.approx(-1.0)
    assert bad["regret"] == pytest.approx(0.4) and not bad["rule"]["keep_halving"]
    assert 'fall back to schedule = "full"' in bad["rule"]["text"]
    assert audit.audit(disagree, SCHEDULE, seed=0) == bad  # deterministic


def test_write_gives_the_json_and_a_picture(tmp_path: Path) -> None:
    configs = _configs(full=[0.9, 0.8, None, 0.6, 0.5, 0.4], first=[0.6, 0.5, None, 0.3, 0.2, 0.1])
    report = audit.audit(configs, SCHEDULE, seed=0)
    path, picture = audit.write(tmp_path, report, "unetpp · dice · sgd")
    assert path == tmp_path / audit.AUDIT_JSON and json.loads(path.read_text()) == json.loads(
        json.dumps(report)
    )
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    first = picture.read_bytes()
    audit.write(tmp_path, report, "unetpp · dice · sgd")
    assert picture.read_bytes() == first  # same numbers, same bytes
