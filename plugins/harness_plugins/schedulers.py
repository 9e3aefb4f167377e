"""Built-in learning-rate schedules, stepped once per optimizer step.

All are plain ``torch.optim.lr_scheduler`` objects (only the warm-up is composed
here) so their state dicts checkpoint and resume like any other. torch is imported when a
scheduler is built: naming, describing and listing them needs none of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness import hookimpl

if TYPE_CHECKING:
    import torch
    from torch.optim.lr_scheduler import LRScheduler


def _check_steps(total_steps: int, warmup_steps: int) -> None:
    if total_steps < 1:
        raise ValueError(f"total_steps must be at least 1, got {total_steps}")
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be non-negative, got {warmup_steps}")


def flat(
    optimizer: torch.optim.Optimizer, *, total_steps: int, warmup_steps: int, **params: Any
) -> LRScheduler:
    """The protocol's learning rate throughout (warm-up ignored)."""
    _check_steps(total_steps, warmup_steps)
    from torch.optim.lr_scheduler import ConstantLR

    return ConstantLR(optimizer, factor=1.0, total_iters=0, **params)


def cosine(
    optimizer: torch.optim.Optimizer,
    *,
    total_steps: int,
    warmup_steps: int,
    eta_min: float = 0.0,
) -> LRScheduler:
    """Cosine annealing from the protocol's learning rate to ``eta_min`` over the run."""
    _check_steps(total_steps, warmup_steps)
    from torch.optim.lr_scheduler import CosineAnnealingLR

    return CosineAnnealingLR(optimizer, T_max=total_steps, eta_min=eta_min)


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    *,
    total_steps: int,
    warmup_steps: int,
    eta_min: float = 0.0,
) -> LRScheduler:
    """Linear warm-up over ``warmup_steps``, then cosine annealing to ``eta_min``.

    Step ``k < warmup_steps`` uses ``lr * (k + 1) / (warmup_steps + 1)``, so no step
    is wasted at zero; step ``warmup_steps`` uses the full ``lr``, which then decays
    along a cosine that would reach ``eta_min`` at ``total_steps``.
    """
    _check_steps(total_steps, warmup_steps)
    from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR

    decay = CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup_steps), eta_min=eta_min)
    if warmup_steps == 0:
        return decay
    warmup = LinearLR(
        optimizer, start_factor=1.0 / (warmup_steps + 1), end_factor=1.0, total_iters=warmup_steps
    )
    return SequentialLR(optimizer, schedulers=[warmup, decay], milestones=[warmup_steps])


def poly(
    optimizer: torch.optim.Optimizer,
    *,
    total_steps: int,
    warmup_steps: int,
    power: float = 0.9,
) -> LRScheduler:
    """Polynomial decay (``torch.optim.lr_scheduler.PolynomialLR``), DeepLab's schedule.

    Step ``k`` uses ``lr * (1 - k / total_steps) ** power``; warm-up ignored.
    """
    _check_steps(total_steps, warmup_steps)
    from torch.optim.lr_scheduler import PolynomialLR

    return PolynomialLR(optimizer, total_iters=total_steps, power=power)


def onecycle(
    optimizer: torch.optim.Optimizer,
    *,
    total_steps: int,
    warmup_steps: int,
    pct_start: float | None = None,
    **params: Any,
) -> LRScheduler:
    """The one-cycle policy (``torch.optim.lr_scheduler.OneCycleLR``), peaking at the protocol's lr.

    The rate rises from ``lr / div_factor`` (25) to ``lr`` over the first ``pct_start``
    of the run, then anneals to ``lr / (div_factor * final_div_factor)``; momentum (or
    Adam's beta1) cycles the other way where the optimizer has one. ``pct_start``
    defaults to the protocol's warm-up share of the run (torch's 0.3 without warm-up).
    Further parameters (``div_factor``, ``anneal_strategy``, ...) go to torch.
    """
    _check_steps(total_steps, warmup_steps)
    if total_steps < 3:
        raise ValueError(
            f"onecycle needs at least 3 optimizer steps, got {total_steps}; train longer"
        )
    if pct_start is None:
        pct_start = warmup_steps / total_steps if warmup_steps > 0 else 0.3
    # torch divides by the length of each phase: both must be at least one step.
    pct_start = min(max(pct_start * total_steps, 2.0), total_steps - 1.0) / total_steps
    from torch.optim.lr_scheduler import OneCycleLR

    max_lr = [group["lr"] for group in optimizer.param_groups]
    defaults = optimizer.defaults
    params.setdefault("cycle_momentum", "momentum" in defaults or "betas" in defaults)
    return OneCycleLR(
        optimizer, max_lr=max_lr, total_steps=total_steps, pct_start=pct_start, **params
    )


@hookimpl
def harness_schedulers() -> dict[str, Any]:
    return {
        "flat": flat,
        "cosine": cosine,
        "warmup-cosine": warmup_cosine,
        "poly": poly,
        "onecycle": onecycle,
    }
