"""``scripts/gpu_check.py``: its dry run on the CPU goes through every check's code and writes
the JSON that docs/scaling.md describes (fp16 under CPU autocast); without a GPU the real mode
is one line, exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO

SCRIPT = REPO / "scripts" / "gpu_check.py"


def run_script(*args: str | Path, tmp_path: Path, timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "HARNESS_CACHE_DIR": str(tmp_path / "c")}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=tmp_path,
    )


def test_dry_run_kills_resumes_and_writes_the_documented_json(tmp_path: Path) -> None:
    out = tmp_path / "out" / "check.json"
    # The benchmark's own dry run is tests/scripts/test_gpu_bench.py's; here it is skipped.
    done = run_script("--dry-run", "--skip", "bench", "--json", out, tmp_path=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert json.loads(done.stdout) == result
    assert set(result) == {"format", "dry_run", "started_at", "machine", "checks", "passed"}
    assert result["format"] == 1 and result["dry_run"] is True and result["passed"] is True
    assert set(result["machine"]) == {"gpus", "torch", "cuda", "python", "host"}
    checks = {c["name"]: c for c in result["checks"]}
    assert list(checks) == [
        "bench", "amp_resume", "compile", "micro_batch", "nproc2", "fp16_resume", "loss_overflow",
    ]  # fmt: skip
    assert {n: c["status"] for n, c in checks.items()} == {
        "bench": "skipped",
        "amp_resume": "passed",
        "compile": "skipped",
        "micro_batch": "passed",
        "nproc2": "skipped",
        "fp16_resume": "passed",
        "loss_overflow": "passed",
    }
    assert all(isinstance(c["seconds"], float) for c in checks.values())
    resumed = checks["amp_resume"]
    # Killed after its first epoch's checkpoint, then continued from there to the end.
    assert resumed["killed_at"]["epoch"] == 1
    assert [(r["epoch"], r["batch"]) for r in resumed["resumes"]] == [(1, 0)]
    assert resumed["run"]["status"] == "succeeded" and resumed["run"]["precision"] == "fp32"
    assert checks["micro_batch"]["run"]["micro_batch"] == 2
    assert checks["nproc2"]["detail"] == "needs 2 GPUs, found 0"
    assert "amp_resume: passed" in done.stderr
    fp16 = checks["fp16_resume"]  # CPU autocast and a CPU grad scaler
    assert fp16["killed_at"]["epoch"] == 1 and fp16["killed_at"]["precision"] == "fp16"
    assert fp16["killed_at"]["grad_scaler"] and fp16["killed_at"]["grad_scale"] > 0
    assert fp16["run"]["precision"] == fp16["alone"]["precision"] == "fp16"
    assert fp16["loss_history_max_diff"] <= fp16["loss_tolerance"] == 1e-6
    for name, loss in checks["loss_overflow"]["losses"].items():
        assert loss["overflows_in_half"] and loss["half_precision_loss"] == "nan", name
        assert isinstance(loss["step_loss"], float), name


def test_without_a_gpu_the_real_checks_refuse_in_one_line(tmp_path: Path) -> None:
    done = run_script("--json", tmp_path / "x.json", tmp_path=tmp_path, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("gpu_check: error: no CUDA device")
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.json").exists()
