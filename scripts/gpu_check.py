#!/usr/bin/env python
"""The GPU checks, ready to run: one script, a few minutes on a CUDA machine, one JSON.

Each check runs the real command line (``python -m harness``) in a temporary folder with
its own cache, and is recorded as ``passed``, ``failed`` or ``skipped`` (with the reason):

- ``bench``: ``scripts/gpu_bench.py`` (the harness's step against a bare SMP loop, and the
  data-wait share), its figures kept whole;
- ``amp_resume``: a ``tiny`` run under AMP killed (SIGKILL) once its first ``last``
  checkpoint is on disk, then continued with ``--resume``; it passes when the resumed
  run succeeds and records the resume, and (on CUDA) the checkpoint held the CUDA RNG
  state and the grad scaler's (which is in use under fp16 only; bf16 needs none);
- ``compile``: a ``tiny`` run with ``--compile``;
- ``micro_batch``: a ``tiny`` run with ``--micro-batch 2``;
- ``nproc2``: a ``tiny`` run with ``--nproc 2``, where two GPUs exist;
- ``fp16_resume``: ``amp_resume`` under ``--precision fp16`` (the grad scaler, which a bf16
  card never uses under ``auto``), set against the same run left alone: the checkpoint must
  hold the scaler's state and the two loss histories agree (``LOSS_TOLERANCE``);
- ``loss_overflow``: the built-in Dice and combo losses through the training step in fp16
  on one 29×512×512 batch, where a half-precision soft Dice overflows: the step's loss and
  weights must stay finite.

``--dry-run`` runs the same code on the CPU (``amp_resume`` in fp32, so neither AMP nor CUDA
state is in play there; ``fp16_resume`` and ``loss_overflow`` under CPU autocast; ``compile``
and ``nproc2`` are skipped: a CPU compile takes minutes and needs a C compiler, and two GPUs
are what ``nproc2`` checks), so the tests can run it. Without
``--dry-run`` a machine with no CUDA device is one line and exit 2. ``--skip NAME``
leaves a check out. Exit 0 when no check failed, else 1. The JSON format is in
docs/scaling.md ("The GPU checks").

    .venv/bin/python scripts/gpu_check.py --json gpu-check.json       # on a GPU machine
    .venv/bin/python scripts/gpu_check.py --dry-run --json dry.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROG = "gpu_check"
FORMAT = 1
CHECKS = (
    "bench",
    "amp_resume",
    "compile",
    "micro_batch",
    "nproc2",
    "fp16_resume",
    "loss_overflow",
)
HERE = Path(__file__).resolve().parent
#: How long one harness command may take before the check fails (seconds).
COMMAND_TIMEOUT_S = 900
#: How far a resumed run's epoch losses may be from the run left alone: on a CPU they are
#: equal (to the last bits, tests/helpers.py); a GPU run is not bit-reproducible
#: (cudnn.benchmark, atomics), so there the bound only catches a resume that went wrong.
LOSS_TOLERANCE = {"cpu": 1e-6, "cuda": 1e-2}


class Context:
    """Where and how the checks run: the device, a scratch folder, the environment."""

    def __init__(self, workdir: Path, dry_run: bool) -> None:
        import torch

        self.workdir = workdir
        self.dry_run = dry_run
        self.device = "cpu" if dry_run else "cuda"
        self.gpus = 0 if dry_run else torch.cuda.device_count()
        self.env = {**os.environ, "HARNESS_CACHE_DIR": str(workdir / "cache")}
        if dry_run:
            self.env["CUDA_VISIBLE_DEVICES"] = ""

    def harness(self, name: str, *args: str) -> list[str]:
        """``python -m harness run`` on the tiny protocol, in the check's own folders."""
        root = self.workdir / name
        return [
            sys.executable, "-m", "harness", "run", "--model", "unet", "--loss", "dice",
            "--protocol", "tiny", "--device", self.device, "--runs-dir", str(root / "runs"),
            "--leaderboards-dir", str(root / "boards"), *args,
        ]  # fmt: skip

    def run(self, command: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.workdir,
            timeout=COMMAND_TIMEOUT_S,
        )


