"""Conformance checks: does one component keep the promises of ``harness/components/hookspecs.py``?

A plugin author runs them before spending a benchmark on a component
(``harness check-plugin NAME``); the test suite runs them for every installed
component. They are small and quick (CPU, inputs of 64-96 px) and check behaviour,
not quality. Every rule of the contract itself (what a factory returns, the logits'
shape, the loss being a differentiable 0-dim tensor, ...) is checked by the same
function of ``harness.components.contracts`` that a run uses, with the same words;
the rest is behaviour a run cannot see on one batch:

- a **model** builds, maps ``(2, 1, S, S)`` to finite float logits ``(2, 29, S, S)`` for
  two sizes (in training and in evaluation mode), and its gradients reach every parameter;
- a **loss** is a finite, differentiable 0-dim tensor that falls when its input is trained;
- an **optimizer** honours ``lr`` and ``weight_decay``, steps a small network to a
  lower loss, and round-trips its state dict;
- a **scheduler** is an LR scheduler that steps ``total_steps`` times with the learning
  rate finite and >= 0, with and without warm-up, and round-trips its state dict;
- an **augmentation** (``None`` is no augmentation) keeps shapes and dtypes, keeps masks
  binary, and keeps image and masks aligned;
- a component that declares a tuning space (``harness.tunable``) declares a valid one
  (``harness.components.spaces``): names it takes, bounds in order, log ranges above 0.
- a **test-time augmentation** builds its ``(apply, invert)`` pairs, gives model inputs
  whose sides are multiples of 32 and logits back at the input's shape for two sizes, and
  its ``invert`` undoes its ``apply`` (a per-pixel model's logits come back where they were);
- a **post-processor** returns bool masks of its input's shape for two sizes, leaves its
  input unchanged, and gives the same masks for the same input.

An exception inside a plugin is a failed check carrying its message, never a
traceback, so one report lists every problem at once. Asking for a component that
does not exist is a ``HarnessError`` (a usage error, not a failed check).
"""

from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from harness.classes import NUM_CLASSES
from harness.components import contracts, spaces
from harness.components.kinds import BY_FIELD, BY_PLURAL, COMPONENT_KINDS
from harness.components.registry import KINDS, SINGULAR, Registered, Registry
from harness.errors import HarnessError

#: The input sides a model is checked at (both divisible by 32).
MODEL_SIZES: tuple[int, int] = (64, 96)
#: Batch size of the model check (2, so batch norm can train).
MODEL_BATCH = 2
#: The image side an augmentation is checked at, and how many random draws it gets.
AUGMENTATION_SIZE = 64
AUGMENTATION_DRAWS = 16


