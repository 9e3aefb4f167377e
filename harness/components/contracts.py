"""The plugin contract, written once: what each kind of component must be and return.

``hookspecs`` says it in words; this module checks it, one function per rule, and
training, ``harness predict`` and ``harness check-plugin`` all go through it, so a
component that passes ``check-plugin`` cannot fail a run on the contract, and a run cannot
accept what ``check-plugin`` rejects. Every broken rule is a one-line ``HarnessError``
naming the component and the plugin that provides it:

- a model factory returns a ``torch.nn.Module`` (``check_model``) that maps float
  ``(N, in_channels, H, W)`` to float logits ``(N, 29, H, W)`` (``check_model_output``);
- a loss factory returns a callable (``check_loss_fn``) whose result is a 0-dim float
  tensor (``check_loss_value``) that is differentiable (``check_loss_differentiable``);
- an optimizer factory returns a ``torch.optim.Optimizer`` (``check_optimizer``);
- a scheduler factory returns an LR scheduler: ``step``, ``get_last_lr``, ``state_dict``
  and ``load_state_dict`` (``check_scheduler``);
- an augmentation factory returns ``None`` or a transform called as
  ``transform(image=..., mask=...)`` (``check_augmentation``);
- a test-time augmentation factory returns a non-empty sequence of ``(apply, invert)``
  pairs of callables (``check_tta``), whose inverted logits are ``(N, 29, H, W)`` for an
  ``(N, C, H, W)`` input (``check_tta_logits``);
- a post-processor factory returns a callable (``check_postprocessor``) that maps bool
  masks ``(29, H, W)`` to masks of the same shape, bool or 0/1 (``check_postprocessed``).

``build`` calls a factory and turns any exception it raises into one line; the
``build_*`` functions build one kind of component through it and check the result.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from harness.classes import CLASSES, NUM_CLASSES
from harness.components.entry import Component, Entry, parse_component
from harness.components.registry import SINGULAR, Registered, Registry
from harness.components.weights import load_encoder_weights, resolve_weights
from harness.errors import HarnessError, one_line
from harness.protocol import Protocol

#: What a scheduler must offer (hookspecs: a ``torch.optim.lr_scheduler.LRScheduler``).
SCHEDULER_METHODS: tuple[str, ...] = ("step", "get_last_lr", "state_dict", "load_state_dict")


def _broken(component: Registered, what: str) -> HarnessError:
    """``loss 'x' from my_plugin.py (file) <what>``: the one line every rule raises."""
    noun = SINGULAR.get(component.kind, component.kind)
    return HarnessError(f"{noun} '{component.name}' from {component.provider()} {what}")


def _kind_of(value: Any) -> str:
    return f"a {type(value).__name__}"


# -- building ----------------------------------------------------------------------------------


def build(component: Registered, *args: Any, **kwargs: Any) -> Any:
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


def build_model(
    component: Registered, *, in_channels: int, encoder: str | None, **params: Any
) -> torch.nn.Module:
    """The model for ``num_classes=29``, checked to be a ``torch.nn.Module``."""
    model = build(
        component, num_classes=NUM_CLASSES, in_channels=in_channels, encoder=encoder, **params
    )
    check_model(model, component)
    return model


def build_loss(component: Registered, **params: Any) -> Any:
    """The loss function, checked to be callable."""
    loss_fn = build(component, **params)
    check_loss_fn(loss_fn, component)
    return loss_fn


def build_optimizer(
    component: Registered, params: Any, *, lr: float, weight_decay: float, **kwargs: Any
) -> torch.optim.Optimizer:
    """The optimizer over ``params``, checked to be a ``torch.optim.Optimizer``."""
    optimizer = build(component, params, lr=lr, weight_decay=weight_decay, **kwargs)
    check_optimizer(optimizer, component)
    return optimizer


def build_scheduler(
    component: Registered,
    optimizer: torch.optim.Optimizer,
    *,
    total_steps: int,
    warmup_steps: int,
    **params: Any,
) -> Any:
    """The LR scheduler of ``optimizer``, checked to have ``SCHEDULER_METHODS``."""
    scheduler = build(
        component, optimizer, total_steps=total_steps, warmup_steps=warmup_steps, **params
    )
    check_scheduler(scheduler, component)
    return scheduler


def build_augmentation(component: Registered, *, image_size: int, **params: Any) -> Any:
    """The training transform (or ``None``), checked to take ``image=`` and ``mask=``."""
    transform = build(component, image_size=image_size, **params)
    check_augmentation(transform, component)
    return transform


class Transform(NamedTuple):
    """One test-time transform: ``apply`` to the model's input, ``invert`` on its logits."""

    apply: Callable[[torch.Tensor], torch.Tensor]
    invert: Callable[[torch.Tensor], torch.Tensor]


