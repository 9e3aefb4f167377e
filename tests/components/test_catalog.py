"""The component catalog: every installed component conforms, and every promised name is there.

``test_component_conforms`` is parametrized over the registry (entry points included),
so a new plugin, built-in or installed, is checked without editing this file. The
rest pins what the catalog promises: the names, ``--encoder`` reaching every SMP
model, the documented behaviour of the components written here (attention gates,
adaptive class weights, PAN's padding, unused encoder stages dropped). How the checks
judge a broken component is ``tests/components/test_conformance.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.classes import NUM_CLASSES
from harness.components.conformance import Report, check_component
from harness.components.registry import KINDS, Registry
from harness.errors import HarnessError

# The attention U-Net registers from its own module; listing it here keeps it covered until
# its entry point is installed (the same module reached twice is one plugin).
REGISTRY = Registry.load(["harness_plugins.attention_unet"])

#: A light encoder for every model check (the SMP default, resnet34, is slower on 2 cores).
LIGHT_ENCODER = "resnet18"

PROMISED: dict[str, set[str]] = {
    "models": {
        "unetpp", "fpn", "deeplabv3plus", "attention-unet", "unet", "manet", "linknet",
        "pspnet", "pan", "upernet", "segformer",
    },
    "losses": {"bce", "dice", "combo", "focal", "jaccard", "tversky", "lovasz", "adaptive-dice"},
    "optimizers": {"sgd", "adam", "adamw", "lion", "radam", "muon"},
    "schedulers": {"flat", "cosine", "warmup-cosine", "poly", "onecycle"},
    "augmentations": {"none", "basic", "flip", "rotate", "clahe", "study"},
    "tta": {"none", "hflip", "multiscale"},
    "postprocessors": {"none", "largest-component", "fill-holes"},
}  # fmt: skip

#: Models of this project that wrap an SMP architecture (and so take any SMP encoder).
SMP_MODELS = sorted(PROMISED["models"])


@pytest.fixture(autouse=True)
def _single_thread():
    """One thread: small tensors gain nothing from more, and a busy CPU stalls them."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def failures(report: Report) -> str:
    return report.summary + "".join(f"\n  {c.name}: {c.detail}" for c in report.failures)


@pytest.mark.parametrize(
    ("kind", "name"),
    [pytest.param(c.kind, c.name, id=f"{c.kind}:{c.name}") for c in REGISTRY.all()],
)
def test_component_conforms(kind: str, name: str) -> None:
    encoder = LIGHT_ENCODER if kind == "models" else None
    report = check_component(REGISTRY, kind, name, encoder=encoder)
    assert report.ok, failures(report)


@pytest.mark.parametrize("kind", KINDS)
def test_every_promised_name_is_offered(kind: str) -> None:
    missing = PROMISED[kind] - set(REGISTRY.components(kind))
    assert not missing, f"{kind} missing: {sorted(missing)}"


# -- --encoder -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SMP_MODELS)
def test_every_smp_model_honours_the_encoder(name: str) -> None:
    # On the meta device: which encoder was built is told by its modules, no weights needed.
    with torch.device("meta"):
        model = REGISTRY.get("models", name).build(
            num_classes=NUM_CLASSES, in_channels=1, encoder="mobilenet_v2"
        )
    assert any(type(m).__name__ == "MobileNetV2Encoder" for m in model.modules())


def test_a_timm_encoder_runs_through_tu_names() -> None:
    report = check_component(REGISTRY, "models", "unet", encoder="tu-mobilenetv3_small_050")
    assert report.ok, failures(report)
    model = REGISTRY.get("models", "unet").build(
        num_classes=NUM_CLASSES, in_channels=1, encoder="tu-mobilenetv3_small_050"
    )
    assert type(model.encoder).__name__ == "TimmUniversalEncoder"


def test_segformer_takes_the_mix_transformer() -> None:
    report = check_component(REGISTRY, "models", "segformer", encoder="mit_b0")
    assert report.ok, failures(report)


def test_an_architecture_refusing_an_encoder_is_a_one_line_error() -> None:
    with pytest.raises(HarnessError, match="model 'unetpp' .* rejected its parameters"):
        REGISTRY.get("models", "unetpp").build(num_classes=2, in_channels=1, encoder="mit_b0")


# -- the components written here -------------------------------------------------------------