class Check(NamedTuple):
    """One verdict: what was checked, whether it passed, and what was seen."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Report:
    """Every check of one component, in the order they ran."""

    kind: str
    name: str
    provider: str
    params: Mapping[str, Any] = field(default_factory=dict)
    checks: tuple[Check, ...] = ()

    @property
    def ok(self) -> bool:
        """True when at least one check ran and every check passed."""
        return bool(self.checks) and all(check.passed for check in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.passed)

    @property
    def title(self) -> str:
        """``model 'unetpp' from builtin-models (segmentation-harness 0.1.0)``."""
        spec = self.name
        if self.params:
            spec += ":" + ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{SINGULAR[self.kind]} '{spec}' from {self.provider}"

    @property
    def summary(self) -> str:
        """One line: the title and how many checks passed."""
        passed = sum(check.passed for check in self.checks)
        verdict = "conforms" if self.ok else "does not conform"
        return f"{self.title} {verdict}: {passed} of {len(self.checks)} checks passed"


# -- public API ------------------------------------------------------------------------------


def normalize_kind(kind: str) -> str:
    """``"model"`` or ``"models"`` -> ``"models"``; anything else is a ``HarnessError``."""
    found = BY_FIELD.get(kind) or BY_PLURAL.get(kind)
    if found is None:
        choices = ", ".join(k.field for k in COMPONENT_KINDS)
        raise HarnessError(f"unknown component kind '{kind}'; choose one of: {choices}")
    return found.plural


def resolve_kind(registry: Registry, name: str, kind: str | None = None) -> str:
    """The kind of component ``name`` is: ``kind`` if given, else found by searching all kinds.

    A name no kind offers lists the near matches; a name offered by several kinds
    (a model and a loss both called ``dice``) asks for ``--kind``.
    """
    if kind is not None:
        return normalize_kind(kind)
    found = [k for k in KINDS if name in registry.components(k)]
    if len(found) == 1:
        return found[0]
    if found:
        kinds = " and ".join(f"{_article(SINGULAR[k])} {SINGULAR[k]}" for k in found)
        choices = " or ".join(f"--kind {SINGULAR[k]}" for k in found)
        raise HarnessError(f"'{name}' names {kinds}; choose one with {choices}")
    names = sorted({n for k in KINDS for n in registry.components(k)})
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    hint = f"did you mean: {', '.join(close)}? " if close else ""
    raise HarnessError(f"no component is named '{name}'; {hint}(`harness list` shows all)")


def _article(noun: str) -> str:
    return "an" if noun[:1] in "aeiou" else "a"


def check_component(
    registry: Registry,
    kind: str,
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    encoder: str | None = None,
) -> Report:
    """Run every check for the component ``name`` of ``kind`` built with ``params``.

    ``kind`` is plural or singular (``"models"`` or ``"model"``). ``encoder`` is passed to
    a model's factory (``None``: the model's own default) and ignored for other kinds.
    Never raises for a plugin's fault; an unknown kind or name is a ``HarnessError``.
    """
    kind = normalize_kind(kind)
    component = registry.get(kind, name)
    params = dict(params or {})
    checker = _CHECKERS[kind]
    checks = _Checks()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        checker(component, params, checks, encoder)
    if getattr(component.factory, spaces.TUNING_SPACE, None) is not None:
        checks.run("declares a valid tuning space", lambda: _space_detail(component))
    return Report(
        kind=kind,
        name=name,
        provider=component.provider(),
        params=params,
        checks=tuple(checks.done),
    )


def _space_detail(component: Registered) -> str:
    """The declared tuning space in words (a bad one: ``spaces.declared``'s one line)."""
    found = spaces.declared(component)
    return ", ".join(f"{k} {v}" for k, v in found.describe().items()) if found else "none"


# -- machinery -------------------------------------------------------------------------------


class _Failed(Exception):
    """A check's verdict that something is wrong (its message is the detail)."""


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]


class _Checks:
    """Collects checks; ``run`` turns any exception into a failed check."""

    def __init__(self) -> None:
        self.done: list[Check] = []

    def run(self, name: str, fn: Callable[[], str]) -> bool:
        try:
            detail = fn()
        except (_Failed, HarnessError) as exc:  # a verdict, or a broken rule: one line already
            self.done.append(Check(name, False, str(exc)))
            return False
        except Exception as exc:
            self.done.append(Check(name, False, _describe(exc)))
            return False
        self.done.append(Check(name, True, detail))
        return True

    def skip(self, name: str, reason: str) -> None:
        self.done.append(Check(name, False, f"not run: {reason}"))


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise _Failed(message)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


# -- models ----------------------------------------------------------------------------------


