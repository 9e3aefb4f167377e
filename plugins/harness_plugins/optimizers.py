"""Built-in optimizers: torch's SGD, Adam, AdamW and RAdam, lion-pytorch's Lion, timm's Muon.

Learning rate and weight decay come from the protocol, so every optimizer of a
leaderboard trains under the same settings; anything else (``momentum``, ``betas``,
...) is an entry parameter passed through to the library. torch, Lion and Muon are
imported when an optimizer is built (seconds each, and naming, describing and listing the
optimizers needs none of them).

Each declares the space ``harness tune`` searches for it (``harness.tunable``; the protocol's
``[tuning.space]`` covers what it leaves out). The ranges bracket what these networks,
trained from scratch, chose under the protocol's one space (docs/tuning.md): AdamW's best
learning rates were 1e-2 to 2e-2, so the Adam family searches [1e-4, 3e-2]; SGD needs one
to two orders of magnitude more, and its momentum; Lion, whose sign updates are larger,
3-10x less learning rate and as much more weight decay; Muon, whose update is scaled to
AdamW's size, AdamW's learning rate and its own momentum. Decoupled weight decay (AdamW,
RAdam, Lion) is multiplied by the learning rate, so it searches higher values than Adam's
L2 penalty, which keeps the protocol's range.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from harness import hookimpl, tunable
from harness.errors import HarnessError

if TYPE_CHECKING:
    import torch


@tunable(lr=(1e-3, 1.0, "log"), momentum=(0.8, 0.99))
def sgd(
    params: Iterable[Any],
    *,
    lr: float,
    weight_decay: float,
    momentum: float = 0.9,
    **kwargs: Any,
) -> torch.optim.Optimizer:
    """SGD with momentum (0.9 unless set)."""
    import torch

    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, momentum=momentum, **kwargs)


@tunable(lr=(1e-4, 3e-2, "log"))
def adam(
    params: Iterable[Any], *, lr: float, weight_decay: float, **kwargs: Any
) -> torch.optim.Optimizer:
    """Adam (L2 penalty added to the gradient)."""
    import torch

    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, **kwargs)


@tunable(lr=(1e-4, 3e-2, "log"), weight_decay=(1e-5, 1e-1, "log"))
def adamw(
    params: Iterable[Any], *, lr: float, weight_decay: float, **kwargs: Any
) -> torch.optim.Optimizer:
    """AdamW (decoupled weight decay)."""
    import torch

    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, **kwargs)


@tunable(lr=(1e-4, 3e-2, "log"), weight_decay=(1e-5, 1e-1, "log"))
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
    import torch

    return torch.optim.RAdam(
        params,
        lr=lr,
        weight_decay=weight_decay,
        decoupled_weight_decay=decoupled_weight_decay,
        **kwargs,
    )


@tunable(lr=(1e-5, 1e-2, "log"), weight_decay=(1e-4, 1.0, "log"))
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


@tunable(lr=(1e-4, 3e-2, "log"), momentum=(0.85, 0.98))
def muon(
    params: Iterable[Any],
    *,
    lr: float,
    weight_decay: float,
    momentum: float = 0.95,
    ns_dtype: str = "auto",
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
    so the protocol's AdamW learning rate and weight decay apply as they are. ``momentum``
    is Muon's (timm's default, 0.95); further parameters (``nesterov``, ``ns_steps``, ...)
    go to ``timm.optim.Muon``.

    ``ns_dtype`` is the Newton-Schulz iteration's dtype: timm always uses bfloat16, which
    is fast on GPUs but emulated on CPUs without bfloat16 matrix units (a 512x512 matmul
    took 70x longer in bfloat16 than in float32 on our 2-core test machine, and one
    UNet step 53 s instead of 1.5 s). ``"auto"`` (the default) iterates in float32 when
    the parameters are on the CPU and in bfloat16 elsewhere; ``"float32"`` and
    ``"bfloat16"`` force one.
    """
    try:
        from timm.optim import Muon
    except ImportError as exc:
        raise HarnessError(
            f"optimizer 'muon' needs timm.optim.Muon, missing from this timm ({exc}); "
            f"upgrade timm (pip install -U timm)"
        ) from exc
    if ns_dtype not in _NS_DTYPES:
        raise ValueError(f"ns_dtype must be one of {sorted(_NS_DTYPES)}, got {ns_dtype!r}")

    import torch

    class _Muon(Muon):
        def step(self, closure: Any = None) -> Any:
            on_cpu = any(p.device.type == "cpu" for g in self.param_groups for p in g["params"])
            name = _NS_DTYPES[ns_dtype] or ("float32" if on_cpu else "bfloat16")
            with _newton_schulz_in(getattr(torch, name)):
                return super().step(closure)

    _Muon.__name__ = _Muon.__qualname__ = "Muon"
    return _Muon(params, lr=lr, weight_decay=weight_decay, momentum=momentum, **kwargs)


#: ``ns_dtype`` -> the torch dtype's name (None: float32 on a CPU, bfloat16 elsewhere).
_NS_DTYPES: dict[str, str | None] = {"auto": None, "float32": "float32", "bfloat16": "bfloat16"}


@contextmanager
def _newton_schulz_in(dtype: torch.dtype) -> Iterator[None]:
    """timm's Muon calls its module's ``zeropower_via_newtonschulz`` with no dtype
    argument (bfloat16 by default); for one step, call it with ``dtype`` instead."""
    import timm.optim.muon as timm_muon

    original = timm_muon.zeropower_via_newtonschulz
    timm_muon.zeropower_via_newtonschulz = functools.partial(original, dtype=dtype)
    try:
        yield
    finally:
        timm_muon.zeropower_via_newtonschulz = original


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
