"""The dispatcher: what each run does is decided once (``harness.runs.job.decide``, whose
table is in ``tests/runs/test_job.py``), an earlier success is kept by one rule
(``keeps_earlier``), and both executors (this process, Ray) go through the same decisions; a
command prepares its data once."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from harness.engine import checkpoint
from harness.engine.events import NullObserver
from harness.errors import HarnessError, RunFailed
from harness.results.records import RECORD_NAME, read_record
from harness.runs import planning
from harness.runs.dispatch import dispatch, schedule
from harness.runs.job import Action
from harness.runs.planning import plan, run_dir
from harness.runs.requests import RunRequest
from tests.helpers import PLUGIN, REPO


def _calls(name: str) -> list[str]:
    """``module:line`` of every call of ``name`` in the package."""
    found = []
    for path in sorted((REPO / "harness").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if called == name:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def test_each_rule_lives_in_one_place() -> None:
    """``decide`` is the only place that chooses an action (every other module only reads
    one), and the earlier-success rule is applied by the dispatcher alone."""
    choosers = []
    for path in sorted((REPO / "harness").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            value = getattr(node, "value", None)
            is_choice = isinstance(node, ast.Return | ast.Assign | ast.AnnAssign)
            if is_choice and isinstance(value, ast.Attribute):
                base = value.value
                if isinstance(base, ast.Name) and base.id == "Action":
                    choosers.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert {c.split(":")[0] for c in choosers} == {"harness/runs/job.py"}, choosers
    assert {c.split(":")[0] for c in _calls("decide")} == {"harness/runs/job.py"}
    assert {c.split(":")[0] for c in _calls("keeps_earlier")} == {"harness/runs/dispatch.py"}
    assert {c.split(":")[0] for c in _calls("keep_earlier")} == {"harness/runs/dispatch.py"}


# --- both executors through the same decisions ------------------------------------------

#: A model that raises while a marker file exists (so a Ray worker sees it too).
FLAKY = """
from pathlib import Path

import torch

from harness import hookimpl

MARKER = Path({marker!r})


class Flaky(torch.nn.Module):
    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.body = torch.nn.Conv2d(in_channels, num_classes, 3, padding=1)

    def forward(self, x):
        if MARKER.exists():
            raise RuntimeError("the flaky model broke this time")
        return self.body(x)


@hookimpl
def harness_models():
    return {{"flaky": lambda *, num_classes, in_channels, encoder=None: Flaky(
        in_channels, num_classes
    )}}
"""


@pytest.fixture(scope="module")
def flaky(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("flaky")
    marker = root / "broken"
    (root / "flaky.py").write_text(FLAKY.format(marker=str(marker)))
    return root / "flaky.py", marker


def _request(tmp: Path, plugin: Path, **changes) -> RunRequest:
    return RunRequest.from_options(
        model="flaky", loss="dice", plugins=[str(plugin)], protocol="tiny",
        sets=["epochs=2"], device="cpu", runs_dir=tmp / "runs",
        leaderboards_dir=tmp / "boards", **changes,
    )  # fmt: skip


def _interrupted(tmp: Path, plugin: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Seed 1 as a run killed after its last checkpoint, before its record, leaves it
    (trained here: the checkpoint is kept, the record removed)."""
    with monkeypatch.context() as patched:
        patched.setattr("harness.engine.checkpoint.retire", lambda *args, **kwargs: None)
        one = plan(_request(tmp, plugin, seeds="1,"))
        dispatch([one], NullObserver())
    folder = run_dir(one, 1)
    (folder / RECORD_NAME).unlink()
    assert checkpoint.exists(checkpoint.directory(folder))
    return folder