def test_attention_unet_gates_every_skip() -> None:
    from harness_plugins.attention_unet import AttentionGate

    model = REGISTRY.get("models", "attention-unet").build(
        num_classes=NUM_CLASSES, in_channels=1, encoder=LIGHT_ENCODER
    )
    gates = [m for m in model.modules() if isinstance(m, AttentionGate)]
    # ResNet-18's skips at 1/16, 1/8, 1/4 and 1/2, each gated by the decoder one level down.
    channels = [(g.theta.in_channels, g.phi.in_channels) for g in gates]
    assert channels == [(256, 512), (128, 256), (64, 128), (64, 64)]
    skip, coarse = torch.randn(2, 64, 16, 16), torch.randn(2, 128, 8, 8)
    with torch.no_grad():
        alpha = gates[2].attention(skip, coarse)
    assert alpha.shape == (2, 1, 16, 16)
    assert float(alpha.min()) >= 0 and float(alpha.max()) <= 1
    assert gates[2](skip, coarse).shape == skip.shape


def test_pan_pads_small_inputs_and_crops_back() -> None:
    model = REGISTRY.get("models", "pan").build(num_classes=3, in_channels=1, encoder="resnet18")
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 64, 96)).shape == (1, 3, 64, 96)
        assert model(torch.randn(1, 1, 128, 128)).shape == (1, 3, 128, 128)


def test_pspnet_drops_the_encoder_stages_it_never_uses() -> None:
    import segmentation_models_pytorch as smp

    ours = REGISTRY.get("models", "pspnet").build(num_classes=3, in_channels=1, encoder="resnet18")
    theirs = smp.PSPNet("resnet18", encoder_weights=None, in_channels=1, classes=3)

    def count(model: torch.nn.Module) -> int:
        return sum(p.numel() for p in model.parameters())

    assert count(ours) < count(theirs) / 5  # layer3 and layer4 of a ResNet-18 are most of it
    x = torch.randn(2, 1, 64, 64)
    theirs.load_state_dict(ours.state_dict(), strict=False)
    ours.eval()
    theirs.eval()
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x))  # the same network, minus dead weight


def test_adaptive_dice_weighs_the_class_it_gets_wrong() -> None:
    loss = REGISTRY.get("losses", "adaptive-dice").build(momentum=0.5)
    target = torch.zeros(2, 3, 8, 8)
    target[:, 0, :4] = 1  # class 0: predicted right
    target[:, 1, 4:] = 1  # class 1: predicted wrong
    logits = torch.full_like(target, -8.0)
    logits[:, 0, :4] = 8.0
    logits[:, 1, :4] = 8.0
    for _ in range(5):
        loss(logits.clone().requires_grad_(True), target)
    weights = loss.weights()
    # Running losses after 5 batches at momentum 0.5: ~0.03, 1 and 1 (class 2 unseen).
    assert weights[0] < 0.1 and weights[1] > 1.4
    assert weights[2] == pytest.approx(weights.max())  # class 2 never seen: still "wrong" (1)
    assert float(weights.mean()) == pytest.approx(1.0)
    # Under no_grad (e.g. evaluation) the weights hold still.
    with torch.no_grad():
        loss(logits, target)
    assert torch.equal(loss.weights(), weights)


def test_adaptive_dice_with_power_zero_is_dice() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, NUM_CLASSES, 16, 16, generator=generator)
    target = (torch.rand(2, NUM_CLASSES, 16, 16, generator=generator) > 0.6).float()
    adaptive = REGISTRY.get("losses", "adaptive-dice").build(power=0.0)
    dice = REGISTRY.get("losses", "dice").build()
    for _ in range(3):
        assert adaptive(logits, target).item() == pytest.approx(dice(logits, target).item())


def test_muon_orthogonalises_kernels_and_matrices_and_adamw_does_the_rest() -> None:
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1),  # a 1-channel stem: degenerate, AdamW
        torch.nn.Conv2d(16, 32, 3, padding=1),  # flattened to (32, 144): Muon
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(32, 32),  # Muon
    )
    optimizer = REGISTRY.get("optimizers", "muon").build(
        net.parameters(), lr=1e-3, weight_decay=1e-4
    )
    net(torch.randn(3, 1, 8, 8)).sum().backward()
    optimizer.step()
    routed = {name for name, p in net.named_parameters() if optimizer.state[p]["use_muon"]}
    assert routed == {"1.weight", "4.weight"}