#: Older names of test-time augmentations (``harness predict --tta flip``, an entry's ``tta``).
TTA_ALIASES: dict[str, str] = {"flip": "hflip"}


def build_tta(component: Registered, **params: Any) -> tuple[Transform, ...]:
    """A test-time augmentation's transforms, checked to be ``(apply, invert)`` pairs."""
    return check_tta(build(component, **params), component)


def tta_transforms(registry: Registry, text: str) -> tuple[Transform, ...]:
    """The transforms of the test-time augmentation ``text``, ``NAME[:KEY=VALUE,...]`` (an
    older name too: ``flip``), its parameters checked against its factory first."""
    component = parse_component(text, "--tta")
    component = Component(TTA_ALIASES.get(component.name, component.name), component.params)
    return build_tta(registry.check("tta", component), **component.kwargs)


def build_postprocessor(component: Registered, **params: Any) -> Callable[[np.ndarray], Any]:
    """A post-processor, checked to be callable."""
    postprocess = build(component, **params)
    check_postprocessor(postprocess, component)
    return postprocess


@dataclass(frozen=True)
class Postprocessing:
    """A post-processor applied to some classes only: the masks of ``classes`` (indices into
    ``CLASSES``) are the post-processor's, every other class's stay as they were."""

    component: Registered
    run: Callable[[np.ndarray], Any]
    classes: tuple[int, ...]

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        """``(29, H, W)`` bool masks, post-processed for the chosen classes (a new array)."""
        if not self.classes:
            return masks
        out = masks.copy()
        done = postprocessed(self.run, masks, self.component)
        chosen = list(self.classes)
        out[chosen] = done[chosen]
        return out


