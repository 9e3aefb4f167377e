"""``harness rank JOB`` (``harness.cli.rank``, hidden): one rank of a data-parallel run that
``--nproc`` started. It is not listed; a rank other than 0 goes quiet; the rank's exit code
is the command's; the process group is shut down however the rank ends. (Ranks that really
train: tests/engine/test_distributed.py; the job file: tests/runs/test_ranks.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import root
from harness.engine import distributed
from harness.runs import ranks


@pytest.fixture
def shutdowns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(distributed, "shutdown", lambda: calls.append("shutdown"))
    monkeypatch.setattr(root.out, "quiet", False)
    monkeypatch.setattr(root.err, "quiet", False)
    return calls


def test_it_is_not_listed(cli) -> None:
    listed = cli("--help").out
    assert " run " in listed and " rank " not in listed


def test_the_ranks_exit_code_is_the_commands(
    cli, shutdowns: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    handed: list[Path] = []

    def run_rank(job: Path, observer: object) -> int:
        handed.append(job)
        return 130  # stopped by Ctrl-C

    monkeypatch.setattr(ranks, "run_rank", run_rank)
    monkeypatch.setenv("RANK", "1")
    result = cli("rank", tmp_path / "job.pickle")
    assert result.code == 130 and handed == [tmp_path / "job.pickle"]
    assert shutdowns == ["shutdown"]
    assert root.out.quiet and root.err.quiet  # rank 1: the main rank is the one voice
    monkeypatch.setattr(ranks, "run_rank", lambda job, observer: 0)
    monkeypatch.setenv("RANK", "0")
    assert cli("rank", tmp_path / "job.pickle").code == 0


def test_the_process_group_is_shut_down_when_the_rank_fails(
    cli, shutdowns: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(job: Path, observer: object) -> int:
        raise ValueError("a bug in the rank")

    monkeypatch.setattr(ranks, "run_rank", broken)
    with pytest.raises(ValueError, match="a bug in the rank"):  # a bug keeps its traceback
        cli("rank", tmp_path / "job.pickle")
    assert shutdowns == ["shutdown"]
