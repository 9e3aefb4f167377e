"""What a failed run says (``harness.engine.failures``): where it was, what to try."""

from __future__ import annotations

import pytest
import torch

from harness.engine.failures import Where, explained, not_finite
from harness.errors import HarnessError, RunFailed

CPU = torch.device("cpu")


def test_where_names_each_phase_word_for_word() -> None:
    where = Where()
    assert str(where) == "the start of epoch 1"
    where.step(3, 1)
    assert str(where) == "step 3 (epoch 1)"
    where.validation(2)
    assert str(where) == "the validation of epoch 2" and where.validating
    where.checkpoint(2)
    assert str(where) == "the checkpoint of epoch 2" and not where.validating
    where.start_of_epoch(3)
    assert str(where) == "the start of epoch 3"
    where.final_validation()
    assert str(where) == "the final validation" and where.validating


def _fail_at(where: Where, exc: BaseException) -> BaseException:
    with pytest.raises(BaseException) as caught, explained(where, CPU):
        raise exc
    return caught.value


def test_an_error_becomes_one_line_saying_where() -> None:
    where = Where()
    where.step(3, 1)
    error = _fail_at(where, ValueError("bad\n  value"))
    assert isinstance(error, RunFailed)
    assert str(error) == (
        "ValueError at step 3 (epoch 1): bad value; rerun with --debug for the traceback"
    )


def test_out_of_memory_in_training_suggests_a_micro_batch() -> None:
    where = Where()
    where.step(1, 1)
    error = _fail_at(where, torch.OutOfMemoryError("CUDA out of memory."))
    assert str(error).startswith("out of memory on cpu (")
    assert str(error).endswith(
        "at step 1 (epoch 1): CUDA out of memory.; try --micro-batch N (same protocol, "
        "smaller pieces of each batch) or another device"
    )


def test_out_of_memory_in_validation_suggests_more_memory() -> None:
    where = Where()
    where.validation(2)
    error = _fail_at(where, torch.OutOfMemoryError("CUDA out of memory."))
    assert str(error).endswith(
        "at the validation of epoch 2: CUDA out of memory.; validation scores one batch of "
        "full-resolution images at a time; try a device with more memory"
    )


@pytest.mark.parametrize(
    "exc", [HarnessError("plugin x broke"), RunFailed("loss became nan"), KeyboardInterrupt()]
)
def test_what_already_explains_itself_passes_through(exc: BaseException) -> None:
    assert _fail_at(Where(), exc) is exc


def test_not_finite_message() -> None:
    assert not_finite(float("inf"), 7, 2, CPU) == (
        "loss became inf at step 7 (epoch 2); try a lower lr (--set lr=...) or --set grad_clip=1.0"
    )
    assert "by step 7 on rank 1 (epoch 2)" in not_finite(
        float("nan"), 7, 2, torch.device("cuda"), 1
    )