@pytest.mark.parametrize("executor", ["in-process", "ray"])
def test_both_executors_carry_out_the_same_decisions(
    executor: str,
    flaky: tuple[Path, Path],
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fresh: trains. Succeeded, with or without --resume: skipped (untouched). A --rerun
    that fails: the earlier success kept. Interrupted, --resume: resumed. Interrupted, no
    --resume: refused."""
    plugin, marker = flaky
    ray = {}
    if executor == "ray":
        request.getfixturevalue("local_ray")
        ray = {"jobs": 2}
    marker.unlink(missing_ok=True)
    first = plan(_request(tmp_path, plugin, **ray))
    dispatch([first], NullObserver())
    folder = run_dir(first, 0)
    done = read_record(folder / RECORD_NAME)
    assert done is not None and done.status == "succeeded" and not done.resumes
    before = (folder / RECORD_NAME).read_bytes()

    assert dispatch([plan(_request(tmp_path, plugin, resume=True, **ray))], NullObserver())
    assert (folder / RECORD_NAME).read_bytes() == before  # skipped: nothing trained
    assert dispatch([plan(_request(tmp_path, plugin, **ray))], NullObserver())
    assert (folder / RECORD_NAME).read_bytes() == before  # skipped without --resume too

    marker.write_text("")
    with pytest.raises(RunFailed, match="flaky model broke"):
        dispatch([plan(_request(tmp_path, plugin, rerun=True, **ray))], NullObserver())
    assert (folder / RECORD_NAME).read_bytes() == before  # the earlier success kept
    assert not checkpoint.exists(checkpoint.directory(folder))
    marker.unlink()

    # An interrupted run: refused without --resume, resumed with it.
    stopped = _interrupted(tmp_path, plugin, monkeypatch)
    with pytest.raises(HarnessError, match="--resume"):
        dispatch([plan(_request(tmp_path, plugin, seeds="1,", **ray))], NullObserver())
    dispatch([plan(_request(tmp_path, plugin, seeds="1,", resume=True, **ray))], NullObserver())
    resumed = read_record(stopped / RECORD_NAME)
    assert resumed is not None and resumed.status == "succeeded" and resumed.resumes


def test_a_dry_run_shows_the_same_decisions(flaky: tuple[Path, Path], tmp_path: Path) -> None:
    plugin, marker = flaky
    marker.unlink(missing_ok=True)
    done = plan(_request(tmp_path, plugin, seeds="1"))
    dispatch([done], NullObserver())
    both = plan(_request(tmp_path, plugin, seeds="2", resume=True))
    assert [j.action for j in schedule([both]).jobs] == [Action.SKIP, Action.TRAIN]


# --- one preparation per command --------------------------------------------------------


def test_a_sweep_of_three_values_prepares_its_data_once(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepared: list[object] = []
    real = planning.Planner._prepare_data

    def counted(self, data, proto):
        prepared.append(data)
        return real(self, data, proto)

    monkeypatch.setattr(planning.Planner, "_prepare_data", counted)
    decoded: list[int] = []
    real_decode = planning.preprocessed
    monkeypatch.setattr(
        planning,
        "preprocessed",
        lambda root, resolution, **kw: (
            decoded.append(resolution) or real_decode(root, resolution, **kw)
        ),
    )
    plugin = tmp_path / "small.py"
    plugin.write_text(PLUGIN)
    result = cli(
        "sweep", "--vary", "loss=dice,bce,combo", "--model", "small-cnn", "--plugin", plugin,
        "--protocol", "tiny", "--set", "epochs=1", "--device", "cpu",
        "--runs-dir", tmp_path / "runs", "--leaderboards-dir", tmp_path / "boards",
    )  # fmt: skip
    assert result.code == 0, result.err[-2000:]
    assert len(list((tmp_path / "runs").rglob(RECORD_NAME))) == 3
    assert len(prepared) == 1 and len(decoded) == 1, (prepared, decoded)


def test_no_more_runs_go_at_once_than_there_are_to_train(tmp_path: Path) -> None:
    """``--jobs 4`` with two runs to train trains them two at once: what their timed windows
    keep (``concurrent_runs``), whatever the executor."""

    class Keeps:
        """An executor that keeps how many runs each job's plan says go at once."""

        name, announces, remote = "keeps", False, False
        seen: list[int | None] = []

        def run(self, jobs, land, observer) -> None:
            self.seen += [job.plan.launch.concurrent_runs for job in jobs]

    request = RunRequest.from_options(
        model="unet", loss="dice", protocol="tiny", seeds="0,1", device="cpu", jobs=4,
        runs_dir=tmp_path / "runs", leaderboards_dir=tmp_path / "boards",
    )  # fmt: skip
    planned = plan(request)
    assert planned.launch.concurrent_runs == 4
    executor = Keeps()
    dispatch([planned], NullObserver(), executor=executor)  # type: ignore[arg-type]
    assert executor.seen == [2, 2]
