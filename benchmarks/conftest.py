"""Shared fixtures for the benchmark suite, and a closing summary of the speed-ups.

The suite runs two ways: ``pytest benchmarks --benchmark-only`` measures (``make bench``),
and ``pytest tests benchmarks --benchmark-disable`` calls every benchmarked function once,
so the correctness checks beside each measurement run with the tests.  Each group holds
the harness's implementation (named ``harness``) and what it is compared with; the
summary divides their mean times, so the one run that measures also states the ratios.
"""

from __future__ import annotations

from pathlib import Path

import pytest

#: The side of the competition's images.
SIZE = 2048


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never touch the user's cache: one session-wide cache folder under pytest's temp."""
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "bench-cache"))


@pytest.fixture(scope="session")
def hands_2048(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two ID folders (four hands) of the phantom at the competition's 2048x2048."""
    from harness.data.phantom import synthesize

    return synthesize(tmp_path_factory.mktemp("bench") / "hands", ids=2, size=SIZE, test_ids=0)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    """After a measuring run: each group's harness entry against the others, as ratios."""
    session = getattr(config, "_benchmarksession", None)
    benchmarks = [b for b in getattr(session, "benchmarks", []) if getattr(b, "stats", None)]
    if not benchmarks or getattr(session, "disabled", False):
        return
    groups: dict[str, dict[str, float]] = {}
    for bench in benchmarks:
        name = bench.name.split("[")[0].removeprefix("test_")
        groups.setdefault(bench.group or "", {})[name] = bench.stats.mean
    lines = []
    for group, means in sorted(groups.items()):
        ours = {k: v for k, v in means.items() if k.startswith("harness")}
        if len(ours) != 1:
            continue
        ((name, mean),) = ours.items()
        for other, theirs in sorted(means.items()):
            if other != name:
                lines.append(
                    f"{group}: {name} {mean * 1e3:.2f} ms vs {other} {theirs * 1e3:.2f} ms "
                    f"= {name} takes {mean / theirs:.3f}x the time of {other}"
                )
        lines.append(f"{group}: {name} {mean * 1e3:.2f} ms per call ({1 / mean:.1f}/s)")
    if lines:
        terminalreporter.write_sep("-", "speed-ups (mean times)")
        for line in lines:
            terminalreporter.write_line(line)
