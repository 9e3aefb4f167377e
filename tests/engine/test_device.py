"""The device and the precision a run trains in (``harness.engine.device``), said in the
engine's own words: no command-line option in its lines (the planner names the option:
``tests/runs/test_settings.py``)."""

from __future__ import annotations

import dataclasses
import pickle

import pytest
import torch

from harness.engine.device import PRECISIONS, Placement, Precision, Unavailable, resolve_device
from harness.errors import HarnessError
from harness.protocol import Protocol

CPU = torch.device("cpu")
PROTOCOL = Protocol(name="p")  # amp = true, as every built-in protocol
NO_AMP = dataclasses.replace(PROTOCOL, amp=False)


def test_auto_is_fp32_on_a_cpu_whatever_the_protocol() -> None:
    assert Precision.resolve(PROTOCOL, CPU) == Precision("fp32")
    assert Precision.resolve(NO_AMP, CPU, "auto") == Precision("fp32")
    assert Precision().dtype is None and not Precision().scaler


@pytest.mark.parametrize(
    "precision, dtype", [("fp32", None), ("bf16", torch.bfloat16), ("fp16", torch.float16)]
)
def test_a_precision_asked_for_is_had_on_a_cpu(precision: str, dtype: torch.dtype) -> None:
    placement = Placement.of(PROTOCOL, CPU, Precision.resolve(PROTOCOL, CPU, precision))
    assert placement.dtype is dtype and placement.precision.name == precision
    assert placement.precision.scaler == (precision == "fp16")  # a grad scaler for fp16 only
    assert placement.memory_format is torch.channels_last  # the protocol's, as before


def test_a_placement_without_a_precision_takes_the_protocols_own() -> None:
    assert Placement.of(PROTOCOL, CPU).precision == Precision("fp32")


def test_auto_on_cuda_is_bf16_where_supported_else_fp16(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert Precision.resolve(PROTOCOL, cuda).dtype is torch.bfloat16
    assert Precision.resolve(NO_AMP, cuda).dtype is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert Precision.resolve(PROTOCOL, cuda) == Precision("fp16")
    assert Precision.resolve(PROTOCOL, cuda).scaler
    assert Precision.resolve(PROTOCOL, cuda, "fp32").dtype is None


def test_an_unknown_precision_is_one_line() -> None:
    with pytest.raises(Unavailable, match=r"^precision 'fp8': choose auto, fp32, bf16 or fp16$"):
        Precision.resolve(PROTOCOL, CPU, "fp8")
    assert PRECISIONS == ("auto", "fp32", "bf16", "fp16")
    with pytest.raises(ValueError, match="no precision 'fp8'"):
        Precision("fp8")  # a resolved precision is one of the three


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_a_protocol_without_amp_trains_in_fp32_only(precision: str) -> None:
    refused = (
        rf"^precision {precision}: protocol 'p' sets amp = false \(its benchmark trains in "
        r"fp32\); use fp32 or auto, or a protocol with amp=true \(a benchmark of its own\)$"
    )
    with pytest.raises(Unavailable, match=refused):
        Precision.resolve(NO_AMP, CPU, precision)
    assert Precision.resolve(NO_AMP, CPU, "fp32").dtype is None


def test_bf16_on_a_gpu_without_it_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    refused = r"^precision bf16: this GPU \(Tesla T4\) does not support bf16; use fp16 or auto$"
    with pytest.raises(Unavailable, match=refused):
        Precision.resolve(PROTOCOL, torch.device("cuda"), "bf16")
    assert Precision.resolve(PROTOCOL, torch.device("cuda"), "fp16").dtype is torch.float16


def test_a_device_that_is_none_or_not_here_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(Unavailable, match=r"^device 'tpu': choose auto, cpu or cuda$"):
        resolve_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(
        Unavailable, match=r"^device cuda: no CUDA device is available here; use cpu$"
    ):
        resolve_device("cuda")
    assert resolve_device("auto") == CPU == resolve_device("cpu")


def test_the_engines_lines_name_no_option(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every device and precision error, in the engine's words: a bad-input error (exit 2,
    one line) that names no command-line option, and survives a trip between processes."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    cuda = torch.device("cuda")
    attempts = [
        lambda: resolve_device("tpu"),
        lambda: resolve_device("cuda"),
        lambda: Precision.resolve(PROTOCOL, CPU, "fp8"),
        lambda: Precision.resolve(NO_AMP, CPU, "bf16"),
        lambda: Precision.resolve(PROTOCOL, cuda, "bf16"),
    ]
    for attempt in attempts:
        with pytest.raises(Unavailable) as caught:
            attempt()
        line = str(caught.value)
        assert isinstance(caught.value, HarnessError) and "\n" not in line
        assert "--" not in line, line
        again = pickle.loads(pickle.dumps(caught.value))
        assert str(again) == line and again.said("--x") == caught.value.said("--x")
