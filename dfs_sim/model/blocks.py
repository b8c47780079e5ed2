"""The BasicBlock of the CIFAR ResNet, able to run as any DFS option with shared weights.

A block computes ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``. At a quantized option both convolutions
quantize their weights (per tensor) and their inputs (running min/max) to the option's bits; at full precision nothing
is quantized; skipping returns the shortcut. The shortcut of a strided block is a 1×1 projection (+ BN) that always
runs at full precision, so a skipped strided block still pays for it (DESIGN §1).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from dfs_sim.options import Option
from dfs_sim.model.quantize import ActivationQuantizer, quantize_weight

__all__ = ["GatedBasicBlock", "QuantConv2d"]


class QuantConv2d(nn.Conv2d):
    """A convolution that can run at full precision or with weights and input quantized to ``bits``."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.input_quantizer = ActivationQuantizer()

    def forward(self, x: torch.Tensor, bits: int | None = None) -> torch.Tensor:  # type: ignore[override]
        if bits is None:
            return super().forward(x)
        weight = quantize_weight(self.weight, bits)
        return self._conv_forward(self.input_quantizer(x, bits), weight, self.bias)


class GatedBasicBlock(nn.Module):
    """A BasicBlock whose ``candidate(x, shortcut, option)`` is its output when run at ``option``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = QuantConv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = QuantConv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.projection: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.projection = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        """The skip path: the input itself, or its full-precision projection for a strided block."""
        return x if self.projection is None else self.projection(x)

    def candidate(self, x: torch.Tensor, shortcut: torch.Tensor, option: Option) -> torch.Tensor:
        """A quantized option runs both operands at ``w_bits`` (GatedResNet rejects options whose bits differ)."""
        if option.is_skip:
            return shortcut
        bits = None if option.float else option.w_bits
        out = F.relu(self.bn1(self.conv1(x, bits)))
        out = self.bn2(self.conv2(out, bits))
        return F.relu(out + shortcut)

    def forward(self, x: torch.Tensor, option: Option) -> torch.Tensor:
        return self.candidate(x, self.shortcut(x), option)
