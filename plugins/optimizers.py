"""Built-in optimizers: SGD with momentum, Adam and AdamW from ``torch.optim``.

Learning rate and weight decay come from the protocol; anything else (``momentum``,
``betas``, ...) is an entry parameter passed through to torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from harness import hookimpl


def sgd(
    params: Iterable[Any],
    *,
    lr: float,
    weight_decay: float,
    momentum: float = 0.9,
    **kwargs: Any,
) -> torch.optim.Optimizer:
    """SGD with momentum (0.9 unless set)."""
    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=momentum, **kwargs)


def adam(
    params: Iterable[Any], *, lr: float, weight_decay: float, **kwargs: Any
) -> torch.optim.Optimizer:
    """Adam (L2 penalty added to the gradient)."""
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, **kwargs)


def adamw(
    params: Iterable[Any], *, lr: float, weight_decay: float, **kwargs: Any
) -> torch.optim.Optimizer:
    """AdamW (decoupled weight decay)."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, **kwargs)


@hookimpl
def harness_optimizers() -> dict[str, Any]:
    return {"sgd": sgd, "adam": adam, "adamw": adamw}
