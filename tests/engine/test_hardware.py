"""What a run ran on (``harness.engine.hardware``): the CPU named as /proc/cpuinfo names it,
the threads torch uses, torch's build, and on CUDA each GPU with the driver's version."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest
import torch

from harness.engine import hardware


def test_a_record_names_the_cpu_as_proc_cpuinfo_does(tmp_path: Path) -> None:
    fake = tmp_path / "cpuinfo"
    fake.write_text(
        "processor\t: 0\nvendor_id\t: GenuineIntel\n"
        "model name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz\nflags\t: fpu\n\n"
        "processor\t: 1\nmodel name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz\n"
    )
    assert hardware.cpu_model(fake) == "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz"
    real = Path("/proc/cpuinfo")
    if not real.is_file():
        pytest.skip("no /proc/cpuinfo on this system")
    names = [line.split(":", 1)[1].strip() for line in real.read_text().splitlines()
             if line.split(":", 1)[0].strip() == "model name"]  # fmt: skip
    described = hardware.describe(torch.device("cpu"))
    assert described["cpu"]["model"] == (names[0] if names else described["cpu"]["model"])
    assert described["cpu"]["threads"] == torch.get_num_threads()
    assert described["torch"] == torch.__version__ and "gpus" not in described


def test_without_proc_cpuinfo_the_platform_names_the_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-cpuinfo"
    monkeypatch.setattr(platform, "processor", lambda: "arm")
    assert hardware.cpu_model(missing) == "arm"
    monkeypatch.setattr(platform, "processor", lambda: "")
    monkeypatch.setattr(platform, "machine", lambda: "")
    assert hardware.cpu_model(missing) == "unknown"
    no_name = tmp_path / "cpuinfo"
    no_name.write_text("processor\t: 0\nvendor_id\t: ARM\n")
    assert hardware.cpu_model(no_name) == "unknown"


def test_the_driver_version_is_read_from_its_proc_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    version = tmp_path / "version"
    version.write_text(
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\n"
        "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n"
    )
    monkeypatch.setattr(hardware, "NVIDIA_VERSION", version)
    assert hardware._driver() == "550.54.15"
    monkeypatch.setattr(hardware, "NVIDIA_VERSION", tmp_path / "absent")
    assert hardware._driver() is None


def test_the_threads_are_those_torch_uses_now() -> None:
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert hardware.describe(torch.device("cpu"))["cpu"]["threads"] == 1
    finally:
        torch.set_num_threads(threads)
