"""Run requests: one declaration per option, the command line made from them, the resume
command that writes a request back (every field that changes a run, parsed back the same),
and ``--seeds`` read as a count or a list (``--seeds 0`` says what to write)."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

import pytest

from harness.cli import launch
from harness.engine import distributed
from harness.errors import HarnessError
from harness.runs import planning
from harness.runs.executors import InProcess
from harness.runs.requests import RunRequest, flag, option_fields, parse_seeds, resume_command

#: A value for every RunRequest field, none of them its default. A new field must be added
#: here, and then the test checks that the resume command carries it.
EVERY_FIELD = {
    "model": "unetpp:decoder_attention_type=scse",
    "loss": "combo:dice=0.7,bce=0.3",
    "optimizer": "adamw",
    "scheduler": "cosine",
    "augmentation": "basic",
    "encoder": "resnet18",
    "data": Path("some data/set"),
    "protocol": "tiny",
    "seeds": "0,4",
    "folds": "0,2",
    "plugins": ("my_plugin", "extra.py"),
    "sets": ("epochs=3", "lr=0.01"),
    "device": "cpu",
    "tta": "flip",
    "hparams": ("lr=0.03", "weight_decay=1e-05"),
    "tuned": "8-0123456789",
    "micro_batch": 2,
    "compile": True,
    "precision": "fp16",
    "track": "tensorboard",
    "jobs": 2,
    "cluster": "10.0.0.1:6379",
    "cluster_opts": ("time=4:00:00", "account=lab"),
    "detach": True,
    "dry_run": True,
    "keep_predictions": True,
    "runs_dir": Path("my runs"),
    "leaderboards_dir": Path("boards"),
    "resume": True,
    "rerun": True,
    "nproc": 2,
}
#: Fields added after the resume command's wording was fixed (written only when given):
#: left out of the request whose command must read as it always did.
LATER_FIELDS = {
    "track",
    "jobs",
    "cluster",
    "cluster_opts",
    "detach",
    "dry_run",
    "hparams",
    "tuned",
    "nproc",
    "folds",
    "precision",
    "rerun",
    "keep_predictions",
}
#: Fields a resume command never carries: it continues, it never trains a finished run again.
NOT_CARRIED = {"rerun"}


class _Planned(Exception):
    """Raised by the fake ``plan``: the command line got this far with this request."""


@pytest.fixture
def parsed(cli, monkeypatch: pytest.MonkeyPatch):
    """``parsed(*args)``: the RunRequest that ``harness ARGS...`` hands to ``plan``."""
    for key in (*distributed.LAUNCH_ENV, distributed.NPROC_ENV):
        monkeypatch.delenv(key, raising=False)

    def fake_plan(planner: planning.Planner, request: RunRequest):
        raise _Planned(request)

    monkeypatch.setattr(planning.Planner, "plan", fake_plan)
    # The plugins named here are made up: leave out the early check of the components.
    monkeypatch.setattr(RunRequest, "check_early", lambda self: None)
    # What is parsed, not whether the options go together (the executor's checks).
    monkeypatch.setattr(launch, "executor", InProcess)

    def parse(*args: str) -> RunRequest:
        with pytest.raises(_Planned) as caught:
            cli(*args)
        return caught.value.args[0]

    return parse


def _no_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in (*distributed.LAUNCH_ENV, distributed.NPROC_ENV):
        monkeypatch.delenv(key, raising=False)


def test_every_field_has_a_test_value_unlike_its_default() -> None:
    fields = option_fields()
    assert set(EVERY_FIELD) == {f.name for f in fields}
    for f in fields:
        assert EVERY_FIELD[f.name] != f.default, f.name


def test_resume_command_carries_every_field_and_parses_back_the_same(
    parsed, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_launcher(monkeypatch)
    request = RunRequest.from_options(**EVERY_FIELD)
    command = resume_command(request)
    args = shlex.split(command)
    assert args[:2] == ["harness", "run"] and args[-1] == "--resume"
    for f in option_fields():
        assert (flag(f).name in args) is (f.name not in NOT_CARRIED), f.name
    assert parsed(*args[1:]) == request.replace(rerun=False)


def test_resume_command_of_a_default_request_parses_back_the_same(
    parsed, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_launcher(monkeypatch)
    request = RunRequest.from_options(model="unet", loss="dice")
    command = resume_command(request)
    assert (
        command
        == "harness run --model unet --loss dice --protocol synthetic --runs-dir runs --resume"
    )
    assert parsed(*shlex.split(command)[1:]) == request.replace(resume=True)


def test_resume_command_writes_what_it_always_wrote(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_launcher(monkeypatch)
    earlier = {k: v for k, v in EVERY_FIELD.items() if k not in LATER_FIELDS}
    request = RunRequest.from_options(**{**earlier, "resume": False})
    assert resume_command(request) == (
        "harness run --model unetpp:decoder_attention_type=scse "
        "--loss combo:dice=0.7,bce=0.3 --optimizer adamw --scheduler cosine --augmentation basic "
        "--encoder resnet18 --data 'some data/set' --protocol tiny --seeds 0,4 "
        "--plugin my_plugin --plugin extra.py --set epochs=3 --set lr=0.01 --device cpu "
        "--tta flip --micro-batch 2 --compile --runs-dir 'my runs' --leaderboards-dir boards "
        "--resume"
    )
    monkeypatch.setenv(distributed.NPROC_ENV, "2")
    assert resume_command(RunRequest.from_options(model="unet", loss="dice", compile=True)) == (
        "harness run --model unet --loss dice --protocol synthetic --compile --nproc 2 "
        "--runs-dir runs --resume"
    )


def test_the_older_aug_still_reads_as_augmentation(parsed, cli) -> None:
    base = ("run", "--model", "unet", "--loss", "dice")
    new = parsed(*base, "--augmentation", "flip:p=0.2")
    assert new.entry.augmentation == "flip:p=0.2"
    assert parsed(*base, "--aug", "flip:p=0.2") == new  # a resume command written before
    both = cli(*base, "--aug", "flip", "--augmentation", "none")
    assert both.code == 2 and both.err.strip().splitlines() == [
        "harness: error: --augmentation given twice (once as --aug)"
    ]
    assert "--aug" not in cli("run", "--help").out.replace("--augmentation", "")  # hidden


def test_sweep_gets_the_same_options_with_its_own_defaults(parsed) -> None:
    vary = ("--vary", "encoder=resnet18,resnet34")  # plan sees the first value's request
    base = parsed("sweep", *vary, "--seeds", "2", "--plugin", "p")
    expected = RunRequest.from_options(model="unetpp", loss="dice", encoder="resnet18", seeds="2")
    assert base == dataclasses.replace(expected, plugins=("p",))
    full = {k: v for k, v in EVERY_FIELD.items() if k not in ("tta", "rerun")}  # no --tta
    args = shlex.split(resume_command(RunRequest.from_options(**full)))[2:]
    assert parsed("sweep", *vary, *args) == RunRequest.from_options(**full)


def test_run_requires_model_and_loss(cli) -> None:
    result = cli("run", "--loss", "dice")
    assert result.code == 2 and "--model" in result.err


def test_parse_seeds() -> None:
    assert parse_seeds(None, (1, 2)) == [1, 2]
    assert parse_seeds("3", ()) == [0, 1, 2]
    assert parse_seeds("0,4,7", ()) == [0, 4, 7]
    with pytest.raises(HarnessError, match="--seeds"):
        parse_seeds("1,1", ())


def test_seeds_zero_says_how_to_run_seed_zero() -> None:
    with pytest.raises(HarnessError) as info:
        parse_seeds("0", (1,))
    message = str(info.value)
    assert message.startswith("--seeds 0: ")
    assert "--seeds 0," in message and "\n" not in message
    # ... and what it suggests does run seed 0 alone.
    assert parse_seeds("0,", (1,)) == [0]
    assert parse_seeds("1", (1,)) == [0]


def test_other_empty_seed_lists_keep_their_message() -> None:
    with pytest.raises(HarnessError, match="need at least one seed"):
        parse_seeds(",", ())
    with pytest.raises(HarnessError, match="need at least one seed"):
        parse_seeds("-1", ())


def test_seeds_zero_on_the_command_line_exits_2(cli) -> None:
    result = cli("run", "--model", "unet", "--loss", "dice", "--protocol", "tiny", "--seeds", "0")
    assert result.code == 2
    assert "--seeds 0," in result.err and "Traceback" not in result.err