def tail(text: str, lines: int = 5) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def record_of(root: Path) -> dict[str, Any]:
    (path,) = sorted(root.rglob("record.json"))
    return json.loads(path.read_text())


def run_figures(record: dict[str, Any]) -> dict[str, Any]:
    """What a run's record says about its training: Dice, speed, memory, how it ran."""
    cost = record.get("cost", {})
    keys = ("train_images_per_s", "peak_memory_mb", "wall_s", "device", "precision")
    return {
        "status": record.get("status"),
        "mean_dice": record.get("mean_dice"),
        **{k: cost.get(k) for k in (*keys, "micro_batch", "processes", "compile")},
    }


def check_run(ctx: Context, name: str, *args: str) -> dict[str, Any]:
    """A tiny run with ``args``; passes when it exits 0 and its record says succeeded."""
    done = ctx.run(ctx.harness(name, "--set", "epochs=1", *args))
    if done.returncode != 0:
        return {"status": "failed", "detail": f"exit {done.returncode}: {tail(done.stderr)}"}
    figures = run_figures(record_of(ctx.workdir / name / "runs"))
    ok = figures["status"] == "succeeded"
    return {"status": "passed" if ok else "failed", "run": figures}


def check_bench(ctx: Context) -> dict[str, Any]:
    out = ctx.workdir / "bench.json"
    command = [sys.executable, str(HERE / "gpu_bench.py"), "--json", str(out)]
    done = ctx.run([*command, "--dry-run"] if ctx.dry_run else command)
    if done.returncode != 0:
        return {"status": "failed", "detail": f"exit {done.returncode}: {tail(done.stderr)}"}
    return {"status": "passed", "figures": json.loads(out.read_text())}


def kill_after_checkpoint(ctx: Context, command: list[str], folder: Path) -> dict[str, Any]:
    """Start ``command``, SIGKILL it once a ``last`` checkpoint exists under ``folder``."""
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=ctx.env,
        cwd=ctx.workdir,
        start_new_session=True,
    )
    deadline = time.monotonic() + COMMAND_TIMEOUT_S
    while process.poll() is None and time.monotonic() < deadline:
        if any(folder.rglob("checkpoints/last.pt")):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return {"killed": True, "exit": process.returncode}
        time.sleep(0.05)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    stderr = process.communicate()[1] or ""
    return {"killed": False, "exit": process.returncode, "stderr": tail(stderr)}


def checkpoint_state(folder: Path) -> dict[str, Any]:
    """What the killed run's ``last`` checkpoint held of the CUDA RNG and the grad scaler."""
    import torch

    (path,) = sorted(folder.rglob("checkpoints/last.pt"))
    state = torch.load(path, map_location="cpu", weights_only=True)
    rng = state.get("rng", {}).get("global", {})
    return {
        "epoch": state.get("epoch"),
        "batch": state.get("batch"),
        "cuda_rng_states": len(rng.get("cuda") or []),
        "grad_scaler": bool(state.get("scaler")),
        "grad_scale": (state.get("scaler") or {}).get("scale"),
        "precision": state.get("precision"),
    }