def build_postprocessing(
    registry: Registry, text: str, classes: Sequence[str] | None = None, option: str = "--classes"
) -> Postprocessing:
    """The post-processor ``text`` (``NAME[:KEY=VALUE,...]``) for ``classes`` (None: every
    class); an unknown class is a one-line error naming ``option`` and the near matches."""
    choice = parse_component(text, "--postprocessor")
    component = registry.check("postprocessors", choice)
    chosen = CLASSES if classes is None else tuple(classes)
    for cls in chosen:
        if cls not in CLASSES:
            close = difflib.get_close_matches(cls, CLASSES, n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise HarnessError(f"{option} {cls!r}: not a class; {hint}(the 29 are in CLASSES)")
    indices = tuple(sorted({CLASSES.index(c) for c in chosen}))
    return Postprocessing(component, build_postprocessor(component, **choice.kwargs), indices)


def build_components(
    protocol: Protocol, entry: Entry, registry: Registry, steps_per_epoch: int
) -> tuple[torch.nn.Module, Any, torch.optim.Optimizer, Any, Any]:
    """Model, loss, optimizer, scheduler and augmentation, each from its plugin.

    A factory that raises, or returns something of the wrong kind, is a ``HarnessError``
    naming the component and the plugin that provides it.
    """
    model = build_entry_model(protocol, entry, registry)
    loss = build_loss(registry.get("losses", entry.loss.name), **entry.loss.kwargs)
    optimizer = build_optimizer(
        registry.get("optimizers", entry.optimizer.name),
        [p for p in model.parameters() if p.requires_grad],
        lr=protocol.lr,
        weight_decay=protocol.weight_decay,
        **entry.optimizer.kwargs,
    )
    total = protocol.epochs * steps_per_epoch
    scheduler = build_scheduler(
        registry.get("schedulers", entry.scheduler.name),
        optimizer,
        total_steps=total,
        warmup_steps=min(total - 1, round(protocol.warmup_epochs * steps_per_epoch)),
        **entry.scheduler.kwargs,
    )
    augment = build_augmentation(
        registry.get("augmentations", entry.augmentation.name),
        image_size=protocol.resolution,
        **entry.augmentation.kwargs,
    )
    return model, loss, optimizer, scheduler, augment


def build_entry_model(protocol: Protocol, entry: Entry, registry: Registry) -> torch.nn.Module:
    """The entry's model, its encoder started from the protocol's ``encoder_weights``.

    A file (local, or the encoder library's cached download) is loaded here
    (``harness.components.weights``); a name this harness does not resolve goes to the
    plugin as ``encoder_weights``, as does one the entry's model parameters set.
    """
    encoder = entry.encoder or protocol.encoder
    weights = resolve_weights(protocol.encoder_weights, encoder)
    model_kwargs: dict[str, Any] = dict(entry.model.kwargs)
    own_choice = "encoder_weights" in model_kwargs
    if weights.by_plugin:
        model_kwargs.setdefault("encoder_weights", weights.spec)
    model = build_model(
        registry.get("models", entry.model.name),
        in_channels=protocol.in_channels,
        encoder=encoder,
        **model_kwargs,
    )
    if not own_choice:
        load_encoder_weights(model, weights, protocol.in_channels, entry.model.name)
    return model


# -- the rules, one function each ---------------------------------------------------------------


def check_model(model: Any, component: Registered) -> None:
    """A model factory returns a ``torch.nn.Module``."""
    if not isinstance(model, torch.nn.Module):
        raise _broken(
            component,
            f"returned {_kind_of(model)}, not a torch.nn.Module; fix the plugin's factory",
        )


def check_model_output(logits: Any, inputs: torch.Tensor, component: Registered) -> None:
    """A model maps ``(N, in_channels, H, W)`` to float logits ``(N, 29, H, W)``."""
    n, _, h, w = inputs.shape
    expected = (n, NUM_CLASSES, h, w)
    if not isinstance(logits, torch.Tensor):
        got = _kind_of(logits)
    elif tuple(logits.shape) != expected:
        got = f"shape {tuple(logits.shape)}"
    elif not logits.is_floating_point():
        got = f"dtype {logits.dtype}"
    else:
        return
    raise _broken(
        component,
        f"returned {got} for input of shape {tuple(inputs.shape)}, expected {expected}; "
        f"a model must return float logits of shape (N, {NUM_CLASSES}, H, W)",
    )


def check_loss_fn(loss_fn: Any, component: Registered) -> None:
    """A loss factory returns a callable ``loss(logits, target)``."""
    if not callable(loss_fn):
        raise _broken(
            component,
            f"returned {_kind_of(loss_fn)}, not a callable loss(logits, target); "
            "fix the plugin's factory",
        )


def check_loss_value(value: Any, component: Registered) -> None:
    """A loss returns a 0-dim float tensor (shape ``()``: not ``(1,)``, not per pixel)."""
    if not isinstance(value, torch.Tensor):
        got = _kind_of(value)
    elif value.ndim != 0:
        got = f"shape {tuple(value.shape)}, expected a 0-dim tensor"
    elif not value.is_floating_point():
        got = f"dtype {value.dtype}, expected floating point"
    else:
        return
    raise _broken(
        component,
        f"returned {got}; a loss must return a scalar float tensor of shape () "
        "(reduce it, e.g. with .mean())",
    )


def check_loss_differentiable(value: torch.Tensor, component: Registered) -> None:
    """A loss of logits that require grad requires grad itself (it was not detached)."""
    if not value.requires_grad:
        raise _broken(
            component,
            "returned a tensor that does not require grad (detached?); a loss must be "
            "differentiable in the logits",
        )


def check_optimizer(optimizer: Any, component: Registered) -> None:
    """An optimizer factory returns a ``torch.optim.Optimizer``."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise _broken(
            component,
            f"returned {_kind_of(optimizer)}, not a torch.optim.Optimizer; "
            "fix the plugin's factory",
        )


def check_scheduler(scheduler: Any, component: Registered) -> None:
    """A scheduler factory returns an LR scheduler: it has every one of ``SCHEDULER_METHODS``."""
    lacking = [m for m in SCHEDULER_METHODS if not callable(getattr(scheduler, m, None))]
    if lacking:
        raise _broken(
            component,
            f"returned {_kind_of(scheduler)} without {'(), '.join(lacking)}(); return a "
            "torch.optim.lr_scheduler.LRScheduler",
        )


def check_augmentation(transform: Any, component: Registered) -> None:
    """An augmentation factory returns ``None`` or a transform called as
    ``transform(image=..., mask=...)``."""
    if transform is None:
        return
    if callable(transform):
        try:
            inspect.signature(transform).bind(image=None, mask=None)
            return
        except ValueError:
            return  # no signature to read (a builtin): its first call will tell
        except TypeError:
            pass
    raise _broken(
        component,
        f"returned {_kind_of(transform)}, not a transform called as "
        "transform(image=..., mask=...) (or None); fix the plugin's factory",
    )


def check_tta(transforms: Any, component: Registered) -> tuple[Transform, ...]:
    """A test-time augmentation factory returns a non-empty sequence of ``(apply, invert)``
    pairs of callables; they come back as ``Transform``s."""
    pairs = list(transforms) if isinstance(transforms, list | tuple) else None
    if pairs and all(
        isinstance(pair, list | tuple) and len(pair) == 2 and all(map(callable, pair))
        for pair in pairs
    ):
        return tuple(Transform(*pair) for pair in pairs)
    raise _broken(
        component,
        f"returned {_kind_of(transforms) if pairs is None else 'a sequence'} that is not a "
        "non-empty sequence of (apply, invert) pairs of callables; fix the plugin's factory",
    )


def check_tta_logits(logits: Any, inputs: torch.Tensor, component: Registered) -> None:
    """A transform's ``invert`` gives float logits ``(N, 29, H, W)`` for ``(N, C, H, W)`` input."""
    n, _, h, w = inputs.shape
    expected = (n, NUM_CLASSES, h, w)
    if not isinstance(logits, torch.Tensor):
        got = _kind_of(logits)
    elif tuple(logits.shape) != expected:
        got = f"shape {tuple(logits.shape)}"
    elif not logits.is_floating_point():
        got = f"dtype {logits.dtype}"
    else:
        return
    raise _broken(
        component,
        f"inverted the logits to {got} for input of shape {tuple(inputs.shape)}, expected "
        f"{expected}; invert must bring the logits back to the input's frame and size",
    )


def check_postprocessor(postprocess: Any, component: Registered) -> None:
    """A post-processor factory returns a callable ``postprocess(masks) -> masks``."""
    if not callable(postprocess):
        raise _broken(
            component,
            f"returned {_kind_of(postprocess)}, not a callable postprocess(masks); "
            "fix the plugin's factory",
        )


def check_postprocessed(out: Any, masks: np.ndarray, component: Registered) -> np.ndarray:
    """A post-processor returns masks of its input's shape, bool or 0/1 integers; they come
    back as bool."""
    if not isinstance(out, np.ndarray):
        got = _kind_of(out)
    elif out.shape != masks.shape:
        got = f"shape {out.shape}"
    elif out.dtype == np.bool_:
        return out
    elif np.issubdtype(out.dtype, np.integer) and not ((out != 0) & (out != 1)).any():
        return out != 0
    else:
        got = f"dtype {out.dtype} with values other than 0 and 1"
    raise _broken(
        component,
        f"returned {got} for masks of shape {masks.shape}; a post-processor returns a numpy "
        "array of the same shape, bool (or 0/1)",
    )


def postprocessed(
    postprocess: Callable[[np.ndarray], Any], masks: np.ndarray, component: Registered
) -> np.ndarray:
    """``postprocess`` run on a copy of ``masks`` (its input is never the caller's), checked."""
    try:
        out = postprocess(masks.copy())
    except HarnessError:
        raise
    except Exception as exc:
        raise _broken(
            component, f"raised {type(exc).__name__}: {one_line(exc, 200)}; fix the plugin"
        ) from exc
    return check_postprocessed(out, masks, component)


# -- what training calls on its first batch -----------------------------------------------------


def check_logits(logits: Any, inputs: torch.Tensor, entry: Entry, registry: Registry) -> None:
    """The model contract on a training batch: ``check_model_output`` for the entry's model."""
    check_model_output(logits, inputs, registry.get("models", entry.model.name))


def check_loss(loss: Any, entry: Entry, registry: Registry) -> None:
    """The loss contract on a training batch: a differentiable 0-dim float tensor."""
    component = registry.get("losses", entry.loss.name)
    check_loss_value(loss, component)
    check_loss_differentiable(loss, component)
