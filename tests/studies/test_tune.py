"""Tuning (``harness.studies.tune``): every entry gets the same budget of trials, on a tuning
fold that is not the protocol's, and a tuned row says so (its budget, its values, its trials'
device-hours). What ``harness tune`` prints, and ``tune --vary``: tests/cli/test_tune.py.

One tune of ``unet · dice · sgd`` under ``tiny`` with 2 trials (module fixture) serves most
checks; a second one into another folder checks that the same values are chosen.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from harness import protocol as protocols
from harness.components.entry import Entry, parse_component, parse_hparams
from harness.data.layout import list_images, split
from harness.data.sources import synthetic_dataset
from harness.engine.events import NullObserver
from harness.errors import HarnessError, RunFailed
from harness.pictures.charts import TUNING
from harness.results.leaderboard import regenerate
from harness.results.markdown import budget_lines
from harness.results.records import read_record, write_record
from harness.results.rows import rows
from harness.runs import dispatch, planning, seed
from harness.runs.job import Action, Job
from harness.runs.requests import RunRequest
from harness.runs.settings import LaunchSettings
from harness.studies import audit as audits
from harness.studies import tune as tuning
from harness.studies.halving import Rung
from harness.studies.trials import load_study
from tests.helpers import BENCH, make_record, spaced_plugin

TRIALS = 2
#: Successive halving under tiny (2 epochs): 4 configurations × 1 epoch, then 2 × 2 epochs.
HALVING = {"trials": 4, "schedule": "halving", "eta": 2, "min_epochs": 1}


def _request(tmp: Path, **changes) -> RunRequest:
    base = RunRequest.from_options(
        model="unet",
        loss="dice",
        optimizer="sgd",
        protocol="tiny",
        device="cpu",
        runs_dir=tmp / "runs",
        leaderboards_dir=tmp / "boards",
    )
    return base.replace(**changes)


class _Seen:
    """Every ``train`` call's protocol and images (wrapping the real one), and its entry."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[protocols.Protocol, list[Path], list[Path]]] = []
        self.entries: list[Entry] = []
        real = seed.train

        def spy(run, *args, **kwargs):
            self.calls.append((run.recipe.protocol, list(run.train_images), list(run.val_images)))
            self.entries.append(run.recipe.entry)
            return real(run, *args, **kwargs)

        monkeypatch.setattr(seed, "train", spy)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[tuning.TuneOutcome, list, Path]:
    tmp = tmp_path_factory.mktemp("tune")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
        seen = _Seen(mp)
        outcome = tuning.tune(
            _request(tmp), NullObserver(), options=tuning.TuneOptions(trials=TRIALS)
        )
    return outcome, seen.calls, tmp


def test_trials_never_train_or_validate_on_the_protocols_fold(tuned) -> None:
    outcome, calls, _ = tuned
    proto = protocols.load("tiny")
    images = list_images(synthetic_dataset(proto.synth_ids, proto.synth_size, 0), "train")
    _, fold0 = split(images, proto.folds, proto.fold)
    _, fold1 = split(images, proto.folds, outcome.tuning.fold)
    trial_calls, final_calls = calls[:TRIALS], calls[TRIALS:]
    assert len(final_calls) == len(outcome.final.seeds)
    for _, train_images, val_images in trial_calls:
        assert sorted(val_images) == sorted(fold1)
        assert not set(train_images) & set(fold0)
        assert not set(train_images) & set(fold1)
    for _, train_images, val_images in final_calls:  # the final runs: the protocol's own split
        assert sorted(val_images) == sorted(fold0)
        assert set(train_images) >= set(fold1)
    for trial in outcome.trials:  # and the records say the same
        assert trial.record.benchmark["protocol"]["fields"]["fold"] == 1
        assert trial.record.benchmark["protocol"]["fields"]["exclude_folds"] == [0]
        assert sorted(trial.record.val_images) == sorted(p.name for p in fold1)


def test_each_run_trains_with_its_own_values(tuned) -> None:
    outcome, calls, _ = tuned
    for trial, (proto, _, _) in zip(outcome.trials, calls, strict=False):
        assert proto.lr == trial.values["lr"] and proto.weight_decay == trial.values["weight_decay"]
    proto, _, _ = calls[-1]
    assert proto.lr == outcome.chosen.values["lr"]
    # The values are the budget's: inside the protocol's space, all different.
    space = dict(outcome.tuning.space)
    for trial in outcome.trials:
        for name, value in trial.values.items():
            assert space[name].low <= value <= space[name].high
    assert len({t.values["lr"] for t in outcome.trials}) == TRIALS


