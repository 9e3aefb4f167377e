"""The plugin contract of ``harness.components.hookspecs``, checked for every installed component.

Each test is parametrized over the registry (a new plugin is covered for free), so these
check what each hook promises, not how the built-ins happen to be written. A few tests at
the end pin the built-ins' own documented behaviour (the warm-up shape, the flip).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harness.classes import NUM_CLASSES
from harness.components.registry import Registered, Registry
from harness.errors import HarnessError

REGISTRY = Registry.load()


def each(kind: str) -> list:
    return [pytest.param(c, id=c.name) for c in REGISTRY.components(kind).values()]


@pytest.fixture(autouse=True)
def _deterministic_single_thread():
    """Fixed seeds, one thread: tiny tensors gain nothing from more, and a busy CPU stalls them."""
    torch.manual_seed(0)
    np.random.seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- models --------------------------------------------------------------------------------


@pytest.mark.parametrize("component", each("models"))
def test_model_gives_logits_and_gradients(component: Registered) -> None:
    model = component.build(num_classes=NUM_CLASSES, in_channels=1, encoder="resnet18")
    assert isinstance(model, torch.nn.Module)
    model.train()
    logits = model(torch.randn(2, 1, 64, 64))
    assert logits.shape == (2, NUM_CLASSES, 64, 64)
    assert logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    logits.square().mean().backward()
    params = [p for p in model.parameters() if p.requires_grad]
    for p in (params[0], params[-1]):  # the gradient reaches the input end and the output end
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


@pytest.mark.parametrize("component", each("models"))
def test_model_has_a_default_encoder(component: Registered) -> None:
    # On the meta device: shapes are checked without paying for the default encoder's weights.
    with torch.device("meta"), torch.no_grad():
        model = component.build(num_classes=3, in_channels=1, encoder=None).eval()
        assert model(torch.randn(1, 1, 32, 32)).shape == (1, 3, 32, 32)


def test_pretrained_weights_that_cannot_load_fail_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    import segmentation_models_pytorch.encoders as encoders

    def offline(*args: object, **kwargs: object) -> str:
        raise OSError("no internet")

    monkeypatch.setattr(encoders, "hf_hub_download", offline)
    unet = REGISTRY.get("models", "unet")
    with pytest.raises(HarnessError) as info:
        unet.build(num_classes=2, in_channels=1, encoder="resnet18", encoder_weights="imagenet")
    assert str(info.value).startswith(
        "pretrained weights 'imagenet' for encoder 'resnet18' could not be loaded "
        "(OSError: no internet)"
    )
    assert 'encoder_weights = "none"' in str(info.value)
    # "none" (as a protocol spells it) means random initialisation: nothing is fetched.
    unet.build(num_classes=2, in_channels=1, encoder="resnet18", encoder_weights="none")


def test_model_parameters_are_passed_to_smp() -> None:
    unet = REGISTRY.get("models", "unet")
    model = unet.build(
        num_classes=2, in_channels=1, encoder="resnet18", decoder_channels=(32, 16, 8, 8, 4)
    )
    assert model.segmentation_head[0].in_channels == 4
    with pytest.raises(HarnessError, match="rejected its parameters"):
        unet.build(num_classes=2, in_channels=1, encoder="resnet18", activation="sigmoid")
    with pytest.raises(HarnessError, match="rejected its parameters"):
        unet.build(num_classes=2, in_channels=1, encoder="no-such-encoder")


# -- losses --------------------------------------------------------------------------------


def fixed_batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    target = (torch.rand(2, NUM_CLASSES, 16, 16, generator=generator) > 0.7).float()
    target[:, -3:] = 0  # some classes absent, as in real crops
    logits = 0.1 * torch.randn(2, NUM_CLASSES, 16, 16, generator=generator)
    return logits, target


@pytest.mark.parametrize("component", each("losses"))
def test_loss_is_a_finite_scalar_that_training_decreases(component: Registered) -> None:
    loss_fn = component.build()
    start, target = fixed_batch()
    logits = start.clone().requires_grad_(True)
    first = loss_fn(logits, target)
    assert isinstance(first, torch.Tensor) and first.ndim == 0
    assert torch.isfinite(first)
    optimizer = torch.optim.Adam([logits], lr=0.05)
    for _ in range(10):
        optimizer.zero_grad()
        loss = loss_fn(logits, target)
        loss.backward()
        optimizer.step()
    assert loss_fn(logits, target).item() < first.item()


# -- optimizers ----------------------------------------------------------------------------


@pytest.mark.parametrize("component", each("optimizers"))
def test_optimizer_minimises_and_honours_lr_and_weight_decay(component: Registered) -> None:
    weight = torch.nn.Parameter(torch.tensor([3.0, -2.0]))
    optimizer = component.build([weight], lr=0.05, weight_decay=0.01)
    assert isinstance(optimizer, torch.optim.Optimizer)
    group = optimizer.param_groups[0]
    assert group["lr"] == 0.05 and group["weight_decay"] == 0.01
    start = weight.detach().square().sum().item()
    for _ in range(20):
        optimizer.zero_grad()
        weight.square().sum().backward()
        optimizer.step()
    assert weight.detach().square().sum().item() < start


# -- schedulers ----------------------------------------------------------------------------


def learning_rates(component: Registered, total_steps: int, warmup_steps: int) -> list[float]:
    """The learning rate used at each optimizer step, with the scheduler stepped after each."""
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    scheduler = component.build(optimizer, total_steps=total_steps, warmup_steps=warmup_steps)
    rates = []
    for _ in range(total_steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    state = scheduler.state_dict()  # checkpointable
    scheduler.load_state_dict(state)
    return rates


@pytest.mark.parametrize("warmup_steps", [0, 3])
@pytest.mark.parametrize("component", each("schedulers"))
def test_scheduler_steps_within_the_base_rate(component: Registered, warmup_steps: int) -> None:
    rates = learning_rates(component, total_steps=12, warmup_steps=warmup_steps)
    assert all(math.isfinite(r) and 0.0 <= r <= 1.0 + 1e-9 for r in rates)
    assert max(rates) > 0


def test_warmup_cosine_shape() -> None:
    component = REGISTRY.get("schedulers", "warmup-cosine")
    total, warmup = 12, 3
    rates = learning_rates(component, total_steps=total, warmup_steps=warmup)
    assert rates[:warmup] == pytest.approx([(k + 1) / (warmup + 1) for k in range(warmup)])
    cosine = [0.5 * (1 + math.cos(math.pi * k / (total - warmup))) for k in range(total - warmup)]
    assert rates[warmup:] == pytest.approx(cosine)
    assert rates[warmup] == pytest.approx(1.0)
    without_warmup = learning_rates(component, total_steps=total, warmup_steps=0)
    assert without_warmup == pytest.approx(
        [0.5 * (1 + math.cos(math.pi * k / total)) for k in range(total)]
    )


def test_flat_and_cosine_shapes() -> None:
    flat = learning_rates(REGISTRY.get("schedulers", "flat"), total_steps=5, warmup_steps=2)
    assert flat == [1.0] * 5
    cosine = learning_rates(REGISTRY.get("schedulers", "cosine"), total_steps=5, warmup_steps=2)
    assert cosine[0] == 1.0 and all(a > b for a, b in zip(cosine, cosine[1:], strict=False))


# -- augmentations -------------------------------------------------------------------------


def shapes_sample(size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Three asymmetric boxes, one per mask channel; the image is bright exactly where any is."""
    mask = np.zeros((size, size, NUM_CLASSES), np.uint8)
    mask[8:30, 6:20, 0] = 1
    mask[36:56, 30:58, 1] = 1
    mask[20:44, 24:34, 2] = 1  # overlaps the others, like carpal bones
    image = np.where(mask.any(axis=2), 255, 0).astype(np.uint8)
    return image, mask