def _check_model(
    component: Registered, params: dict[str, Any], checks: _Checks, encoder: str | None
) -> None:
    state: dict[str, Any] = {}

    def build() -> str:
        model = contracts.build_model(component, in_channels=1, encoder=encoder, **params)
        state["model"] = model
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        return f"{type(model).__name__}, {trainable:,} trainable parameters"

    if not checks.run("builds", build):
        for size in MODEL_SIZES:
            checks.skip(f"logits for {MODEL_BATCH}x1x{size}x{size}", "the model did not build")
        checks.skip("gradients reach every parameter", "the model did not build")
        return
    model: nn.Module = state["model"]

    def logits(size: int, training: bool) -> Callable[[], str]:
        def run() -> str:
            x = torch.randn(MODEL_BATCH, 1, size, size)
            model.train(training)
            if training:
                model.zero_grad(set_to_none=True)
                out = model(x)
            else:
                with torch.no_grad():
                    out = model(x)
            contracts.check_model_output(out, x, component)
            _expect(bool(torch.isfinite(out).all()), "logits are not all finite")
            if training:
                state["logits"] = out
            mode = "training" if training else "evaluation"
            return f"{tuple(out.shape)} {str(out.dtype).removeprefix('torch.')} in {mode} mode"

        return run

    first, second = MODEL_SIZES
    trained = checks.run(f"logits for {MODEL_BATCH}x1x{first}x{first}", logits(first, True))
    checks.run(f"logits for {MODEL_BATCH}x1x{second}x{second}", logits(second, False))

    def gradients() -> str:
        out: torch.Tensor = state["logits"]
        generator = torch.Generator().manual_seed(0)
        # A random projection: no symmetry (e.g. batch norm before a mean) can cancel it.
        weights = torch.randn(out.shape, generator=generator)
        (out * weights).mean().backward()
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        _expect(bool(named), "the model has no trainable parameters")
        missing = [n for n, p in named if p.grad is None]
        _expect(
            not missing,
            f"{_count(len(missing), 'parameter')} of {len(named)} get no gradient "
            f"(unused in forward?): {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}",
        )
        bad = [n for n, p in named if not torch.isfinite(p.grad).all()]
        _expect(not bad, f"non-finite gradients in {', '.join(bad[:3])}")
        ends = [named[0], named[-1]]
        dead = [n for n, p in ends if not p.grad.abs().sum() > 0]
        _expect(not dead, f"zero gradient at {', '.join(dead)} (first/last parameter)")
        nonzero = sum(bool(p.grad.abs().sum() > 0) for _, p in named)
        return f"all {len(named)} finite; {nonzero} nonzero"

    if trained:
        checks.run("gradients reach every parameter", gradients)
    else:
        checks.skip("gradients reach every parameter", "no training-mode logits")


# -- losses ----------------------------------------------------------------------------------


def _loss_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Logits near 0 and a multi-label target with some classes absent, as in real crops."""
    generator = torch.Generator().manual_seed(0)
    target = (torch.rand(2, NUM_CLASSES, 32, 32, generator=generator) > 0.7).float()
    target[:, -3:] = 0
    logits = 0.1 * torch.randn(2, NUM_CLASSES, 32, 32, generator=generator)
    return logits, target


def _check_loss(
    component: Registered, params: dict[str, Any], checks: _Checks, encoder: str | None
) -> None:
    state: dict[str, Any] = {}

    def build() -> str:
        loss_fn = contracts.build_loss(component, **params)
        state["loss"] = loss_fn
        return type(loss_fn).__name__

    names = ("finite scalar", "differentiable", "falls under training")
    if not checks.run("builds", build):
        for name in names:
            checks.skip(name, "the loss did not build")
        return
    loss_fn = state["loss"]
    start, target = _loss_batch()

    def scalar() -> str:
        value = loss_fn(start.clone(), target)
        contracts.check_loss_value(value, component)
        _expect(bool(torch.isfinite(value)), f"value {value.item()}")
        return f"{value.item():.4f} on logits ~ 0"

    def differentiable() -> str:
        logits = start.clone().requires_grad_(True)
        value = loss_fn(logits, target)
        contracts.check_loss_value(value, component)
        contracts.check_loss_differentiable(value, component)
        value.backward()
        _expect(logits.grad is not None, "no gradient reached the logits")
        _expect(bool(torch.isfinite(logits.grad).all()), "non-finite gradient")
        _expect(bool(logits.grad.abs().sum() > 0), "the gradient is zero everywhere")
        return f"gradient norm {logits.grad.norm().item():.3g}"

    def falls() -> str:
        logits = start.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([logits], lr=0.05)
        with torch.no_grad():
            first = float(loss_fn(logits, target))
        for _ in range(10):
            optimizer.zero_grad()
            loss_fn(logits, target).backward()
            optimizer.step()
        with torch.no_grad():
            last = float(loss_fn(logits, target))
        _expect(last < first, f"{first:.4f} -> {last:.4f} after 10 Adam steps on the logits")
        return f"{first:.4f} -> {last:.4f} in 10 Adam steps on the logits"

    checks.run(names[0], scalar)
    checks.run(names[1], differentiable)
    checks.run(names[2], falls)


# -- optimizers ------------------------------------------------------------------------------


def _small_network() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A conv kernel, a batch norm, biases and a matrix: every kind of parameter a model has."""
    generator = torch.Generator().manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 8 * 8, 2),
    )
    x = torch.randn(16, 1, 8, 8, generator=generator)
    y = torch.randn(16, 2, generator=generator)
    return net, x, y