def killed_and_resumed(ctx: Context, name: str, *args: str) -> dict[str, Any]:
    """Kill a tiny run after its first checkpoint, resume it, and look at both: passes when
    the resumed run succeeds with its resume recorded, and the checkpoint held the CUDA RNG
    state (on CUDA) and the grad scaler's (under fp16)."""
    args = ("--set", "epochs=2" if ctx.dry_run else "epochs=4", *args)
    root = ctx.workdir / name
    kill = kill_after_checkpoint(ctx, ctx.harness(name, *args), root)
    if not kill["killed"]:
        return {"status": "failed", "detail": f"never checkpointed: {kill}"}
    saved = checkpoint_state(root)
    done = ctx.run(ctx.harness(name, *args, "--resume"))
    if done.returncode != 0:
        return {"status": "failed", "detail": f"resume exit {done.returncode}: {tail(done.stderr)}"}
    record = record_of(root / "runs")
    figures = run_figures(record)
    problems = []
    if figures["status"] != "succeeded" or not record.get("resumes"):
        problems.append("the resumed run did not succeed with its resume recorded")
    if ctx.device == "cuda" and not saved["cuda_rng_states"]:
        problems.append("the checkpoint holds no CUDA RNG state")
    if figures["precision"] == "fp16" and not saved["grad_scaler"]:
        problems.append("fp16 training but the checkpoint holds no grad scaler state")
    result = {"killed_at": saved, "resumes": record.get("resumes"), "run": figures}
    return _verdict(result, problems)


def _verdict(result: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    status = "failed" if problems else "passed"
    return {"status": status, **result, **({"detail": "; ".join(problems)} if problems else {})}


def check_amp_resume(ctx: Context) -> dict[str, Any]:
    """Kill a tiny AMP run (the precision ``auto`` picks) after its first checkpoint, resume."""
    return killed_and_resumed(ctx, "amp_resume")


def loss_difference(alone: list[dict], resumed: list[dict]) -> float | None:
    """The largest difference of two runs' epoch losses (None: not the same epochs)."""
    if [h["epoch"] for h in alone] != [h["epoch"] for h in resumed]:
        return None
    return max((abs(a["loss"] - b["loss"]) for a, b in zip(alone, resumed, strict=True)), default=0)


def check_fp16_resume(ctx: Context) -> dict[str, Any]:
    """``amp_resume`` under fp16, and the same run left alone: the same loss history."""
    result = killed_and_resumed(ctx, "fp16_resume", "--precision", "fp16")
    if "run" not in result:
        return result
    args = ("--set", "epochs=2" if ctx.dry_run else "epochs=4", "--precision", "fp16")
    done = ctx.run(ctx.harness("fp16_alone", *args))
    if done.returncode != 0:
        detail = f"the run left alone: exit {done.returncode}: {tail(done.stderr)}"
        return {**result, "status": "failed", "detail": detail}
    alone = record_of(ctx.workdir / "fp16_alone" / "runs")
    resumed = record_of(ctx.workdir / "fp16_resume" / "runs")
    diff = loss_difference(alone["history"], resumed["history"])
    tolerance = LOSS_TOLERANCE[ctx.device]
    problems = [result["detail"]] if result["status"] == "failed" else []
    if result["run"]["precision"] != "fp16":
        problems.append(f"the record says {result['run']['precision']}, not fp16")
    if diff is None:
        problems.append("the resumed run's loss history has other epochs than the run left alone's")
    elif diff > tolerance:
        problems.append(f"the loss history differs from the run left alone's by {diff:.3g}")
    figures = {"loss_history_max_diff": diff, "loss_tolerance": tolerance}
    return _verdict({**result, **figures, "alone": run_figures(alone)}, problems)


def check_loss_overflow(ctx: Context) -> dict[str, Any]:
    """Dice and combo through the fp16 training step on one 29×512×512 batch."""
    import torch

    from harness.components.registry import Registry
    from harness.engine.device import Placement, Precision
    from harness.engine.step import StepSettings, TrainStep

    device = torch.device(ctx.device)
    gen = torch.Generator().manual_seed(0)
    inputs = torch.rand(1, 1, 512, 512, generator=gen).to(device)
    targets = (torch.rand(1, 29, 512, 512, generator=gen) < 0.9).float().to(device)
    losses, problems = {}, []
    for name in ("dice", "combo"):
        loss_fn = Registry.load().get("losses", name).factory()
        torch.manual_seed(0)
        model = torch.nn.Conv2d(1, 29, 1).to(device)
        with torch.autocast(device.type, dtype=torch.float16):
            half = loss_fn(model(inputs).half(), targets.half())  # what the step must not do
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        settings = StepSettings(Placement(device, Precision("fp16")))
        loss = TrainStep(model, loss_fn, optimizer, settings=settings)(inputs, targets)
        finite = bool(torch.isfinite(loss)) and all(
            bool(torch.isfinite(p).all()) for p in model.parameters()
        )
        if not finite:
            problems.append(f"{name}: the fp16 step's loss or weights are not finite")
        losses[name] = {
            "step_loss": float(loss) if torch.isfinite(loss) else str(float(loss)),
            "half_precision_loss": str(float(half)),
            "overflows_in_half": not bool(torch.isfinite(half)),
        }
    return _verdict({"losses": losses}, problems)


def check_compile(ctx: Context) -> dict[str, Any]:
    if ctx.dry_run:
        return {"status": "skipped", "detail": "dry run: a CPU compile takes minutes"}
    return check_run(ctx, "compile", "--compile")


def check_micro_batch(ctx: Context) -> dict[str, Any]:
    result = check_run(ctx, "micro_batch", "--micro-batch", "2")
    if result["status"] == "passed" and result["run"]["micro_batch"] != 2:
        return {**result, "status": "failed", "detail": "the record does not say micro_batch 2"}
    return result


def check_nproc2(ctx: Context) -> dict[str, Any]:
    if ctx.gpus < 2:
        return {"status": "skipped", "detail": f"needs 2 GPUs, found {ctx.gpus}"}
    result = check_run(ctx, "nproc2", "--nproc", "2")
    if result["status"] == "passed" and result["run"]["processes"] != 2:
        return {**result, "status": "failed", "detail": "the record does not say 2 processes"}
    return result


RUNNERS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "bench": check_bench,
    "amp_resume": check_amp_resume,
    "compile": check_compile,
    "micro_batch": check_micro_batch,
    "nproc2": check_nproc2,
    "fp16_resume": check_fp16_resume,
    "loss_overflow": check_loss_overflow,
}


