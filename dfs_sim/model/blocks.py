"""The BasicBlock of the CIFAR ResNet, able to run as any DFS option with shared weights.

A block computes ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``. At a quantized option both convolutions
quantize their weights and their inputs to the option's bits (``quantize.py``: the authors' scheme or the standard
one); at full precision nothing
is quantized; skipping returns the shortcut. The shortcut of a strided block is a 1×1 projection (+ BN) that always
runs at full precision, so a skipped strided block still pays for it (docs/design.md §1).

``candidate`` computes one option (the plain reference); ``candidates`` computes a list of options for the training
forward with the work they share done once: the block input's range is measured once and its clamp shared by every
width (``quantize_levels``). Running statistics are updated in the reference's order, so both give the same values.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import torch
from torch import nn
from torch.nn import functional as F

from dfs_sim.model.distributed import BatchNorm2d
from dfs_sim.model.precision import PrecisionMeter
from dfs_sim.model.quantize import (
    LEGACY_QUANTIZER,
    ActivationQuantizer,
    quantize_levels,
    quantize_uniform,
    quantize_weight,
)
from dfs_sim.options import Option

__all__ = ["GatedBasicBlock", "QuantConv2d"]


class QuantConv2d(nn.Conv2d):
    """A convolution that can run at full precision, or with its weights quantized to ``bits`` and its input to
    ``input_bits`` (``bits`` when not given)."""

    def __init__(self, *args, quantizer: str = LEGACY_QUANTIZER, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.quantizer = quantizer
        self.input_quantizer = ActivationQuantizer(scheme=quantizer)

    def forward(
        self,
        x: torch.Tensor,
        bits: int | None = None,  # type: ignore[override]
        input_quantized: bool = False,
        input_bits: int | None = None,
        meter: PrecisionMeter | None = None,
    ) -> torch.Tensor:
        """``input_quantized``: ``x`` is already on the input grid (its range observed by the caller); ``meter``
        (evaluation): record the bits the quantized input needs (``dfs_sim.model.precision``)."""
        if bits is None:
            return super().forward(x)
        weight = quantize_weight(self.weight, bits, self.quantizer)
        if not input_quantized:
            width = bits if input_bits is None else input_bits
            if meter is not None:
                levels = self.input_quantizer.levels(x, width)
            x = self.input_quantizer(x, width)
        out = self._conv_forward(x, weight, self.bias)
        if meter is not None and not input_quantized:
            meter.add(levels, out[0].numel() * (self.in_channels // self.groups) * self.weight[0, 0].numel())
        return out


class GatedBasicBlock(nn.Module):
    """A BasicBlock whose ``candidate(x, shortcut, option)`` is its output when run at ``option``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, quantizer: str = LEGACY_QUANTIZER) -> None:
        super().__init__()
        self.conv1 = QuantConv2d(
            in_channels, out_channels, 3, stride=stride, padding=1, bias=False, quantizer=quantizer
        )
        self.bn1 = BatchNorm2d(out_channels)
        self.conv2 = QuantConv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False, quantizer=quantizer)
        self.bn2 = BatchNorm2d(out_channels)
        self.projection: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.projection = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), BatchNorm2d(out_channels)
            )

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        """The skip path: the input itself, or its full-precision projection for a strided block."""
        return x if self.projection is None else self.projection(x)

    def candidate(
        self, x: torch.Tensor, shortcut: torch.Tensor, option: Option, meter: PrecisionMeter | None = None
    ) -> torch.Tensor:
        """A quantized option runs the weights at ``w_bits`` and the convolutions' inputs at ``a_bits``; ``meter``
        records the bits those inputs need."""
        if option.is_skip:
            return shortcut
        bits = None if option.float else option.w_bits
        out = F.relu(self.bn1(self.conv1(x, bits, input_bits=option.a_bits, meter=meter)))
        out = self.bn2(self.conv2(out, bits, input_bits=option.a_bits, meter=meter))
        return F.relu(out + shortcut)

    def candidates(
        self, x: torch.Tensor, shortcut: torch.Tensor, options: Sequence[Option], with_grad: Sequence[bool]
    ) -> list[torch.Tensor]:
        """``[candidate(x, shortcut, o) for o in options]``, each in the graph only where ``with_grad`` says so."""
        widths = [option.a_bits for option in options if not option.is_skip and not option.float]
        grad_any = torch.is_grad_enabled() and any(
            flag for flag, option in zip(with_grad, options, strict=True) if not option.is_skip and not option.float
        )
        with nullcontext() if grad_any else torch.no_grad():
            if widths:  # the reference observes the same block input once per width; so does this, in one place
                ranges = self.conv1.input_quantizer.ranges(x, widths)
                if self.conv1.quantizer == LEGACY_QUANTIZER:
                    quantized = iter(quantize_levels(x, widths, *ranges[0]))  # one range: the clamp is shared
                else:  # a range per width (the running range moves with each observation; a clip per width)
                    pairs = zip(widths, ranges, strict=True)
                    quantized = iter([quantize_uniform(x, w, low, high) for w, (low, high) in pairs])
        outputs = []
        for option, flag in zip(options, with_grad, strict=True):
            if option.is_skip:
                outputs.append(shortcut)
                continue
            with nullcontext() if flag else torch.no_grad():
                if option.float:
                    out = self.conv1(x)
                    bits = None
                else:
                    bits = option.w_bits
                    out = self.conv1(next(quantized), bits, input_quantized=True)
                out = self.bn2(self.conv2(F.relu(self.bn1(out), inplace=True), bits, input_bits=option.a_bits))
                outputs.append(out.add_(shortcut).relu_())  # BN's backward needs its input, not its output
        return outputs

    def forward(self, x: torch.Tensor, option: Option, meter: PrecisionMeter | None = None) -> torch.Tensor:
        return self.candidate(x, self.shortcut(x), option, meter)