def _check_optimizer(
    component: Registered, params: dict[str, Any], checks: _Checks, encoder: str | None
) -> None:
    lr, weight_decay = 0.01, 1e-4
    net, x, y = _small_network()
    state: dict[str, Any] = {}

    def build() -> str:
        optimizer = contracts.build_optimizer(
            component, list(net.parameters()), lr=lr, weight_decay=weight_decay, **params
        )
        state["optimizer"] = optimizer
        return f"{type(optimizer).__module__}.{type(optimizer).__name__}"

    names = ("honours lr and weight_decay", "steps to a lower loss", "state_dict round-trips")
    if not checks.run("builds", build):
        for name in names:
            checks.skip(name, "the optimizer did not build")
        return
    optimizer: torch.optim.Optimizer = state["optimizer"]

    def honours() -> str:
        other_net, _, _ = _small_network()
        doubled = contracts.build_optimizer(
            component,
            list(other_net.parameters()),
            lr=2 * lr,
            weight_decay=2 * weight_decay,
            **params,
        )
        groups, twice = optimizer.param_groups, doubled.param_groups
        _expect(len(groups) == len(twice), "the number of param groups depends on lr")
        for one, two in zip(groups, twice, strict=True):
            _expect(
                math.isclose(two["lr"], 2 * one["lr"]) and one["lr"] > 0,
                f"lr {lr} gives group lr {one['lr']}, lr {2 * lr} gives {two['lr']}",
            )
            if "weight_decay" in one:
                _expect(
                    math.isclose(two["weight_decay"], 2 * one["weight_decay"], abs_tol=1e-12)
                    and one["weight_decay"] > 0,
                    f"weight_decay {weight_decay} gives {one['weight_decay']}, "
                    f"{2 * weight_decay} gives {two['weight_decay']}",
                )
        return f"group lr {groups[0]['lr']:g} for lr {lr:g}; scales with lr and weight_decay"

    def steps() -> str:
        net.train()

        def loss() -> torch.Tensor:
            return nn.functional.mse_loss(net(x), y)

        with torch.no_grad():
            first = loss().item()
        for _ in range(20):
            optimizer.zero_grad()
            loss().backward()
            optimizer.step()
        _expect(
            all(bool(torch.isfinite(p).all()) for p in net.parameters()),
            "parameters became non-finite",
        )
        with torch.no_grad():
            last = loss().item()
        _expect(last < first, f"MSE {first:.4f} -> {last:.4f} after 20 steps at lr {lr}")
        return f"MSE {first:.4f} -> {last:.4f} in 20 steps at lr {lr}"

    def round_trip() -> str:
        saved = copy.deepcopy(optimizer.state_dict())
        optimizer.load_state_dict(saved)
        optimizer.zero_grad()
        nn.functional.mse_loss(net(x), y).backward()
        optimizer.step()
        return "saved, reloaded and stepped again"

    checks.run(names[0], honours)
    checks.run(names[1], steps)
    checks.run(names[2], round_trip)


