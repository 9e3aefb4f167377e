"""Built-in optimizers: torch's SGD, Adam, AdamW and RAdam, lion-pytorch's Lion, timm's Muon.

Learning rate and weight decay come from the protocol, so every optimizer of a
leaderboard trains under the same settings; anything else (``momentum``, ``betas``,
...) is an entry parameter passed through to the library. Lion and Muon are imported
on first use (seconds each, and `harness list` needs neither).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from harness import hookimpl
from harness.errors import HarnessError


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


def radam(
    params: Iterable[Any],
    *,
    lr: float,
    weight_decay: float,
    decoupled_weight_decay: bool = True,
    **kwargs: Any,
) -> torch.optim.Optimizer:
    """RAdam (``torch.optim.RAdam``): Adam with the variance of its early steps rectified.

    Weight decay is decoupled, as in AdamW, unless ``decoupled_weight_decay=false``.
    """
    return torch.optim.RAdam(
        params,
        lr=lr,
        weight_decay=weight_decay,
        decoupled_weight_decay=decoupled_weight_decay,
        **kwargs,
    )


def lion(
    params: Iterable[Any],
    *,
    lr: float,
    weight_decay: float,
    lr_scale: float = 1.0,
    **kwargs: Any,
) -> torch.optim.Optimizer:
    """Lion (the lion-pytorch package): sign-of-momentum updates, decoupled weight decay.

    Lion's updates have unit size per element, so its authors use a learning rate
    3-10x below AdamW's. The protocol's lr is honoured; ``lr_scale`` multiplies it
    within the entry (``--optimizer lion:lr_scale=0.3``) without changing the protocol.
    Further parameters (``betas``) go to ``lion_pytorch.Lion``.
    """
    if lr_scale <= 0:
        raise ValueError(f"lr_scale must be positive, got {lr_scale}")
    from lion_pytorch import Lion

    return Lion(params, lr=lr * lr_scale, weight_decay=weight_decay, **kwargs)


def muon(
    params: Iterable[Any],
    *,
    lr: float,
    weight_decay: float,
    **kwargs: Any,
) -> torch.optim.Optimizer:
    """Muon: momentum orthogonalised by Newton-Schulz, for weight matrices and kernels.

    ``torch.optim.Muon`` accepts 2-D parameters only, and nearly every weight of these
    convolutional networks is a 4-D kernel, so torch's version would leave almost the
    whole model to a second optimizer. timm's ``timm.optim.Muon`` is used instead: one
    optimizer that applies Muon to every parameter of 2 or more dimensions (a conv
    kernel ``(out, in, kh, kw)`` flattened to ``(out, in*kh*kw)``) and AdamW to the rest:
    biases, normalisation weights, and the shapes timm deems degenerate for
    orthogonalisation (a 1-channel stem, depthwise kernels, very small or very elongated
    matrices). Both live in its param groups, so the protocol's schedule drives both.
    Its default ``adjust_lr_fn="match_rms_adamw"`` scales Muon's update to AdamW's size,
    so the protocol's AdamW learning rate and weight decay apply as they are. Further
    parameters (``momentum``, ``nesterov``, ``ns_steps``, ...) go to ``timm.optim.Muon``.
    """
    try:
        from timm.optim import Muon
    except ImportError as exc:
        raise HarnessError(
            f"optimizer 'muon' needs timm.optim.Muon, missing from this timm ({exc}); "
            f"upgrade timm (pip install -U timm)"
        ) from exc
    return Muon(params, lr=lr, weight_decay=weight_decay, **kwargs)


@hookimpl
def harness_optimizers() -> dict[str, Any]:
    return {
        "sgd": sgd,
        "adam": adam,
        "adamw": adamw,
        "radam": radam,
        "lion": lion,
        "muon": muon,
    }