def test_the_best_trial_is_chosen_and_the_row_says_tuned(tuned) -> None:
    outcome, _, tmp = tuned
    best = max(t.dice for t in outcome.trials)
    assert outcome.chosen.dice == best
    board = next((tmp / "boards").glob(f"{outcome.final.benchmark.id}.md")).read_text()
    lr = f"lr={outcome.chosen.values['lr']:.3g}"
    momentum = outcome.chosen.values["optimizer.momentum"]  # sgd's own space: into its factory
    row = next(line for line in board.splitlines() if line.startswith("| 1 "))
    label = f"unet · dice · sgd:momentum={momentum} · warmup-cosine · none · tuned {TRIALS}: {lr}"
    assert label in row
    record = read_record(outcome.final.outcomes[0][0])
    assert record.entry["tuned"].startswith(f"{TRIALS}-")
    assert record.tuning["chosen"]["values"] == outcome.chosen.values
    assert len(record.tuning["trials"]) == TRIALS
    trial_hours = sum(t.device_hours for t in outcome.trials)
    assert trial_hours > 0 and record.tuning["trial_device_hours"] == pytest.approx(trial_hours)
    # Device-hours of the row: its seed plus its trials.
    header = next(line for line in board.splitlines() if line.startswith("| # |"))
    hours = float(row.split("|")[header.split("|").index(" Device-hours ")])
    seed_hours = record.cost["wall_s"] / 3600
    assert hours == pytest.approx(seed_hours + trial_hours, abs=1e-4)
    assert (outcome.final.outcomes[0][0].parent / TUNING).is_file()
    assert (outcome.folder / TUNING).is_file()
    summary = json.loads((outcome.folder / tuning.SUMMARY_NAME).read_text())
    assert summary["chosen"]["trial"] == outcome.chosen.number