# -- schedulers ------------------------------------------------------------------------------


def _check_scheduler(
    component: Registered, params: dict[str, Any], checks: _Checks, encoder: str | None
) -> None:
    total_steps, base_lr = 20, 0.1

    def make(warmup_steps: int) -> tuple[torch.optim.Optimizer, Any]:
        weight = nn.Parameter(torch.zeros(2))
        optimizer = torch.optim.SGD([weight], lr=base_lr, momentum=0.9)
        scheduler = contracts.build_scheduler(
            component, optimizer, total_steps=total_steps, warmup_steps=warmup_steps, **params
        )
        return optimizer, scheduler

    state: dict[str, Any] = {}

    def build() -> str:
        optimizer, scheduler = make(4)
        state["pair"] = (optimizer, scheduler)
        return type(scheduler).__name__

    names = ("steps with lr finite and >= 0", "state_dict round-trips")
    if not checks.run("builds", build):
        for name in names:
            checks.skip(name, "the scheduler did not build")
        return

    def walk(optimizer: torch.optim.Optimizer, scheduler: Any) -> list[float]:
        rates = []
        for _ in range(total_steps):
            rates.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return rates

    def steps() -> str:
        details = []
        for warmup_steps, (optimizer, scheduler) in ((0, make(0)), (4, state["pair"])):
            rates = walk(optimizer, scheduler)
            bad = [(k, r) for k, r in enumerate(rates) if not (math.isfinite(r) and r >= 0)]
            _expect(
                not bad,
                f"with warmup_steps={warmup_steps}, step {bad[0][0] if bad else 0} has lr "
                f"{bad[0][1] if bad else 0}",
            )
            _expect(max(rates) > 0, f"with warmup_steps={warmup_steps} the lr is 0 at every step")
            details.append(
                f"warm-up {warmup_steps}: {rates[0]:.3g} .. max {max(rates):.3g} .. {rates[-1]:.3g}"
            )
        return f"{total_steps} steps at base lr {base_lr}; " + "; ".join(details)

    def round_trip() -> str:
        optimizer, scheduler = make(4)
        for _ in range(total_steps // 2):
            optimizer.step()
            scheduler.step()
        saved = copy.deepcopy(scheduler.state_dict())
        _, fresh = make(4)
        fresh.load_state_dict(saved)
        expected = scheduler.get_last_lr()
        got = fresh.get_last_lr()
        _expect(
            list(map(float, got)) == list(map(float, expected)),
            f"reloaded at lr {got}, saved at {expected}",
        )
        return f"resumed at step {total_steps // 2} with lr {float(expected[0]):.3g}"

    checks.run(names[0], steps)
    checks.run(names[1], round_trip)


# -- augmentations ---------------------------------------------------------------------------


def _shapes_sample(size: int = AUGMENTATION_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Three asymmetric boxes, one per mask channel, two overlapping (like carpal bones);
    the image is bright exactly where any mask is, so alignment is a threshold away."""
    mask = np.zeros((size, size, NUM_CLASSES), np.uint8)
    s = size / 64
    mask[int(8 * s) : int(30 * s), int(6 * s) : int(20 * s), 0] = 1
    mask[int(36 * s) : int(56 * s), int(30 * s) : int(58 * s), 1] = 1
    mask[int(20 * s) : int(44 * s), int(24 * s) : int(34 * s), 2] = 1
    image = np.where(mask.any(axis=2), 255, 0).astype(np.uint8)
    return image, mask


def _unchanged(*, image: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """What ``None`` (no augmentation) does to a sample."""
    return {"image": image, "mask": mask}


def _check_augmentation(
    component: Registered, params: dict[str, Any], checks: _Checks, encoder: str | None
) -> None:
    state: dict[str, Any] = {}

    def build() -> str:
        transform = contracts.build_augmentation(component, image_size=AUGMENTATION_SIZE, **params)
        if transform is None:
            state["transform"] = _unchanged
            return "None: no augmentation"
        if hasattr(transform, "set_random_seed"):
            transform.set_random_seed(0)
        state["transform"] = transform
        return type(transform).__name__

    names = ("keeps shapes and dtypes", "keeps masks binary", "keeps image and masks aligned")
    if not checks.run("builds", build):
        for name in names:
            checks.skip(name, "the augmentation did not build")
        return
    image, mask = _shapes_sample()

    def draws() -> str:
        outputs = []
        for _ in range(AUGMENTATION_DRAWS):
            out = state["transform"](image=image.copy(), mask=mask.copy())
            outputs.append((np.asarray(out["image"]), np.asarray(out["mask"])))
        state["outputs"] = outputs
        for new_image, new_mask in outputs:
            _expect(
                new_image.shape == image.shape and new_image.dtype == np.uint8,
                f"image came back {new_image.dtype} {new_image.shape}, "
                f"expected uint8 {image.shape}",
            )
            _expect(
                new_mask.shape == mask.shape and new_mask.dtype == np.uint8,
                f"mask came back {new_mask.dtype} {new_mask.shape}, expected uint8 {mask.shape}",
            )
        changed = sum(
            not np.array_equal(m, mask) or not np.array_equal(i, image) for i, m in outputs
        )
        return f"{AUGMENTATION_DRAWS} draws, {changed} changed the sample"

    def binary() -> str:
        for _, new_mask in state["outputs"]:
            values = set(np.unique(new_mask).tolist())
            _expect(values <= {0, 1}, f"mask values {sorted(values)[:6]}, expected 0 and 1 only")
            _expect(not new_mask[..., 3:].any(), "empty classes gained pixels")
        return "values in {0, 1}; empty classes stay empty"

    def aligned() -> str:
        worst = 1.0
        for new_image, new_mask in state["outputs"]:
            bright = new_image > 127
            labelled = new_mask.any(axis=2)
            union = (bright | labelled).sum()
            iou = (bright & labelled).sum() / union if union else 1.0
            worst = min(worst, float(iou))
        _expect(worst > 0.9, f"IoU of thresholded image and masks fell to {worst:.2f}")
        return f"IoU of thresholded image and masks >= {worst:.2f}"

    if checks.run(names[0], draws):
        checks.run(names[1], binary)
        checks.run(names[2], aligned)
    else:
        for name in names[1:]:
            checks.skip(name, "the shapes and dtypes are wrong")


# -- test-time augmentations -----------------------------------------------------------------


def _smooth_images(size: int) -> torch.Tensor:
    """``(2, 1, size, size)`` images without symmetry and smooth enough to resize."""
    axis = torch.linspace(0, 1, size)
    rows, cols = torch.meshgrid(axis, axis, indexing="ij")
    image = torch.sin(4 * rows) + torch.cos(3 * cols) + rows * cols
    return torch.stack([image, image.flip(-1) * 0.5])[:, None]


def _check_tta(
    component: Registered, params: dict[str, Any], checks: _Checks, encoder: str | None
) -> None:
    state: dict[str, Any] = {}

    def build() -> str:
        state["transforms"] = contracts.build_tta(component, **params)
        return f"{_count(len(state['transforms']), 'transform')} (forward passes)"

    names = [f"logits back at the input's shape for 2x1x{s}x{s}" for s in MODEL_SIZES]
    names.append("invert undoes apply")
    if not checks.run("builds", build):
        for name in names:
            checks.skip(name, "the test-time augmentation did not build")
        return
    generator = torch.Generator().manual_seed(0)
    pixelwise = nn.Conv2d(1, NUM_CLASSES, 1)
    nn.init.normal_(pixelwise.weight, generator=generator)

    def shapes(size: int) -> Callable[[], str]:
        def run() -> str:
            x = _smooth_images(size)
            seen = []
            for transform in state["transforms"]:
                applied = transform.apply(x.clone())
                _expect(
                    isinstance(applied, torch.Tensor)
                    and applied.shape[:2] == x.shape[:2]
                    and all(side % 32 == 0 for side in applied.shape[-2:]),
                    f"apply gave {_kind_of_tensor(applied)} for input {tuple(x.shape)}; "
                    "expected (2, 1, H', W') with H' and W' multiples of 32",
                )
                with torch.no_grad():
                    contracts.check_tta_logits(transform.invert(pixelwise(applied)), x, component)
                seen.append("x".join(map(str, applied.shape[-2:])))
            return f"model inputs {', '.join(seen)}"

        return run

    def undoes() -> str:
        x = _smooth_images(MODEL_SIZES[1])
        with torch.no_grad():
            plain = pixelwise(x)
            spread = float(plain.std())
            worst = 0.0
            for transform in state["transforms"]:
                back = transform.invert(pixelwise(transform.apply(x.clone())))
                worst = max(worst, float((back.float() - plain).abs().mean()) / spread)
        _expect(worst <= 0.1, f"a per-pixel model's logits came back moved: error {worst:.3f}")
        return f"a per-pixel model's logits come back within {worst:.3f} of their spread"

    for size, name in zip(MODEL_SIZES, names, strict=False):
        checks.run(name, shapes(size))
    checks.run(names[-1], undoes)


def _kind_of_tensor(value: Any) -> str:
    return (
        f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
    )


# -- post-processors -------------------------------------------------------------------------


def _masks_sample(size: int) -> np.ndarray:
    """``(29, size, size)`` bool masks: the augmentation check's three boxes, one with a hole
    and a speck beside it; the other classes empty."""
    _, mask = _shapes_sample(size)
    masks = np.moveaxis(mask, -1, 0).astype(bool)
    masks[0, size // 4, size // 5] = False  # a hole
    masks[1, 2, 2] = True  # a speck
    return masks


def _check_postprocessor(
    component: Registered, params: dict[str, Any], checks: _Checks, encoder: str | None
) -> None:
    state: dict[str, Any] = {}

    def build() -> str:
        state["run"] = contracts.build_postprocessor(component, **params)
        return type(state["run"]).__name__

    names = [f"bool masks back at the input's shape for 29x{s}x{s}" for s in MODEL_SIZES]
    names += ["leaves its input unchanged", "same masks for the same input"]
    if not checks.run("builds", build):
        for name in names:
            checks.skip(name, "the post-processor did not build")
        return

    def shapes(size: int) -> Callable[[], str]:
        def run() -> str:
            masks = _masks_sample(size)
            out = contracts.postprocessed(state["run"], masks, component)
            changed = int((out != masks).sum())
            return f"{_count(changed, 'pixel')} changed"

        return run

    def unchanged() -> str:
        masks = _masks_sample(MODEL_SIZES[0])
        before = masks.copy()
        state["run"](masks)
        _expect(np.array_equal(masks, before), "it changed the masks it was given in place")
        return "the masks it was given are as they were"

    def same() -> str:
        masks = _masks_sample(MODEL_SIZES[0])
        first = contracts.postprocessed(state["run"], masks, component)
        second = contracts.postprocessed(state["run"], masks, component)
        _expect(np.array_equal(first, second), "two calls on the same masks differ")
        return "two calls agree"

    for size, name in zip(MODEL_SIZES, names, strict=False):
        checks.run(name, shapes(size))
    checks.run(names[-2], unchanged)
    checks.run(names[-1], same)


_CHECKERS: dict[str, Callable[[Registered, dict[str, Any], _Checks, str | None], None]] = {
    "models": _check_model,
    "losses": _check_loss,
    "optimizers": _check_optimizer,
    "schedulers": _check_scheduler,
    "augmentations": _check_augmentation,
    "tta": _check_tta,
    "postprocessors": _check_postprocessor,
}
