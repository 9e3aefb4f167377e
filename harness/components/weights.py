"""Pretrained encoder weights: the protocol's ``encoder_weights``, resolved and loaded.

``encoder_weights`` is one of three things:

- ``none``: random initialisation; nothing is read or fetched.
- a name the encoder library knows for the encoder (``imagenet``, ``ssl``, ...): for
  segmentation_models_pytorch's own encoders the file it would download
  (``model.safetensors`` of its Hugging Face repository, at its pinned revision) is
  looked up in the Hugging Face cache first; only when it is missing there, and the hub
  answers within seconds, is it downloaded. Offline and not cached is one line naming
  the encoder, the weights and where to put the file, before any data work. For other
  encoders (``tu-`` timm encoders, a plugin's own) the name goes to the model plugin as
  ``encoder_weights``, as before.
- a local file, ``.pth``/``.pt``/``.bin`` (read with ``torch.load(weights_only=True)``:
  no code runs) or ``.safetensors``, as the weights are published (e.g. torchvision's
  ImageNet ResNet checkpoint).

A file, cached or local, is loaded here into the model's encoder (its submodule named
``encoder``), strictly: the classifier head's keys (``fc.*``, ``classifier.*``, ...) are
ignored, as the library ignores them; any other missing or unexpected key, or a shape
that does not fit, is one line naming the file and the first mismatch. The weights are
for three-channel RGB input; the first convolution is adapted to ``in_channels`` with
segmentation_models_pytorch's own ``patch_first_conv``: for a grey X-ray
(``in_channels = 1``) its three filters are summed into one.

The record names what a run started from (``EncoderWeights.to_record``): the name, or
the path and SHA-256 of the file.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

from harness.errors import HarnessError, one_line

NONE = "none"
#: The file types a local weights file may have.
TORCH_SUFFIXES = (".pth", ".pt", ".bin")
SAFETENSORS_SUFFIX = ".safetensors"
#: Keys of an ImageNet classifier's head, which an encoder does not have (SMP drops them).
HEAD_PREFIXES = ("fc.", "classifier.", "last_linear.", "head.", "_fc.", "linear.")
#: Seconds to wait for the Hugging Face hub before calling the machine offline.
PROBE_TIMEOUT_S = 3.0
#: The file segmentation_models_pytorch downloads for a named weight.
HUB_FILENAME = "model.safetensors"


@dataclass(frozen=True)
class EncoderWeights:
    """What an encoder starts from: nothing, a file (local or cached), or the plugin's name."""

    spec: str  # as the protocol spells it
    encoder: str
    path: Path | None = None  # the file loaded here
    sha256: str | None = None
    repo: str | None = None  # for a named weight: "<hub repo>@<revision>"

    @property
    def loaded_here(self) -> bool:
        return self.path is not None

    @property
    def by_plugin(self) -> bool:
        """A name this module does not resolve: the model plugin gets it as ``encoder_weights``."""
        return self.spec != NONE and self.path is None

    def to_record(self) -> dict[str, Any]:
        """The name as the protocol spells it, and for a file its path and SHA-256
        (``{"name": "imagenet"}``, ``{"name": "r18.pth", "path": "/abs/r18.pth", "sha256": ...}``;
        a library's cached download adds ``"source": "<hub repo>@<revision>"``)."""
        if self.path is None:
            return {"name": self.spec}
        out = {"name": self.spec, "path": str(self.path), "sha256": self.sha256}
        return {**out, "source": self.repo} if self.repo is not None else out


def is_file_spec(spec: str) -> bool:
    """Whether ``encoder_weights`` names a file (a known suffix, a path separator, or a file)."""
    suffix = Path(spec).suffix.lower()
    return (
        suffix in (*TORCH_SUFFIXES, SAFETENSORS_SUFFIX)
        or "/" in spec
        or os.sep in spec
        or Path(spec).is_file()
    )


def resolve_weights(spec: str, encoder: str) -> EncoderWeights:
    """``encoder_weights`` for ``encoder``: checked, and a file found, without loading it."""
    spec = str(spec).strip()
    if spec.lower() in (NONE, ""):
        return EncoderWeights(NONE, encoder)
    if is_file_spec(spec):
        path = _local_file(spec)
        return EncoderWeights(spec, encoder, path=path, sha256=file_sha256(path))
    settings = _library_settings(encoder)
    if settings is None:
        return EncoderWeights(spec, encoder)  # the plugin's (or timm's) to resolve
    if spec not in settings:
        raise HarnessError(
            f"encoder_weights {spec!r}: unknown for encoder {encoder!r}; it has "
            f"{', '.join(sorted(settings))}, or give none or a .pth/.safetensors file"
        )
    repo, revision = settings[spec]["repo_id"], settings[spec]["revision"]
    path = _hub_file(repo, revision, encoder, spec)
    return EncoderWeights(
        spec, encoder, path=path, sha256=file_sha256(path), repo=f"{repo}@{revision}"
    )


