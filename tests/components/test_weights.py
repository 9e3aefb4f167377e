"""Pretrained encoder weights: a local file (torchvision's layout), a cached library name,
or offline and not cached; loaded strictly, adapted to one channel as SMP does, recorded."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from harness.components import weights as W
from harness.components.registry import Registry
from harness.errors import HarnessError

torchvision = pytest.importorskip("torchvision")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """torchvision's resnet18 and resnet34 state dicts saved as published (same keys as the
    ImageNet checkpoints, fc head included), as .pth and .safetensors."""
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(7)
    r18 = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(r18, folder / "resnet18.pth")
    save_file({k: v.contiguous() for k, v in r18.items()}, folder / "resnet18.safetensors")
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), folder / "resnet34.pth")
    return {p.name: p for p in folder.iterdir()}


def unet(in_channels: int = 1) -> torch.nn.Module:
    model = Registry.load().get("models", "unet")
    return model.build(num_classes=29, in_channels=in_channels, encoder="resnet18")


@pytest.mark.parametrize("name", ["resnet18.pth", "resnet18.safetensors"])
def test_a_file_loads_exactly_as_smp_loads_pretrained_weights(
    files: dict[str, Path], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import segmentation_models_pytorch as smp
    import segmentation_models_pytorch.encoders as encoders

    weights = W.resolve_weights(str(files[name]), "resnet18")
    model = unet()
    W.load_encoder_weights(model, weights, 1, "unet")
    # SMP's own pretrained path, its download answered with the same tensors.
    monkeypatch.setattr(encoders, "hf_hub_download", lambda *a, **k: str(files[name]))
    monkeypatch.setattr(encoders, "load_file", lambda *a, **k: W.read_state_dict(files[name]))
    theirs = smp.Unet("resnet18", encoder_weights="imagenet", in_channels=1, classes=29)
    mine, ref = model.encoder.state_dict(), theirs.encoder.state_dict()
    assert list(mine) == list(ref)
    assert all(torch.equal(mine[k], ref[k]) for k in ref)
    # The grey input's filters are the RGB filters summed (SMP's patch_first_conv).
    rgb = W.read_state_dict(files[name])["conv1.weight"]
    assert torch.equal(mine["conv1.weight"], rgb.sum(1, keepdim=True))
    assert not torch.equal(
        mine["layer4.1.conv2.weight"], unet().encoder.state_dict()["layer4.1.conv2.weight"]
    )


def test_three_channel_input_takes_the_file_unchanged(files: dict[str, Path]) -> None:
    model = unet(in_channels=3)
    W.load_encoder_weights(
        model, W.resolve_weights(str(files["resnet18.pth"]), "resnet18"), 3, "unet"
    )
    state = torch.load(files["resnet18.pth"], weights_only=True)
    assert torch.equal(model.encoder.conv1.weight, state["conv1.weight"])


def test_a_file_of_another_encoder_names_the_file_and_first_mismatch(
    files: dict[str, Path],
) -> None:
    weights = W.resolve_weights(str(files["resnet34.pth"]), "resnet18")
    with pytest.raises(HarnessError) as info:
        W.load_encoder_weights(unet(), weights, 1, "unet")
    message = str(info.value)
    assert str(files["resnet34.pth"]) in message and "\n" not in message
    assert "unexpected key 'layer1.2.conv1.weight' and 95 more" in message


def test_missing_keys_and_wrong_shapes_are_named(files: dict[str, Path], tmp_path: Path) -> None:
    state = torch.load(files["resnet18.pth"], weights_only=True)
    del state["layer2.0.bn1.bias"]
    torch.save(state, tmp_path / "missing.pth")
    with pytest.raises(HarnessError, match=r"missing key 'layer2.0.bn1.bias'\)"):
        W.load_encoder_weights(
            unet(), W.resolve_weights(str(tmp_path / "missing.pth"), "resnet18"), 1, "unet"
        )
    state = torch.load(files["resnet18.pth"], weights_only=True)
    state["layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    torch.save(state, tmp_path / "shape.pth")
    with pytest.raises(HarnessError, match=r"'layer1.0.conv1.weight' has shape \(64, 64, 1, 1\)"):
        W.load_encoder_weights(
            unet(), W.resolve_weights(str(tmp_path / "shape.pth"), "resnet18"), 1, "unet"
        )


def test_bad_files_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="file not found"):
        W.resolve_weights(str(tmp_path / "nope.pth"), "resnet18")
    (tmp_path / "w.txt").write_text("x")
    with pytest.raises(HarnessError, match="not a weights file"):
        W.resolve_weights(str(tmp_path / "w.txt"), "resnet18")
    (tmp_path / "junk.pth").write_bytes(b"\x00" * 32)
    with pytest.raises(HarnessError, match="not a readable weights file"):
        W.read_state_dict(tmp_path / "junk.pth")
    torch.save({"conv1.weight": torch.zeros(1), "note": "text"}, tmp_path / "mixed.pth")
    with pytest.raises(HarnessError, match="not a state dict"):
        W.read_state_dict(tmp_path / "mixed.pth")

    class Evil:  # a pickle that would run code: torch.load(weights_only=True) refuses it
        def __reduce__(self) -> tuple:
            return (print, ("ran",))

    torch.save({"conv1.weight": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(HarnessError, match="not a readable weights file"):
        W.read_state_dict(tmp_path / "evil.pth")


def test_names_none_and_unknown_names() -> None:
    assert W.resolve_weights("none", "resnet18").to_record() == {"name": "none"}
    assert not W.resolve_weights("none", "resnet18").by_plugin
    with pytest.raises(HarnessError, match="unknown for encoder 'resnet18'; it has imagenet"):
        W.resolve_weights("imagenett", "resnet18")
    # An encoder SMP does not define itself (timm's): the name is the plugin's, as before.
    assert W.resolve_weights("imagenet", "tu-resnet10t").by_plugin


REVISION = "3f2325ff978283d47aa6a1d6878ca20565622683"  # SMP 0.6's pin of resnet18.imagenet


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache, and a hub that cannot be reached."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(W, "_reachable", lambda endpoint: False)
    return cache


def test_a_cached_library_weight_is_found_and_recorded(
    hub_cache: Path, files: dict[str, Path]
) -> None:
    from segmentation_models_pytorch.encoders import encoders

    assert encoders["resnet18"]["pretrained_settings"]["imagenet"]["revision"] == REVISION
    snapshot = hub_cache / "models--smp-hub--resnet18.imagenet" / "snapshots" / REVISION
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").write_bytes(files["resnet18.safetensors"].read_bytes())
    weights = W.resolve_weights("imagenet", "resnet18")
    assert weights.path == snapshot / "model.safetensors"
    record = weights.to_record()
    assert record["name"] == "imagenet"
    assert record["source"] == f"smp-hub/resnet18.imagenet@{REVISION}"
    assert record["sha256"] == W.file_sha256(files["resnet18.safetensors"])
    model = unet()
    W.load_encoder_weights(model, weights, 1, "unet")
    assert torch.equal(
        model.encoder.layer3[0].conv1.weight,
        W.read_state_dict(snapshot / "model.safetensors")["layer3.0.conv1.weight"],
    )


def test_offline_and_not_cached_is_one_line_within_seconds(
    cli, hub_cache: Path, tmp_path: Path
) -> None:
    start = time.perf_counter()
    result = cli(
        "run", "--model", "unet", "--loss", "dice", "--protocol", "tiny",
        "--set", "encoder_weights=imagenet", "--runs-dir", tmp_path / "runs",
    )  # fmt: skip
    took = time.perf_counter() - start
    assert result.code == 2 and took < 10, (took, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: error: "), result.err
    for needle in ("'resnet18'", "'imagenet'", str(hub_cache), "--set encoder_weights=PATH"):
        assert needle in lines[0]
    assert not (tmp_path / "runs").exists()


def test_a_tiny_run_from_a_file_records_its_sha256(
    cli, files: dict[str, Path], tmp_path: Path
) -> None:
    common = ("--model", "unet", "--loss", "dice", "--protocol", "tiny", "--encoder", "resnet18")
    runs = tmp_path / "runs"
    result = cli(
        "run", *common, "--set", "epochs=1", "--set", f"encoder_weights={files['resnet18.pth']}",
        "--runs-dir", runs, "--leaderboards-dir", tmp_path / "boards",
    )  # fmt: skip
    assert result.code == 0, result.err[-2000:]
    (record,) = runs.rglob("record.json")
    recorded = json.loads(record.read_text())["entry"]["encoder_weights"]
    assert recorded["path"] == str(files["resnet18.pth"])
    assert recorded["sha256"] == W.file_sha256(files["resnet18.pth"])

    other = cli(
        "run", *common, "--set", f"encoder_weights={files['resnet34.pth']}",
        "--runs-dir", tmp_path / "other",
    )  # fmt: skip
    assert other.code == 2 and str(files["resnet34.pth"]) in other.err
    assert "Traceback" not in other.err and not (tmp_path / "other").exists()
