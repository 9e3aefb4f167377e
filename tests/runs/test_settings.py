"""Launch settings (``harness.runs.settings``): the request's ``Launch`` resolved once into
values, and the engine's lines about a device or precision said with the option the user
gave (the engine's own name none: ``tests/engine/test_device.py``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from harness.engine.device import Precision
from harness.errors import HarnessError
from harness.protocol import Protocol
from harness.runs import settings
from harness.runs.requests import RunRequest
from harness.runs.settings import LaunchSettings

PROTOCOL = Protocol(name="p")  # amp = true
NO_AMP = dataclasses.replace(PROTOCOL, amp=False)


def _request(**launch) -> RunRequest:
    return RunRequest.of(model="unet", loss="dice", **launch)


def test_the_request_is_resolved_into_values() -> None:
    found, world = settings.resolve(
        _request(device="cpu", precision="fp16", micro_batch=2, compile=True,
                 track=("tensorboard", "tensorboard")),
        PROTOCOL,
    )  # fmt: skip
    assert found == LaunchSettings(
        device=torch.device("cpu"),
        precision=Precision("fp16"),
        micro_batch=2,
        compile=True,
        track=("tensorboard",),
        processes=1,
    )
    assert found.precision.dtype is torch.float16 and found.precision.scaler
    assert not world.active
    plain, _ = settings.resolve(_request(device="cpu"), PROTOCOL)
    assert plain == LaunchSettings(torch.device("cpu"))  # auto on a CPU: fp32, no trackers


def test_the_runs_at_once_are_what_the_executor_runs() -> None:
    """In this process one run at a time; ``--jobs N`` (Ray, Slurm) up to N; a cluster with
    no ``--jobs`` bounds them by its resources, which are not known here."""
    at_once = {
        1: {},
        3: {"jobs": 3},
        None: {"cluster": "10.0.0.1:6379"},
        2: {"cluster": "slurm:gpu", "jobs": 2},
    }
    for runs, launch in at_once.items():
        found, _ = settings.resolve(_request(device="cpu", **launch), PROTOCOL)
        assert found.concurrent_runs == runs, launch


#: (request fields, the protocol, the line the user sees: exactly as before the engine
#: stopped naming options).
LINES = [
    ({"device": "tpu"}, PROTOCOL, "--device 'tpu': choose auto, cpu or cuda"),
    ({"precision": "fp8"}, PROTOCOL, "--precision 'fp8': choose auto, fp32, bf16 or fp16"),
    (
        {"precision": "bf16"},
        NO_AMP,
        "--precision bf16: protocol 'p' sets amp = false (its benchmark trains in fp32); "
        "use --precision fp32 or auto, or --set amp=true (a benchmark of its own)",
    ),
]


@pytest.mark.parametrize("launch, proto, line", LINES)
def test_a_device_or_precision_that_cannot_be_had_names_its_option(
    launch: dict, proto: Protocol, line: str
) -> None:
    with pytest.raises(HarnessError) as caught:
        settings.resolve(_request(**{"device": "cpu", **launch}), proto)
    assert str(caught.value) == line


def test_cuda_lines_name_their_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(HarnessError) as caught:
        settings.resolve(_request(device="cuda"), PROTOCOL)
    assert str(caught.value) == (
        "--device cuda: no CUDA device is available here; use --device cpu"
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    monkeypatch.setattr(settings.distributed, "init", lambda device_type: settings.World())
    with pytest.raises(HarnessError) as caught:
        settings.resolve(_request(device="cuda", precision="bf16"), PROTOCOL)
    assert str(caught.value) == (
        "--precision bf16: this GPU (Tesla T4) does not support bf16; use --precision fp16 or auto"
    )


def test_this_machines_gpus_bound_nproc_only_for_runs_trained_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``--nproc 2`` on CUDA with one GPU here: refused when the runs train here, not when
    the chosen executor sends them elsewhere (``remote``)."""
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.delenv("HARNESS_NPROC", raising=False)
    request = _request(nproc=2)
    cuda = torch.device("cuda")
    with pytest.raises(HarnessError, match=r"^--nproc 2: this machine has 1 CUDA device\(s\)"):
        settings._check_nproc(request, PROTOCOL, cuda, remote=False)
    settings._check_nproc(request, PROTOCOL, cuda, remote=True)


def test_a_plan_carries_its_settings_and_its_resume_hint(tmp_path: Path) -> None:
    """``Plan.launch`` and ``Plan.resume_hint`` are there for every plan (no request to ask
    whether it exists): the device, and the command that continues it."""
    from harness.runs.planning import plan

    request = _request(
        protocol="tiny", device="cpu", precision="bf16", runs_dir=tmp_path / "runs",
        leaderboards_dir=tmp_path / "boards",
    )  # fmt: skip
    made = plan(request)
    assert made.launch.precision == Precision("bf16") and made.device == torch.device("cpu")
    assert made.request == request
    assert made.resume_hint.text().startswith("harness run --model unet --loss dice ")
    assert made.resume_hint.text().endswith(" --resume")
    assert " --precision bf16 " in made.resume_hint.text()
