"""The device and the precision a run trains in (``harness.engine.device``)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from harness.engine.device import PRECISIONS, Placement, amp_dtype, precision_name
from harness.errors import HarnessError
from harness.protocol import Protocol

CPU = torch.device("cpu")
PROTOCOL = Protocol(name="p")  # amp = true, as every built-in protocol
NO_AMP = dataclasses.replace(PROTOCOL, amp=False)


def test_auto_is_fp32_on_a_cpu_whatever_the_protocol() -> None:
    assert amp_dtype(PROTOCOL, CPU) is None and amp_dtype(NO_AMP, CPU, "auto") is None


@pytest.mark.parametrize(
    "precision, dtype", [("fp32", None), ("bf16", torch.bfloat16), ("fp16", torch.float16)]
)
def test_a_precision_asked_for_is_had_on_a_cpu(precision: str, dtype: torch.dtype) -> None:
    placement = Placement.of(PROTOCOL, CPU, precision)
    assert placement.dtype is dtype and precision_name(placement.dtype) == precision
    assert placement.memory_format is torch.channels_last  # the protocol's, as before


def test_auto_on_cuda_is_bf16_where_supported_else_fp16(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert amp_dtype(PROTOCOL, cuda) is torch.bfloat16
    assert amp_dtype(NO_AMP, cuda) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert amp_dtype(PROTOCOL, cuda) is torch.float16
    assert amp_dtype(PROTOCOL, cuda, "fp32") is None


def test_an_unknown_precision_is_one_line() -> None:
    with pytest.raises(HarnessError, match=r"^--precision 'fp8': choose auto, fp32, bf16 or fp16$"):
        amp_dtype(PROTOCOL, CPU, "fp8")
    assert PRECISIONS == ("auto", "fp32", "bf16", "fp16")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_a_protocol_without_amp_trains_in_fp32_only(precision: str) -> None:
    refused = f"^--precision {precision}: protocol 'p' sets amp = false"
    with pytest.raises(HarnessError, match=refused):
        amp_dtype(NO_AMP, CPU, precision)
    assert amp_dtype(NO_AMP, CPU, "fp32") is None


def test_bf16_on_a_gpu_without_it_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    with pytest.raises(HarnessError, match=r"^--precision bf16: this GPU \(Tesla T4\) does not"):
        amp_dtype(PROTOCOL, torch.device("cuda"), "bf16")
    assert amp_dtype(PROTOCOL, torch.device("cuda"), "fp16") is torch.float16