def test_a_second_tune_into_another_folder_chooses_the_same_values(
    tuned, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome, _, _ = tuned
    again = tuning.tune(
        _request(tmp_path), NullObserver(), options=tuning.TuneOptions(trials=TRIALS)
    )
    assert [t.values for t in again.trials] == [t.values for t in outcome.trials]
    assert [t.dice for t in again.trials] == [t.dice for t in outcome.trials]
    assert again.chosen.values == outcome.chosen.values


def test_a_killed_tune_resumed_does_not_redo_finished_trials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    real = seed.train_job  # each trial's run, as the dispatcher hands it out

    def stop_at_second(job, observer):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(job, observer)

    monkeypatch.setattr(seed, "train_job", stop_at_second)
    lines: list[str] = []

    class Said(NullObserver):
        def message(self, text: str) -> None:
            lines.append(text)

    with pytest.raises(KeyboardInterrupt):
        tuning.tune(_request(tmp_path), Said(), options=tuning.TuneOptions(trials=TRIALS))
    assert "harness tune" in lines[-1] and "--resume" in lines[-1] and "--trials 2" in lines[-1]
    monkeypatch.setattr(seed, "train_job", real)
    # Without --resume the study is not overwritten.
    with pytest.raises(HarnessError, match="--resume"):
        tuning.tune(_request(tmp_path), NullObserver(), options=tuning.TuneOptions(trials=TRIALS))
    seen = _Seen(monkeypatch)
    outcome = tuning.tune(
        _request(tmp_path, resume=True), NullObserver(), options=tuning.TuneOptions(trials=TRIALS)
    )
    # One trial was left, then the final seed: the finished trial was not trained again.
    assert len(seen.calls) == 2
    assert [c[0].lr for c in seen.calls][0] == outcome.trials[1].values["lr"]
    assert all(t.dice is not None for t in outcome.trials)


def test_a_failed_trial_is_not_tried_again_on_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A diverged trial stays failed: a --resume neither retrains it (hours, on real data)
    nor lets a retry change the values chosen after the finals ran."""
    real = seed.train
    failed: list[float] = []

    def first_trial_diverges(run, *args, **kwargs):
        if not failed:
            failed.append(dict(run.recipe.entry.hparams)["lr"])
            raise FloatingPointError("loss is NaN")
        return real(run, *args, **kwargs)

    monkeypatch.setattr(seed, "train", first_trial_diverges)
    first = tuning.tune(
        _request(tmp_path), NullObserver(), options=tuning.TuneOptions(trials=TRIALS)
    )
    assert [t.dice is None for t in first.trials] == [True, False]
    assert first.trials[0].record.status == "failed"
    seen = _Seen(monkeypatch)  # the real train again, counted
    again = tuning.tune(
        _request(tmp_path, resume=True), NullObserver(), options=tuning.TuneOptions(trials=TRIALS)
    )
    assert seen.calls == []  # neither the failed trial nor anything else trained again
    assert again.trials[0].dice is None and again.chosen.values == first.chosen.values


def test_a_value_whose_trials_all_fail_leaves_the_others_their_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --vary, one value that never trains (every trial diverges) does not cost the
    others their finals or the table; the command then fails naming it."""
    from harness.studies.sweep import parse_vary

    real = seed.train

    def adam_diverges(run, *args, **kwargs):
        if run.recipe.entry.optimizer.name == "adam":
            raise FloatingPointError("loss is NaN")
        return real(run, *args, **kwargs)

    monkeypatch.setattr(seed, "train", adam_diverges)
    axis = parse_vary("optimizer=adam,sgd")
    with pytest.raises(RunFailed, match="adam .* all 1 tuning trials failed") as info:
        tuning.tune_sweep(
            _request(tmp_path), axis, NullObserver(), options=tuning.TuneOptions(trials=1)
        )
    (table,) = (tmp_path / "boards").glob("*.ablation-optimizer-tuned.md")
    assert str(table) in str(info.value)
    lines = {line.split(" |")[0]: line for line in table.read_text().splitlines()}
    assert "no succeeded run" in lines["| adam"] and "lr=" in lines["| sgd"]
    assert table.with_suffix(".png").stat().st_size > 0


def test_a_second_tune_of_the_same_study_is_refused_while_one_runs(tmp_path: Path) -> None:
    from filelock import FileLock

    request = _request(tmp_path, resume=True)
    base = planning.plan(request)
    folder = tuning.study_folder(base, tuning.entry_budget(base, TRIALS)[0])
    folder.parent.mkdir(parents=True)
    with FileLock(f"{folder}.lock"), pytest.raises(HarnessError, match="another harness tune"):
        tuning.tune(request, NullObserver(), options=tuning.TuneOptions(trials=TRIALS))
    assert not folder.exists()  # nothing written by the refused one


def test_ctrl_c_in_a_trial_says_the_tune_command() -> None:
    """A run stopped inside a tune names ``harness tune ... --resume``, not its own run."""
    said: list[str] = []

    class Said(NullObserver):
        def message(self, text: str) -> None:
            said.append(text)

    exc = KeyboardInterrupt()
    request = RunRequest.from_options(
        model="unet", loss="dice", runs_dir=Path("runs"), leaderboards_dir=Path("boards")
    )
    hinted = planning.Plan(
        registry=None, benchmark=planning.Benchmark(None, protocols.load("tiny")),
        entry=None, seeds=[0],
        launch=LaunchSettings(torch.device("cpu")), request=request,
        runs_dir=Path("runs"), leaderboards_dir=Path("boards"),
        resume_hint=tuning.tune_hint(request, None),
    )  # fmt: skip
    dispatch._report_interrupt(Job(hinted, 0, Path("/nonexistent"), Action.TRAIN), exc, Said())
    assert said[-1].endswith(
        "\n  harness tune --model unet --loss dice --protocol synthetic --runs-dir runs "
        "--leaderboards-dir boards --resume"
    )
    assert exc.resume_said  # the tune's own handler does not say it twice


def test_cli_tune_with_jobs(local_ray, cli, tmp_path: Path) -> None:
    result = cli(
        "tune", "--model", "unet", "--loss", "dice", "--optimizer", "sgd", "--protocol", "tiny",
        "--trials", "3", "--jobs", "2", "--device", "cpu",
        "--runs-dir", tmp_path / "runs", "--leaderboards-dir", tmp_path / "boards",
    )  # fmt: skip
    assert result.code == 0, result.err[-3000:]
    assert "chosen" in result.out and "tuned 3: lr=" in result.out
    records = [read_record(p) for p in (tmp_path / "runs").rglob("record.json")]
    assert sorted(r.status for r in records) == ["succeeded"] * 4
    dry = cli(
        "tune", "--model", "unet", "--loss", "dice", "--protocol", "tiny", "--dry-run",
        "--runs-dir", tmp_path / "runs", "--leaderboards-dir", tmp_path / "boards",
    )  # fmt: skip
    assert dry.code == 0, dry.err
    assert "8 trials" in dry.out and "estimate:" in dry.out


def test_cli_tune_halving_with_jobs(local_ray, cli, tmp_path: Path) -> None:
    """Halving's rungs go through the same dispatch to Ray: each rung's trials at once, a
    barrier, the next rung; every trial's record at its rung's epochs."""
    result = cli(
        "tune", "--model", "unet", "--loss", "dice", "--optimizer", "adam", "--protocol", "tiny",
        "--trials", "4", "--schedule", "halving", "--eta", "2", "--min-epochs", "1",
        "--jobs", "2", "--device", "cpu",
        "--runs-dir", tmp_path / "runs", "--leaderboards-dir", tmp_path / "boards",
    )  # fmt: skip
    assert result.code == 0, result.err[-3000:]
    assert "Epochs" in result.out and "over the default configuration" in result.out
    (summary,) = (tmp_path / "runs").rglob(tuning.SUMMARY_NAME)
    trials = json.loads(summary.read_text())["trials"]
    assert [(t["rung"], t["epochs"]) for t in trials] == [(1, 1)] * 4 + [(2, 2)] * 2
    for t in trials:
        record = read_record(tmp_path / "runs" / t["record"] / "record.json")
        assert record.status == "succeeded" and len(record.history) == t["epochs"]
        assert record.cost["executor"] == "ray"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trials", "0"], "--trials 0"),
        (["--set", "fold=1"], "[tuning] fold"),
        (["--set", "folds=1"], "folds"),
        (["--set", "folds=2"], "leave none to train the trials on"),
        (["--audit"], "--audit checks successive halving"),
        (["--schedule", "grid"], "--schedule grid: choose one of full, halving"),
        (["--schedule", "halving", "--min-epochs", "2"], "shorter than the protocol's 2 epochs"),
        (["--schedule", "halving", "--eta", "1"], "eta >= 2"),
    ],
)
def test_bad_budgets_are_one_line(cli, tmp_path: Path, args: list[str], message: str) -> None:
    result = cli(
        "tune", "--model", "unet", "--loss", "dice", "--protocol", "tiny", *args,
        "--runs-dir", tmp_path / "runs",
    )  # fmt: skip
    assert result.code == 2 and message in result.err
    assert "Traceback" not in result.err
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("record.json"))


