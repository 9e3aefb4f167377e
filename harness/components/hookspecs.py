"""Every hook a harness plugin may implement, in one file.

This module is the whole extension surface: a plugin author reads it and knows
everything they may write. A plugin is a module (installed through the ``harness``
entry-point group, or passed as ``--plugin FILE_OR_MODULE``) that implements any of
the hooks below with ``from harness import hookimpl``::

    # my_plugin.py
    from harness import hookimpl

    @hookimpl
    def harness_losses():
        return {"my-focal": focal_loss}

Each hook takes no arguments and returns a mapping from a public name to a
*factory*: a callable the harness calls with the protocol's settings plus the
parameters the user chose (``--set`` or the entry), and which returns the component.
A hook that offers nothing returns ``{}``.

Rules every hook shares, checked when the registry is built:

- Names are lower-case letters and digits in hyphen-separated words
  (``^[a-z0-9]+(-[a-z0-9]+)*$``): ``"unetpp"``, ``"warmup-cosine"``.
- A name is the public id of the component across all plugins: the same name
  offered by two plugins is an error naming both providers.
- A factory must accept the keyword arguments listed for its hook and should raise
  ``TypeError``/``ValueError``/``KeyError`` for parameters it does not understand;
  the harness turns those into one-line errors naming the component and its plugin.
- Hook names carry the ``harness_`` prefix; a ``@hookimpl`` whose name is not one of
  these is an error, so a misspelling never passes silently.

A factory may declare the hyper-parameters ``harness tune`` should search for it and their
ranges (its *tuning space*) with ``harness.tunable``; the protocol's ``[tuning.space]``
covers what no component declares, and the budget (trials, schedule) stays the protocol's::

    from harness import hookimpl, tunable

    @tunable(lr=(1e-3, 1.0, "log"), momentum=(0.8, 0.99))
    def sgd(params, *, lr, weight_decay, momentum: float = 0.9):
        ...

A name is a protocol field (``lr``, ``weight_decay``, ``warmup_epochs``, ``grad_clip``) or one
of the factory's own float parameters with a numeric default; a range is ``(low, high)`` or
``(low, high, "log")``. ``harness check-plugin`` and ``harness tune`` check it
(``harness.components.spaces``).

What each hook's component must be and return is checked by
``harness.components.contracts``, one function per rule, the same for a run,
``harness predict`` and ``harness check-plugin``: a component that breaks a rule is a
one-line error naming it and its plugin.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pluggy

#: Marks the hook specifications below; plugins use ``harness.hookimpl``.
hookspec = pluggy.HookspecMarker("harness")
#: Mark a function in a plugin module as an implementation of a ``harness_*`` hook
#: (re-exported as ``harness.hookimpl``, the one name a plugin module needs).
hookimpl = pluggy.HookimplMarker("harness")

Factory = Callable[..., Any]


# -- architecture ---------------------------------------------------------------------


@hookspec
def harness_models() -> Mapping[str, Factory]:
    """Offer segmentation models.

    Each factory is called as ``factory(*, num_classes, in_channels, encoder, **params)``
    and returns a ``torch.nn.Module``:

    - ``num_classes``: output channels (29 for the hand bones).
    - ``in_channels``: input channels (1 for the grayscale X-rays).
    - ``encoder``: the backbone's name, or ``None`` for the model's own default.
    - ``params``: anything else the entry sets (for the built-ins, e.g.
      ``encoder_weights`` or ``decoder_channels``).

    The module maps a float tensor ``(N, in_channels, H, W)`` to float *logits*
    ``(N, num_classes, H, W)`` (one tensor, no sigmoid), for any ``H, W`` divisible by 32.
    Pretrained weights are never fetched unless a parameter asks for them; a model
    that cannot load requested weights raises ``harness.errors.HarnessError``.

    Example::

        @hookimpl
        def harness_models():
            def tiny(*, num_classes, in_channels, encoder, width=16):
                return torch.nn.Sequential(
                    torch.nn.Conv2d(in_channels, width, 3, padding=1),
                    torch.nn.ReLU(),
                    torch.nn.Conv2d(width, num_classes, 1),
                )
            return {"tiny-cnn": tiny}
    """


# -- objective --------------------------------------------------------------------------


@hookspec
def harness_losses() -> Mapping[str, Factory]:
    """Offer training losses.

    Each factory is called as ``factory(**params)`` and returns a callable
    ``loss(logits, target) -> scalar tensor``:

    - ``logits``: the model's output, float ``(N, 29, H, W)``, before any sigmoid.
    - ``target``: float ``(N, 29, H, W)`` with values in {0, 1}; the classes are
      multi-label (carpal bones overlap), so channels are independent.
    - The result is a differentiable 0-dim float tensor: shape ``()`` (a ``(1,)`` or
      per-pixel tensor is not a scalar; reduce it, e.g. with ``.mean()``), never
      detached from ``logits``; lower is better.

    Example::

        @hookimpl
        def harness_losses():
            def soft_bce(*, smoothing=0.05):
                def loss(logits, target):
                    target = target * (1 - smoothing) + 0.5 * smoothing
                    return F.binary_cross_entropy_with_logits(logits, target)
                return loss
            return {"soft-bce": soft_bce}
    """


# -- optimisation -----------------------------------------------------------------------


@hookspec
def harness_optimizers() -> Mapping[str, Factory]:
    """Offer optimizers.

    Each factory is called as ``factory(params, *, lr, weight_decay, **params)``
    and returns a ``torch.optim.Optimizer``:

    - ``params`` (positional): the model's parameters (an iterable of tensors or
      of parameter-group dicts), as ``torch.optim`` optimizers take them.
    - ``lr``, ``weight_decay``: the protocol's values; a factory must honour both.
    - further keyword ``params``: anything else the entry sets (e.g. ``momentum``).

    Example::

        @hookimpl
        def harness_optimizers():
            def rmsprop(params, *, lr, weight_decay, alpha=0.99):
                return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay,
                                           alpha=alpha)
            return {"rmsprop": rmsprop}
    """


@hookspec
def harness_schedulers() -> Mapping[str, Factory]:
    """Offer learning-rate schedules.

    Each factory is called as
    ``factory(optimizer, *, total_steps, warmup_steps, **params)`` and returns a
    ``torch.optim.lr_scheduler.LRScheduler`` (anything with ``step()``,
    ``get_last_lr()``, ``state_dict()`` and ``load_state_dict()``):

    - ``optimizer`` (positional): the optimizer built from ``harness_optimizers``.
    - ``total_steps``: the number of optimizer steps in the whole run (>= 1).
    - ``warmup_steps``: the protocol's warm-up length in optimizer steps (>= 0);
      a schedule without warm-up may ignore it.
    - further keyword ``params``: anything else the entry sets.

    The harness calls ``scheduler.step()`` once after every optimizer step, so the
    learning rate used for step ``k`` (0-based) is the one after ``k`` calls.

    Example::

        @hookimpl
        def harness_schedulers():
            def step_decay(optimizer, *, total_steps, warmup_steps, gamma=0.1):
                return torch.optim.lr_scheduler.StepLR(
                    optimizer, step_size=max(1, total_steps // 3), gamma=gamma)
            return {"step-decay": step_decay}
    """


# -- data -------------------------------------------------------------------------------


@hookspec
def harness_augmentations() -> Mapping[str, Factory]:
    """Offer training-time augmentations (never applied to validation or test data).

    Each factory is called as ``factory(*, image_size, **params)`` and returns an
    albumentations transform (usually an ``albumentations.Compose``), or ``None`` for
    no augmentation; any callable taking ``image=`` and ``mask=`` will do. ``image_size``
    is the protocol's training resolution: samples arrive already resized to
    ``image_size x image_size`` and must leave at that same size.

    The harness calls the transform on one sample at a time as::

        out = transform(image=image, mask=mask)
        image, mask = out["image"], out["mask"]

    - ``image``: ``uint8`` array ``(H, W)``, the grayscale X-ray.
    - ``mask``: ``uint8`` array ``(H, W, 29)`` with values in {0, 1}, channel ``i``
      the class ``harness.classes.CLASSES[i]``.

    Both come back with the same shapes and dtypes. Geometric transforms must move
    image and mask together and keep the mask binary: resample masks with
    nearest-neighbour interpolation and fill new border pixels with 0.

    Example::

        @hookimpl
        def harness_augmentations():
            def vflip(*, image_size, p=0.5):
                return albumentations.Compose([albumentations.VerticalFlip(p=p)])
            return {"vflip": vflip}
    """


# -- after training ---------------------------------------------------------------------
#
# The two kinds below are applied to a trained model's outputs (``harness predict``,
# ``harness select``): they are no part of a training entry, its hash or its folder.


@hookspec
def harness_tta() -> Mapping[str, Factory]:
    """Offer test-time augmentations.

    Each factory is called as ``factory(**params)`` and returns a non-empty sequence of
    *transforms*, each a pair ``(apply, invert)`` of callables; the model runs once per
    transform (the sequence's length is the TTA's cost in forward passes):

    - ``apply(images) -> images``: float ``(N, C, H, W)`` model input in, float
      ``(N, C, H', W')`` out, ``H'`` and ``W'`` divisible by 32 (what a model takes);
    - ``invert(logits) -> logits``: the model's float ``(N, 29, H', W')`` logits for the
      transformed images, brought back to the input's frame: ``(N, 29, H, W)``, pixel for
      pixel where the untransformed image's logits would be.

    The harness averages the inverted logits of every transform (in float32) and scores
    that as it scores one model's logits. A single ``(identity, identity)`` pair is no
    test-time augmentation.

    Example::

        @hookimpl
        def harness_tta():
            def vflip():
                def flip(t):
                    return torch.flip(t, dims=(-2,))
                return [(lambda t: t, lambda t: t), (flip, flip)]
            return {"vflip": vflip}
    """


@hookspec
def harness_postprocessors() -> Mapping[str, Factory]:
    """Offer post-processing of predicted masks.

    Each factory is called as ``factory(**params)`` and returns a callable
    ``postprocess(masks) -> masks``:

    - ``masks``: a numpy ``bool`` array ``(29, H, W)``, channel ``i`` the class
      ``harness.classes.CLASSES[i]``, at the resolution the metric scores (thresholded
      predictions, the classes multi-label); the callable must not change it in place;
    - it returns a numpy array of the same shape, ``bool`` (or 0/1 integers).

    ``harness select`` keeps a post-processor only for the classes where it helps on the
    cross-validated folds (``docs/usage.md`` says the rule), so it may act on every class;
    the harness takes its output class by class.

    Example::

        @hookimpl
        def harness_postprocessors():
            def erode(*, iterations=1):
                def run(masks):
                    return scipy.ndimage.binary_erosion(
                        masks, structure=numpy.ones((1, 3, 3)), iterations=iterations)
                return run
            return {"erode": erode}
    """