def _local_file(spec: str) -> Path:
    path = Path(spec).expanduser()
    suffixes = ", ".join((*TORCH_SUFFIXES, SAFETENSORS_SUFFIX))
    if path.suffix.lower() not in (*TORCH_SUFFIXES, SAFETENSORS_SUFFIX):
        raise HarnessError(
            f"encoder_weights {spec}: not a weights file ({suffixes}); give such a file, "
            "a weights name such as imagenet, or none"
        )
    if not path.is_file():
        raise HarnessError(
            f"encoder_weights {spec}: file not found; give the path to a {suffixes} file, "
            "a weights name such as imagenet, or none"
        )
    return path.resolve()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file in hex (remembered while its size and modification time stay)."""
    stat = path.stat()
    return _sha256(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _library_settings(encoder: str) -> dict[str, Any] | None:
    """segmentation_models_pytorch's named weights for ``encoder``; None for encoders it
    does not define itself (``tu-`` timm encoders, a plugin's own)."""
    from segmentation_models_pytorch.encoders import encoders

    if encoder not in encoders:
        return None
    return dict(encoders[encoder]["pretrained_settings"])


def _hub_file(repo: str, revision: str, encoder: str, spec: str) -> Path:
    """The library's weights file from the Hugging Face cache, or downloaded when online."""
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache

    cached = try_to_load_from_cache(repo, HUB_FILENAME, revision=revision)
    if isinstance(cached, str):
        return Path(cached)
    offline = constants.HF_HUB_OFFLINE or not _reachable(constants.ENDPOINT)
    where = (
        f"encoder {encoder!r} weights {spec!r} are not in the Hugging Face cache "
        f"({constants.HF_HUB_CACHE})"
    )
    fix = (
        f"on a machine with internet run `hf download {repo} {HUB_FILENAME} --revision "
        f"{revision}` and copy that cache folder here, or download the encoder's weights "
        "file (e.g. torchvision's ImageNet checkpoint) and --set encoder_weights=PATH"
    )
    if offline:
        raise HarnessError(f"{where} and the hub cannot be reached; {fix}")
    try:
        return Path(hf_hub_download(repo, HUB_FILENAME, revision=revision))
    except Exception as exc:  # the hub's many network and HTTP errors
        raise HarnessError(f"{where} and could not be downloaded ({_reason(exc)}); {fix}") from None


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {one_line(exc, 160)}"


def _reachable(endpoint: str) -> bool:
    """Whether the hub's host answers a TCP connection within ``PROBE_TIMEOUT_S``."""
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


# -- loading ------------------------------------------------------------------------------------


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A weights file's tensors by name, without running code; a bad file is one line."""
    try:
        if path.suffix.lower() == SAFETENSORS_SUFFIX:
            from safetensors.torch import load_file

            state: Any = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch, pickle and safetensors raise many kinds
        raise HarnessError(
            f"encoder_weights {path}: not a readable weights file ({_reason(exc)})"
        ) from None
    if isinstance(state, Mapping) and set(state) in ({"state_dict"}, {"model"}):
        state = next(iter(state.values()))  # a training checkpoint around the weights
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise HarnessError(
            f"encoder_weights {path}: not a state dict (a mapping of names to tensors)"
        )
    return dict(state)


def encoder_of(model: torch.nn.Module) -> torch.nn.Module | None:
    """The model's encoder: its first submodule named ``encoder`` (SMP's name for it)."""
    for name, module in model.named_modules():
        if name.rpartition(".")[2] == "encoder":
            return module
    return None


def load_encoder_weights(
    model: torch.nn.Module, weights: EncoderWeights, in_channels: int, model_name: str
) -> None:
    """Load ``weights``' file into ``model``'s encoder, strictly (see the module's text)."""
    if weights.path is None:
        return
    encoder = encoder_of(model)
    if encoder is None:
        raise HarnessError(
            f"model {model_name!r} has no submodule named 'encoder' to load encoder_weights "
            f"{weights.spec} into; set encoder_weights = none"
        )
    state = fitted_state(read_state_dict(weights.path), encoder.state_dict(), in_channels)
    if isinstance(state, str):
        raise HarnessError(
            f"encoder_weights {weights.path}: does not fit encoder {weights.encoder!r} "
            f"({state}); give weights saved from a {weights.encoder}, or none"
        )
    with torch.no_grad():
        torch.nn.Module.load_state_dict(encoder, state, strict=True)


def fitted_state(
    state: dict[str, torch.Tensor], own: Mapping[str, torch.Tensor], in_channels: int
) -> dict[str, torch.Tensor] | str:
    """``state`` shaped for a module whose state dict is ``own``, or the first mismatch."""
    state = {k: v for k, v in state.items() if k in own or not k.startswith(HEAD_PREFIXES)}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    for problem, keys in (("missing", missing), ("unexpected", unexpected)):
        if keys:
            more = f" and {len(keys) - 1} more" if len(keys) > 1 else ""
            return f"{problem} key {keys[0]!r}{more}"
    fitted = {}
    for key, value in state.items():
        want = tuple(own[key].shape)
        if tuple(value.shape) != want and _first_conv(value, want, in_channels):
            value = _patched_first_conv(value, in_channels)
        if tuple(value.shape) != want:
            return f"{key!r} has shape {tuple(value.shape)} in the file, {want} in the encoder"
        fitted[key] = value
    return fitted


def _first_conv(value: torch.Tensor, want: tuple[int, ...], in_channels: int) -> bool:
    """An RGB convolution's weight where the encoder's takes ``in_channels``."""
    return (
        value.ndim == 4
        and value.shape[1] == 3
        and want == (value.shape[0], in_channels, *value.shape[2:])
    )


def _patched_first_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """``weight`` for ``in_channels`` inputs, exactly as SMP adapts a pretrained first conv."""
    from segmentation_models_pytorch.encoders._utils import patch_first_conv

    out_channels, _, *kernel = weight.shape
    conv = torch.nn.Conv2d(3, out_channels, tuple(kernel), bias=False, device="meta")
    conv.weight = torch.nn.Parameter(weight.detach().clone(), requires_grad=False)
    patch_first_conv(conv, new_in_channels=in_channels, default_in_channels=3, pretrained=True)
    return conv.weight.detach()
