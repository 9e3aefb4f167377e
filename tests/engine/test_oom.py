"""The out-of-memory fallback of the first step (``harness.engine.oom``)."""

from __future__ import annotations

import pytest
import torch

from harness.engine.device import Placement
from harness.engine.oom import OutOfMemoryFallback


class FakeStep:
    """A training step that runs out of memory on pieces larger than ``fits``."""

    def __init__(self, fits: int, micro_batch: int | None = None) -> None:
        self.fits = fits
        self.micro_batch = micro_batch
        self.placement = Placement(torch.device("cpu"))
        self.optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        self.calls: list[int | None] = []

    def __call__(self, inputs: torch.Tensor, targets: torch.Tensor, share: float) -> torch.Tensor:
        self.calls.append(self.micro_batch)
        if (self.micro_batch or inputs.shape[0]) > self.fits:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return torch.tensor(0.5)


def _batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(n, 1), torch.zeros(n, 1)


def test_first_step_halves_the_micro_batch_until_it_fits() -> None:
    step, said = FakeStep(fits=2), []
    fallback = OutOfMemoryFallback(step, automatic=True, say=said.append)
    assert fallback(*_batch(8), 1.0).item() == 0.5
    assert step.calls == [None, 4, 2] and step.micro_batch == 2
    assert said == [
        "out of memory on the first step with batches of 8: retrying with micro-batches of 4 "
        "(gradient accumulation, same protocol; recorded with the run)",
        "out of memory on the first step with batches of 8: retrying with micro-batches of 2 "
        "(gradient accumulation, same protocol; recorded with the run)",
    ]


def test_an_explicit_micro_batch_or_several_processes_re_raise() -> None:
    step = FakeStep(fits=2, micro_batch=4)
    fallback = OutOfMemoryFallback(step, automatic=False, say=pytest.fail)
    with pytest.raises(torch.OutOfMemoryError):
        fallback(*_batch(8), 1.0)
    assert step.calls == [4] and step.micro_batch == 4


def test_after_the_first_step_it_re_raises() -> None:
    step = FakeStep(fits=8)
    fallback = OutOfMemoryFallback(step, automatic=True, say=pytest.fail)
    fallback(*_batch(8), 1.0)
    step.fits = 2  # memory grows later (fragmentation, a longer batch): not the fallback's
    with pytest.raises(torch.OutOfMemoryError):
        fallback(*_batch(8), 1.0)
    assert step.micro_batch is None


def test_nothing_smaller_than_one_image() -> None:
    step = FakeStep(fits=0)
    said: list[str] = []
    fallback = OutOfMemoryFallback(step, automatic=True, say=said.append)
    with pytest.raises(torch.OutOfMemoryError):
        fallback(*_batch(2), 1.0)
    assert step.calls == [None, 1] and len(said) == 1


def test_other_errors_pass_through() -> None:
    class Broken(FakeStep):
        def __call__(self, *args: object) -> torch.Tensor:
            raise RuntimeError("shape mismatch")

    fallback = OutOfMemoryFallback(Broken(fits=8), automatic=True, say=pytest.fail)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        fallback(*_batch(8), 1.0)