# ---------------------------------------------- declared spaces and successive halving (tiny)


@dataclasses.dataclass
class _Halved:
    """A halving tune of a third-party optimizer that declares its space, killed as its
    second rung starts, resumed with ``--audit``, then run once more."""

    outcome: tuning.TuneOutcome
    again: tuning.TuneOutcome
    killed: list  # the killed command's train calls
    resumed: list  # the resumed one's
    third: list  # the third one's
    entries: list[Entry]  # every train call's entry, all commands
    steps: list[tuple[int, int]]  # every scheduler built: (total_steps, warmup_steps)
    said: list[str]  # what the killed command said
    tmp: Path


@pytest.fixture(scope="module")
def halved(tmp_path_factory: pytest.TempPathFactory) -> _Halved:
    from harness.components import contracts

    tmp = tmp_path_factory.mktemp("halving")
    request = _request(tmp, optimizer="damped-sgd", plugins=(str(spaced_plugin(tmp)),))
    options = tuning.TuneOptions(**HALVING)
    said: list[str] = []
    steps: list[tuple[int, int]] = []

    class Said(NullObserver):
        def message(self, text: str) -> None:
            said.append(text)

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
        real_build, real_job, jobs = contracts.build_scheduler, seed.train_job, []

        def build(component, optimizer, *, total_steps, warmup_steps, **params):
            steps.append((total_steps, warmup_steps))
            return real_build(
                component, optimizer, total_steps=total_steps, warmup_steps=warmup_steps, **params
            )

        def stop_at_the_second_rung(job, observer):
            jobs.append(job)
            if len(jobs) == HALVING["trials"] + 1:  # the first trial of rung 2
                raise KeyboardInterrupt
            return real_job(job, observer)

        mp.setattr(contracts, "build_scheduler", build)
        mp.setattr(seed, "train_job", stop_at_the_second_rung)
        seen = _Seen(mp)
        with pytest.raises(KeyboardInterrupt):
            tuning.tune(request, Said(), options=options)
        killed, seen.calls = seen.calls, []
        mp.setattr(seed, "train_job", real_job)
        resumed_request = request.replace(resume=True)
        audited = dataclasses.replace(options, audit=True)
        outcome = tuning.tune(resumed_request, NullObserver(), options=audited)
        resumed, seen.calls = seen.calls, []
        again = tuning.tune(resumed_request, NullObserver(), options=audited)
    return _Halved(outcome, again, killed, resumed, seen.calls, seen.entries, steps, said, tmp)


