"""The attention gates and the U-Net that runs them (``harness_plugins.attention_unet``
describes them and registers the model; this module, which needs torch and SMP, is
imported when the model is built)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class AttentionGate(nn.Module):
    """Additive attention gate on a skip connection, gated by the coarser decoder feature."""

    def __init__(self, skip_channels: int, gating_channels: int, inter_channels: int) -> None:
        super().__init__()
        self.theta = nn.Conv2d(skip_channels, inter_channels, kernel_size=2, stride=2, bias=False)
        self.phi = nn.Conv2d(gating_channels, inter_channels, kernel_size=1)
        self.psi = nn.Conv2d(inter_channels, 1, kernel_size=1)
        self.out = nn.Sequential(
            nn.Conv2d(skip_channels, skip_channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(skip_channels),
        )

    def attention(self, skip: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        """The coefficients ``alpha`` in [0, 1], shape ``(N, 1, H, W)`` of ``skip``."""
        theta = self.theta(skip)
        phi = F.interpolate(self.phi(gate), size=theta.shape[-2:], mode="bilinear")
        alpha = torch.sigmoid(self.psi(F.relu(theta + phi)))
        return F.interpolate(alpha, size=skip.shape[-2:], mode="bilinear")

    def forward(self, skip: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        return self.out(skip * self.attention(skip, gate))


def _out_channels(block: nn.Module) -> int:
    """Channels a decoder block produces: those of its last convolution."""
    return [m for m in block.modules() if isinstance(m, nn.Conv2d)][-1].out_channels


class AttentionUnet(nn.Module):
    """SMP's U-Net with an :class:`AttentionGate` on every skip connection.

    ``unet`` is a ``segmentation_models_pytorch.Unet``; its decoder blocks are run here
    in the order SMP's ``UnetDecoder.forward`` runs them, each skip passing its gate first.
    """

    def __init__(self, unet: nn.Module, gate_reduction: int = 2) -> None:
        super().__init__()
        if gate_reduction < 1:
            raise ValueError(f"gate_reduction must be at least 1, got {gate_reduction}")
        self.unet = unet
        # SMP's decoder drops the full-resolution feature and starts from the deepest one.
        encoder_channels: Sequence[int] = list(unet.encoder.out_channels)[1:][::-1]
        blocks = list(unet.decoder.blocks)
        gating = [encoder_channels[0]] + [_out_channels(b) for b in blocks[:-1]]
        skips = list(encoder_channels[1:]) + [0] * (len(blocks) - len(encoder_channels) + 1)
        self.gates = nn.ModuleList(
            AttentionGate(s, g, max(1, s // gate_reduction)) if s > 0 else nn.Identity()
            for s, g in zip(skips, gating, strict=True)
        )
        from segmentation_models_pytorch.base import initialization

        initialization.initialize_decoder(self.gates)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.unet.check_input_shape(x)
        features = self.unet.encoder(x)
        shapes = [f.shape[2:] for f in features][::-1]
        features = features[1:][::-1]
        skips = features[1:]
        out = self.unet.decoder.center(features[0])
        for i, (block, gate) in enumerate(zip(self.unet.decoder.blocks, self.gates, strict=True)):
            skip = skips[i] if i < len(skips) else None
            if skip is not None and isinstance(gate, AttentionGate):
                skip = gate(skip, out)
            height, width = shapes[i + 1]
            out = block(out, height, width, skip_connection=skip)
        return self.unet.segmentation_head(out)
