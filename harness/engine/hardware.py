"""What a run ran on, for its record: the CPU model and the threads used, on CUDA each
GPU's name and memory with the driver, CUDA and cuDNN versions, and torch's build.

Two runs on different machines are not a comparison of components alone (CPU kernels
differ: the same command gave mean Dice 0.8739, 0.8988 and 0.8688 on three 2-core machines
of this project), so every record says where it ran and a table mixing machines says so.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import torch

#: Where Linux says what the CPU is (``model name``), and the NVIDIA driver its version.
CPUINFO = Path("/proc/cpuinfo")
NVIDIA_VERSION = Path("/proc/driver/nvidia/version")


def cpu_model(cpuinfo: Path = CPUINFO) -> str:
    """The CPU's model exactly as ``/proc/cpuinfo`` names it (its first ``model name``);
    elsewhere what the platform says, or ``unknown``."""
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _driver() -> str | None:
    """The NVIDIA driver's version (``NVRM version: ... 550.54.15 ...``), if this is Linux."""
    try:
        text = NVIDIA_VERSION.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for word in text.split():
        parts = word.split(".")
        if len(parts) >= 2 and all(p.isdigit() for p in parts):
            return word
    return None


def describe(device: torch.device) -> dict[str, Any]:
    """The hardware of a run on ``device``, as its record keeps it."""
    out: dict[str, Any] = {
        "cpu": {
            "model": cpu_model(),
            "threads": torch.get_num_threads(),
            "logical_cpus": os.cpu_count(),
        },
        "torch": torch.__version__,
        "torch_git": (torch.version.git_version or "")[:12],
    }
    if device.type == "cuda":
        out["gpus"] = [
            {
                "name": torch.cuda.get_device_name(i),
                "memory_mb": round(torch.cuda.get_device_properties(i).total_memory / 2**20),
                "capability": ".".join(map(str, torch.cuda.get_device_capability(i))),
            }
            for i in range(torch.cuda.device_count())
        ]
        out["cuda"] = torch.version.cuda
        out["cudnn"] = torch.backends.cudnn.version()
        out["driver"] = _driver()
    return out