@pytest.mark.parametrize("component", each("augmentations"))
def test_augmentation_keeps_masks_binary_and_aligned(component: Registered) -> None:
    transform = component.build(image_size=64)
    image, mask = shapes_sample()
    for _ in range(12):
        out = transform(image=image.copy(), mask=mask.copy())
        new_image, new_mask = out["image"], out["mask"]
        assert new_image.shape == image.shape and new_image.dtype == np.uint8
        assert new_mask.shape == mask.shape and new_mask.dtype == np.uint8
        assert set(np.unique(new_mask)) <= {0, 1}
        assert not new_mask[..., 3:].any()  # empty classes stay empty
        bright = new_image > 127
        labelled = new_mask.any(axis=2)
        iou = (bright & labelled).sum() / (bright | labelled).sum()
        assert iou > 0.9, f"mask moved away from the image (IoU {iou:.2f})"


def test_basic_flip_moves_image_and_mask_together() -> None:
    transform = REGISTRY.get("augmentations", "basic").build(
        image_size=64, flip_p=1.0, rotate_p=0.0
    )
    image, mask = shapes_sample()
    out = transform(image=image, mask=mask)
    assert np.array_equal(out["image"], image[:, ::-1])
    assert np.array_equal(out["mask"], mask[:, ::-1])


def test_basic_rotates_sometimes() -> None:
    transform = REGISTRY.get("augmentations", "basic").build(image_size=64, flip_p=0.0)
    image, mask = shapes_sample()
    changed = [
        not np.array_equal(transform(image=image, mask=mask)["mask"], mask) for _ in range(20)
    ]
    assert any(changed) and not all(changed)
