"""Inference cost (``harness.engine.inference_cost``): GFLOPs agree with a count of our own,
and the timing is the model alone."""

from __future__ import annotations

import time

import pytest
import torch

from harness.engine import inference_cost
from harness.engine.device import Placement

CPU = Placement(torch.device("cpu"))


def _hand_count(model: torch.nn.Module, x: torch.Tensor) -> float:
    """FLOPs of every convolution and linear layer in one forward pass, counted from their
    shapes (2 per multiply-add), by forward hooks: a second count, independent of torch's."""
    total = 0.0

    def conv(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        kernel = module.weight.shape[2] * module.weight.shape[3]
        per_output = (module.in_channels // module.groups) * kernel
        total += 2 * output.numel() * per_output

    def linear(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        total += 2 * output.numel() * module.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            hooks.append(m.register_forward_hook(conv))
        elif isinstance(m, torch.nn.Linear):
            hooks.append(m.register_forward_hook(linear))
    with torch.inference_mode():
        model.eval()(x)
    for h in hooks:
        h.remove()
    return total


def test_gflops_of_unetpp_mobilenet_v2_at_128_px_agree_with_a_hand_count() -> None:
    import segmentation_models_pytorch as smp

    model = smp.UnetPlusPlus(
        encoder_name="mobilenet_v2", encoder_weights=None, in_channels=1, classes=29
    )
    measured = inference_cost.measure(model, 1, 128, CPU)
    by_hand = _hand_count(model, torch.randn(1, 1, 128, 128)) / 1e9
    assert by_hand > 1.0  # UNet++'s decoder at 128 px is several GFLOPs: a real count
    assert measured["gflops"] == pytest.approx(by_hand, rel=0.05), (measured, by_hand)


class _Slow(torch.nn.Module):
    """A model whose forward pass takes a known time."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.conv = torch.nn.Conv2d(1, 2, 1)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        time.sleep(self.seconds)
        return self.conv(x)


def test_inference_speed_is_the_model_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing but forward passes is timed: no data loading (loading an image here would
    fail the test), and images/s is what the model's own time allows."""

    def no_loading(*args, **kwargs):
        raise AssertionError("the inference timing read data")

    for where in ("read_gray", "resize_image", "to_input"):
        monkeypatch.setattr(f"harness.data.images.{where}", no_loading)
    for dataset in ("TrainDataset", "EvalDataset", "PredictDataset"):
        monkeypatch.setattr(f"harness.data.datasets.{dataset}.__getitem__", no_loading)
    model = _Slow(0.02)
    measured = inference_cost.measure(model, 1, 16, CPU)
    assert model.calls == 1 + inference_cost.WARMUP + inference_cost.TIMED  # 1: the FLOP count
    assert 30 <= measured["inference_images_per_s"] <= 50.5, measured  # 1 / 0.02 s = 50
    assert model.training  # left as it was found