@pytest.mark.parametrize(
    ("ns_dtype", "expected"), [("auto", torch.float32), ("bfloat16", torch.bfloat16)]
)
def test_muon_iterates_newton_schulz_in_float32_on_the_cpu(
    monkeypatch: pytest.MonkeyPatch, ns_dtype: str, expected: torch.dtype
) -> None:
    """timm iterates in bfloat16, emulated (70x slower) on CPUs without bfloat16 units."""
    import timm.optim.muon as timm_muon

    seen: list[torch.dtype] = []
    original = timm_muon.zeropower_via_newtonschulz

    def spy(*args: object, dtype: torch.dtype = torch.bfloat16, **kwargs: object) -> torch.Tensor:
        seen.append(dtype)
        return original(*args, dtype=dtype, **kwargs)

    monkeypatch.setattr(timm_muon, "zeropower_via_newtonschulz", spy)
    net = torch.nn.Linear(32, 32)
    optimizer = REGISTRY.get("optimizers", "muon").build(
        net.parameters(), lr=1e-3, weight_decay=1e-4, ns_dtype=ns_dtype
    )
    net(torch.randn(3, 32)).sum().backward()
    optimizer.step()
    assert seen == [expected]
    assert timm_muon.zeropower_via_newtonschulz is spy  # restored after the step
    with pytest.raises(HarnessError, match="ns_dtype"):
        REGISTRY.get("optimizers", "muon").build(
            net.parameters(), lr=1e-3, weight_decay=1e-4, ns_dtype="float64"
        )


def test_lion_scales_the_protocol_lr_within_the_entry() -> None:
    weight = torch.nn.Parameter(torch.zeros(2))
    optimizer = REGISTRY.get("optimizers", "lion").build(
        [weight], lr=1e-3, weight_decay=0.0, lr_scale=0.3
    )
    assert optimizer.param_groups[0]["lr"] == pytest.approx(3e-4)


def rates(name: str, total_steps: int, warmup_steps: int, **params: object) -> list[float]:
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=1.0, momentum=0.9)
    scheduler = REGISTRY.get("schedulers", name).build(
        optimizer, total_steps=total_steps, warmup_steps=warmup_steps, **params
    )
    out = []
    for _ in range(total_steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def test_poly_decays_polynomially() -> None:
    assert rates("poly", 10, 2) == pytest.approx([(1 - k / 10) ** 0.9 for k in range(10)])


def test_onecycle_peaks_at_the_protocol_lr_after_the_warmup() -> None:
    lrs = rates("onecycle", 20, 5)
    assert max(lrs) == pytest.approx(1.0) and lrs.index(max(lrs)) == 4
    assert lrs[0] == pytest.approx(1 / 25) and lrs[-1] < 1e-3


def test_study_recipe_changes_contrast_and_geometry() -> None:
    transform = REGISTRY.get("augmentations", "study").build(image_size=64)
    transform.set_random_seed(0)
    ramp = np.tile(np.linspace(40, 200, 64, dtype=np.uint8), (64, 1))
    mask = np.zeros((64, 64, NUM_CLASSES), np.uint8)
    mask[10:30, 5:20, 0] = 1
    outs = [transform(image=ramp, mask=mask) for _ in range(20)]
    assert any(not np.array_equal(o["mask"], mask) for o in outs)  # flips and rotations
    assert any(
        np.array_equal(o["mask"], mask) and not np.array_equal(o["image"], ramp) for o in outs
    )


def test_fill_holes_is_scipys_and_largest_component_keeps_the_largest_piece() -> None:
    from scipy.ndimage import binary_fill_holes

    rng = np.random.default_rng(0)
    fill = REGISTRY.get("postprocessors", "fill-holes").factory()
    for density in (0.3, 0.6):
        masks = rng.random((29, 40, 37)) < density
        assert np.array_equal(fill(masks), np.stack([binary_fill_holes(m) for m in masks]))
    masks = np.zeros((29, 20, 20), bool)
    masks[0, 2:8, 2:8] = True  # 36 pixels
    masks[0, 12:15, 12:15] = True  # 9: dropped
    masks[1, 0, 0] = True  # one piece: kept
    out = REGISTRY.get("postprocessors", "largest-component").factory()(masks)
    assert out[0].sum() == 36 and out[0, 2, 2] and not out[0, 12, 12]
    assert np.array_equal(out[1:], masks[1:])
