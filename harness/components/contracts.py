"""The plugin contract, written once: what each kind of component must be and return.

``hookspecs`` says it in words; this module checks it, and training, ``harness predict``
and ``harness check-plugin`` all go through it, so a component that passes
``check-plugin`` cannot fail a run on the contract, and a run cannot accept what
``check-plugin`` rejects. A factory that raises, or returns something of the wrong kind,
is a ``HarnessError`` naming the component and the plugin that provides it.
"""

from __future__ import annotations

from typing import Any

import torch

from harness.classes import NUM_CLASSES
from harness.components.entry import Entry
from harness.components.registry import SINGULAR, Component, Registry
from harness.errors import HarnessError, one_line
from harness.protocol import Protocol


def build_components(
    protocol: Protocol, entry: Entry, registry: Registry, steps_per_epoch: int
) -> tuple[torch.nn.Module, Any, torch.optim.Optimizer, Any, Any]:
    """Model, loss, optimizer, scheduler and augmentation, each from its plugin.

    A factory that raises, or returns something of the wrong kind, is a ``HarnessError``
    naming the component and the plugin that provides it.
    """
    model_kwargs: dict[str, Any] = dict(entry.model.kwargs)
    if protocol.pretrained:
        model_kwargs.setdefault("encoder_weights", protocol.pretrained)
    model_c = registry.get("models", entry.model.name)
    model = build(
        model_c,
        num_classes=NUM_CLASSES,
        in_channels=protocol.in_channels,
        encoder=entry.encoder or protocol.encoder,
        **model_kwargs,
    )
    if not isinstance(model, torch.nn.Module):
        raise HarnessError(
            f"model '{entry.model.name}' from {model_c.provider()} returned a "
            f"{type(model).__name__}, not a torch.nn.Module; fix the plugin's factory"
        )
    loss_c = registry.get("losses", entry.loss.name)
    loss = build(loss_c, **entry.loss.kwargs)
    if not callable(loss):
        raise HarnessError(
            f"loss '{entry.loss.name}' from {loss_c.provider()} returned a "
            f"{type(loss).__name__}, not a callable loss(logits, target); fix the plugin's factory"
        )
    optimizer_c = registry.get("optimizers", entry.optimizer.name)
    optimizer = build(
        optimizer_c,
        [p for p in model.parameters() if p.requires_grad],
        lr=protocol.lr,
        weight_decay=protocol.weight_decay,
        **entry.optimizer.kwargs,
    )
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise HarnessError(
            f"optimizer '{entry.optimizer.name}' from {optimizer_c.provider()} returned a "
            f"{type(optimizer).__name__}, not a torch.optim.Optimizer; fix the plugin's factory"
        )
    total = protocol.epochs * steps_per_epoch
    scheduler_c = registry.get("schedulers", entry.scheduler.name)
    scheduler = build(
        scheduler_c,
        optimizer,
        total_steps=total,
        warmup_steps=min(total - 1, round(protocol.warmup_epochs * steps_per_epoch)),
        **entry.scheduler.kwargs,
    )
    for method in ("step", "state_dict", "load_state_dict"):
        if not callable(getattr(scheduler, method, None)):
            raise HarnessError(
                f"scheduler '{entry.scheduler.name}' from {scheduler_c.provider()} returned a "
                f"{type(scheduler).__name__} without {method}(); return a torch LR scheduler"
            )
    augment_c = registry.get("augmentations", entry.augmentation.name)
    augment = build(augment_c, image_size=protocol.resolution, **entry.augmentation.kwargs)
    if augment is not None and not callable(augment):
        raise HarnessError(
            f"augmentation '{entry.augmentation.name}' from {augment_c.provider()} returned a "
            f"{type(augment).__name__}, not a callable transform; fix the plugin's factory"
        )
    return model, loss, optimizer, scheduler, augment


def build(component: Component, *args: Any, **kwargs: Any) -> Any:
    """``component.build`` with any exception from the plugin turned into a one-line error."""
    try:
        return component.build(*args, **kwargs)
    except HarnessError:
        raise
    except Exception as exc:
        noun = SINGULAR.get(component.kind, component.kind)
        raise HarnessError(
            f"{noun} '{component.name}' from {component.provider()}: its factory raised "
            f"{type(exc).__name__}: {one_line(exc, 200)}; fix the plugin or choose another {noun}"
        ) from exc


def check_logits(logits: Any, inputs: torch.Tensor, entry: Entry, registry: Registry) -> None:
    """The model contract: ``(N, in_channels, H, W)`` in, ``(N, 29, H, W)`` logits out."""
    n, _, h, w = inputs.shape
    expected = (n, NUM_CLASSES, h, w)
    if isinstance(logits, torch.Tensor) and tuple(logits.shape) == expected:
        return
    got = (
        f"shape {tuple(logits.shape)}"
        if isinstance(logits, torch.Tensor)
        else f"a {type(logits).__name__}"
    )
    provider = registry.get("models", entry.model.name).provider()
    raise HarnessError(
        f"model '{entry.model.name}' from {provider} returned {got} for input of shape "
        f"{tuple(inputs.shape)}; a model must return logits of shape {expected} "
        f"(N, {NUM_CLASSES}, H, W)"
    )


def check_loss(loss: Any, entry: Entry, registry: Registry) -> None:
    if isinstance(loss, torch.Tensor) and loss.numel() == 1 and loss.is_floating_point():
        return
    got = (
        f"a tensor of shape {tuple(loss.shape)}"
        if isinstance(loss, torch.Tensor)
        else f"a {type(loss).__name__}"
    )
    provider = registry.get("losses", entry.loss.name).provider()
    raise HarnessError(
        f"loss '{entry.loss.name}' from {provider} returned {got}; a loss must return a "
        "scalar float tensor"
    )