def test_halving_trains_each_rung_compressed(halved: _Halved) -> None:
    outcome = halved.outcome
    assert outcome.rungs == (Rung(0, 4, 1), Rung(1, 2, 2))
    assert [t.rung for t in outcome.trials] == [0, 0, 0, 0, 1, 1]
    first = {t.number: t.dice for t in outcome.trials if t.rung == 0}
    going = sorted(first, key=lambda n: (-first[n], n))[:2]
    assert sorted(t.number for t in outcome.trials if t.rung == 1) == sorted(going)
    assert outcome.chosen.rung == 1 and outcome.chosen.number in going
    tiny = protocols.load("tiny")  # 2 epochs, half an epoch of warm-up
    for trial in outcome.trials:
        fields = trial.record.benchmark["protocol"]["fields"]
        assert fields["epochs"] == trial.epochs == (1, 2)[trial.rung]
        assert fields["warmup_epochs"] == tiny.warmup_epochs * trial.epochs / tiny.epochs
        assert len(trial.record.history) == trial.epochs  # trained its rung's epochs, no more
        assert trial.record.tuning["rung"] == trial.rung + 1
        assert trial.record.tuning["epochs"] == trial.epochs
    # The schedule ran its whole course in each rung's epochs: total and warm-up steps.
    _, images, _ = halved.killed[0]
    per_epoch = -(-len(images) // tiny.batch_size)
    assert (1 * per_epoch, round(0.25 * per_epoch)) in halved.steps
    assert (2 * per_epoch, round(0.5 * per_epoch)) in halved.steps
    assert [c[0].epochs for c in halved.killed] == [1, 1, 1, 1]


def test_the_first_configuration_is_the_default_and_the_gain_is_recorded(halved) -> None:
    outcome = halved.outcome
    zero = next(t for t in outcome.trials if t.number == 0)
    tiny = protocols.load("tiny")
    assert zero.values == {"lr": tiny.lr, "optimizer.dampening": 0.1, "weight_decay": 1e-4}
    default = outcome.default
    assert default["trial"] == 0 and default["values"] == zero.values
    mine = next(
        t
        for t in outcome.trials
        if t.number == outcome.chosen.number and t.rung == default["rung"] - 1
    )
    assert default["gain"] == pytest.approx(mine.dice - default["mean_dice"])
    record = read_record(outcome.final.outcomes[0][0])
    assert record.tuning["default"]["gain"] == pytest.approx(default["gain"])


def test_a_declared_space_reaches_every_trial_and_final_record(halved: _Halved) -> None:
    outcome = halved.outcome
    expected = {
        "lr": {"low": 1e-3, "high": 0.3, "log": True, "from": "damped-sgd"},
        "optimizer.dampening": {"low": 0.0, "high": 0.5, "log": False, "from": "damped-sgd"},
        "weight_decay": {"low": 1e-6, "high": 1e-2, "log": True, "from": "protocol"},
    }
    for trial in outcome.trials:
        assert trial.record.tuning["space"] == expected
        optimizer = trial.record.entry["optimizer"]
        assert optimizer["name"] == "damped-sgd"
        assert optimizer["params"] == {"dampening": trial.values["optimizer.dampening"]}
        assert trial.record.entry["hparams"]["lr"] == trial.values["lr"]
        assert 1e-3 <= trial.values["lr"] <= 0.3 and 0 <= trial.values["optimizer.dampening"] <= 0.5
    # Each run trained with its own dampening: it went into the factory.
    assert {e.optimizer.kwargs["dampening"] for e in halved.entries} >= {
        t.values["optimizer.dampening"] for t in outcome.trials
    }
    record = read_record(outcome.final.outcomes[0][0])
    chosen = outcome.chosen.values
    assert record.tuning["space"] == expected
    assert record.entry["optimizer"]["params"] == {"dampening": chosen["optimizer.dampening"]}
    assert record.entry["hparams"] == {"lr": chosen["lr"], "weight_decay": chosen["weight_decay"]}
    budget = record.tuning["budget"]
    assert budget.startswith("tuned: 4 trials (qmc seed 0) over lr [0.001, 0.3] log")
    assert "successive halving (eta 2, from 1 epochs); rungs 4×1, 2×2 epochs" in budget
    assert budget.endswith("own space: lr, optimizer.dampening from damped-sgd")
    assert record.tuning["chosen"]["epochs"] == 2 and record.tuning["rungs"][1]["configs"] == 2
    assert record.entry["tuned"] == f"4-{outcome.tuning.hash}"
    board = (halved.tmp / "boards" / f"{outcome.final.benchmark.id}.md").read_text()
    assert f"damped-sgd:dampening={chosen['optimizer.dampening']} · " in board


def test_a_killed_halving_resumed_across_a_rung_boundary_trains_nothing_twice(halved) -> None:
    assert "--schedule halving --eta 2 --min-epochs 1" in halved.said[-1]
    assert "--trials 4" in halved.said[-1] and "--resume" in halved.said[-1]
    # The resumed command: rung 2's two trials, the audit's two others, the final seed.
    assert [c[0].epochs for c in halved.resumed] == [2, 2, 2, 2, 2]
    study = load_study(halved.outcome.folder, halved.outcome.tuning)
    assert len(study.get_trials()) == 4  # no new point was drawn
    assert halved.third == []  # and a third time, nothing at all


def test_the_same_records_give_the_same_choice(halved: _Halved) -> None:
    first, again = halved.outcome, halved.again
    assert again.chosen.number == first.chosen.number and again.chosen.values == first.chosen.values
    assert [(t.number, t.rung, t.dice) for t in again.trials] == [
        (t.number, t.rung, t.dice) for t in first.trials
    ]


def test_the_audit_writes_its_report_beside_the_study(halved: _Halved) -> None:
    outcome = halved.outcome
    assert outcome.audit == outcome.folder / audits.AUDIT_JSON
    report = json.loads(outcome.audit.read_text())
    assert report["format"] == "harness-tuning-audit/1" and report["full_epochs"] == 2
    assert [r["rung"] for r in report["rungs"]] == [1, 2]
    assert [r["pairs"] for r in report["rungs"]] == [4, 2]
    assert report["chosen"]["number"] == outcome.chosen.number
    assert report["regret"] >= 0 and set(report["rule"]) == {
        "tau_min", "regret_max", "keep_halving", "text"
    }  # fmt: skip
    assert report["bootstrap"]["seed"] == 0 and len(report["records"]) == 4
    assert all(c["full_dice"] is not None for c in report["configs"])
    assert (outcome.folder / audits.AUDIT_PNG).stat().st_size > 0
    assert json.loads(halved.again.audit.read_text()) == report  # same records, same audit


def test_dry_run_prints_the_rungs_and_the_estimate(cli, halved: _Halved) -> None:
    result = cli(
        "tune", "--model", "unet", "--loss", "dice", "--optimizer", "damped-sgd",
        "--plugin", halved.tmp / "damped.py", "--protocol", "tiny", "--trials", "4",
        "--schedule", "halving", "--eta", "2", "--min-epochs", "1", "--audit", "--dry-run",
        "--runs-dir", halved.tmp / "runs", "--leaderboards-dir", halved.tmp / "boards",
    )  # fmt: skip
    assert result.code == 0, result.err[-3000:]
    out = " ".join(result.out.split())
    assert "(exists; --resume continues it)" in out
    assert "rung 1: 4 configurations × 1 epochs = 4 trial-epochs" in out
    assert "rung 2: 2 configurations × 2 epochs = 4 trial-epochs" in out
    assert "trials" in out and "(8 trial-epochs, 4 runs of 2 epochs)" in out
    assert "x the entry's fixed runs" in out and "a full schedule's 4 trials would take" in out
    assert "audit: 4 configurations at 2 epochs" in out


def test_a_bad_declaration_is_one_line_from_tune_and_check_plugin(cli, tmp_path: Path) -> None:
    bad = spaced_plugin(tmp_path, bad=True)
    for args in (
        ["tune", "--model", "unet", "--loss", "dice", "--optimizer", "damped-sgd",
         "--protocol", "tiny", "--trials", "1", "--runs-dir", tmp_path / "runs"],
        ["check-plugin", "damped-sgd"],
    ):  # fmt: skip
        result = cli(*args, "--plugin", bad)
        assert result.code == 2, result.err
        (line,) = result.err.strip().splitlines()
        assert "optimizer 'damped-sgd' from bad_space.py (file) declares a bad tuning space" in line
        assert "dampening: a log range needs low > 0" in line
    assert not list((tmp_path / "runs").rglob("record.json"))


# ----------------------------------------------------------------- the pieces, without training


def test_tuning_table_in_a_protocol_file(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        'name = "p"\nfolds = 5\n[tuning]\ntrials = 4\nfold = 2\n'
        "[tuning.space]\nlr = [1e-3, 1e-1]\nwarmup_epochs = {low = 0, high = 2, log = false}\n"
    )
    proto = protocols.load(str(path))
    assert proto.tuning.trials == 4 and proto.tuning.fold == 2
    assert dict(proto.tuning.space)["warmup_epochs"] == protocols.Range(0.0, 2.0, False)
    # The budget is not part of the benchmark: the hash is that of the same file without it.
    bare = tmp_path / "bare.toml"
    bare.write_text('name = "p"\nfolds = 5\n')
    assert proto.hash == protocols.load(str(bare)).hash
    assert proto.tuning.hash != protocols.load(str(bare)).tuning.hash


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[tuning]\ntrial = 3\n", "unknown key 'trial'"),
        ("[tuning.space]\nepochs = [1, 3]\n", "'epochs' cannot be tuned"),
        ("[tuning.space]\nlr = [0.1, 0.01]\n", "low < high"),
        ("[tuning.space]\nweight_decay = [0, 0.01]\n", "low > 0 on a log scale"),
        ('[tuning]\nsampler = "grid"\n', "sampler 'grid' unknown"),
        ('[tuning]\nschedule = "hyperband"\n', "schedule 'hyperband' unknown"),
        ("[tuning]\neta = 1\n", "eta must be a whole number of at least 2"),
        ("[tuning]\nmin_epochs = 0\n", "min_epochs must be a whole number of at least 1"),
        ('[tuning]\nfixed = ["epochs"]\n', "'epochs' is not a tunable field"),
        ("[tuning]\nfixed = 3\n", "expected a list of field names"),
        ('[tuning]\nfixed = ["lr"]\n[tuning.space]\nlr = [1e-3, 1e-1]\n', "lr is both fixed"),
    ],
)
def test_bad_tuning_tables_name_the_key(tmp_path: Path, table: str, message: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text('name = "p"\n' + table)
    with pytest.raises(HarnessError, match=message.replace("[", r"\[")) as info:
        protocols.load(str(path))
    assert str(path) in str(info.value)


def test_a_schedule_and_fixed_fields_in_a_protocol_file(tmp_path: Path) -> None:
    """``[tuning] schedule``, ``eta``, ``min_epochs`` and ``fixed``: in the budget's hash and
    words; a budget without them keeps the hash it had (the published tables' tags)."""
    path = tmp_path / "p.toml"
    path.write_text(
        'name = "p"\n[tuning]\nschedule = "halving"\neta = 3\nmin_epochs = 6\n'
        'fixed = ["weight_decay"]\n[tuning.space]\nlr = [1e-4, 1e-1]\n'
    )
    budget = protocols.load(str(path)).tuning
    assert (budget.schedule, budget.eta, budget.min_epochs) == ("halving", 3, 6)
    assert budget.fixed == ("weight_decay",)
    assert budget.to_dict()["schedule"] == "halving" and budget.to_dict()["fixed"] == [
        "weight_decay"
    ]
    assert "successive halving (eta 3, from 6 epochs)" in budget.budget
    assert budget.budget.endswith("weight_decay fixed")
    plain = protocols.Tuning(space=budget.space)
    assert set(plain.to_dict()) == {"trials", "sampler", "seed", "fold", "trial_seed", "space"}
    halved = dataclasses.replace(plain, schedule="halving")
    assert len({plain.hash, halved.hash, dataclasses.replace(halved, eta=2).hash}) == 3
    assert dataclasses.replace(plain, eta=2).hash == plain.hash  # eta means nothing under full


def test_builtin_hashes_are_unchanged_by_the_new_fields() -> None:
    assert protocols.load("synthetic").hash == "2267276f85"
    assert protocols.load("tiny").hash == "efe032ab7d"
    trial = protocols.load("tiny").derive(["fold=1", "exclude_folds=[0]"])
    assert trial.hashed_fields()["exclude_folds"] == [0] and trial.hash != "efe032ab7d"


def test_one_budget_one_spelling(tmp_path: Path) -> None:
    """The points follow the space's order and the hash sorts it: the space is sorted when
    read. A set of excluded folds hashes the same however it is written."""
    assert protocols.load("synthetic").tuning.hash == "680dcf3645"  # the published tables'
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text('name = "p"\n[tuning.space]\nweight_decay = [1e-6, 1e-2]\nlr = [1e-4, 1e-1]\n')
    b.write_text('name = "p"\n[tuning.space]\nlr = [1e-4, 1e-1]\nweight_decay = [1e-6, 1e-2]\n')
    first, second = protocols.load(str(a)).tuning, protocols.load(str(b)).tuning
    assert first.space == second.space and first.hash == second.hash
    assert [k for k, _ in first.space] == ["lr", "weight_decay"]
    tiny = protocols.load("tiny")
    assert tiny.derive(["exclude_folds=[3,2,3]"]).hash == tiny.derive(["exclude_folds=[2,3]"]).hash


def test_split_leaves_excluded_folds_out_of_training(tmp_path: Path) -> None:
    images = [tmp_path / f"ID{i:03d}" / f"image{j}.png" for i in range(10) for j in range(2)]
    train, val = split(images, 5, 1, exclude=[0])
    _, fold0 = split(images, 5, 0)
    assert not set(train) & set(fold0) and not set(train) & set(val)
    assert len(train) == 12 and len(val) == 4


def test_entry_keys_without_hparams_are_what_they_were() -> None:
    """Run folders are named from the key: an entry without hparams keeps its folder."""
    plain = Entry(*(parse_component(n, "--x") for n in ("unet", "dice", "sgd", "flat", "none")))
    assert plain.key == "unet|dice|sgd|flat|none|"
    hp = dataclasses.replace(plain, hparams=parse_hparams(["lr=0.03"]), tuned="8-abc")
    assert hp.key == "unet|dice|sgd|flat|none||lr=0.03|tuned=8-abc"
    assert hp.label.endswith("· tuned 8: lr=0.03")
    assert Entry.from_dict(hp.to_dict()) == hp
    with pytest.raises(HarnessError, match="--hparam"):
        parse_hparams(["epochs=3"])


def test_a_table_says_when_rows_had_different_budgets(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    fixed = make_record("dice", 0, 0.8)
    tuned = make_record("dice", 0, 0.9)
    tuned.entry = {**tuned.entry, "hparams": {"lr": 0.03}, "tuned": "8-abc"}
    tuned.tuning = {"budget": "tuned: 8 trials over lr", "trial_device_hours": 1.0}
    write_record(runs / "a" / "record.json", fixed)
    write_record(runs / "b" / "record.json", tuned)
    table = rows([fixed, tuned], BENCH["id"])
    assert [r.entry.tuned for r in table] == ["8-abc", None]
    assert table[0].device_hours() == pytest.approx(1.0 + 60 / 3600)
    text = regenerate(BENCH["id"], runs, tmp_path / "boards").read_text()
    assert "**Tuning**" in text and "tuned: 8 trials over lr" in text
    assert "fixed (the protocol's values)" in text
    assert budget_lines(table[1:]) == []  # no row tuned: the table is as it was
    (line,) = budget_lines(table[:1])  # one budget: said once
    assert "same budget (tuned: 8 trials over lr)" in line