def machine(dry_run: bool) -> dict[str, Any]:
    import torch

    cards = (
        [] if dry_run else [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    )
    return {
        "gpus": cards,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "host": platform.node(),
    }


def run_checks(
    dry_run: bool, skip: Sequence[str], progress: Callable[[str], None]
) -> dict[str, Any]:
    """Every check not in ``skip``, in ``CHECKS`` order, in a temporary folder."""
    started = datetime.now(UTC).isoformat(timespec="seconds")
    checks: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as folder:
        ctx = Context(Path(folder), dry_run)
        for name in CHECKS:
            t0 = time.perf_counter()
            if name in skip:
                result: dict[str, Any] = {"status": "skipped", "detail": "--skip"}
            else:
                try:
                    result = RUNNERS[name](ctx)
                except Exception as exc:  # a check that breaks is a failed check, said so
                    result = {"status": "failed", "detail": f"{type(exc).__name__}: {exc}"}
            checks.append({"name": name, **result, "seconds": round(time.perf_counter() - t0, 1)})
            progress(f"{name}: {checks[-1]['status']} ({checks[-1]['seconds']} s)")
    return {
        "format": FORMAT,
        "dry_run": dry_run,
        "started_at": started,
        "machine": machine(dry_run),
        "checks": checks,
        "passed": all(c["status"] != "failed" for c in checks),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the results here")
    parser.add_argument("--skip", action="append", default=[], choices=CHECKS, help="leave out")
    parser.add_argument("--dry-run", action="store_true", help="the same code on the CPU")
    args = parser.parse_args(argv)
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print(
            f"{PROG}: error: no CUDA device; run this on a GPU machine, or add --dry-run to "
            "run its code on the CPU",
            file=sys.stderr,
        )
        return 2
    result = run_checks(args.dry_run, args.skip, lambda line: print(line, file=sys.stderr))
    text = json.dumps(result, indent=2) + "\n"
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    print(text, end="")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
