"""Effective activation precision: the bits a group of quantized activations actually needs (Dynamic Stripes).

Bit-serial accelerators stream an activation one bit per cycle, so leading zeros cost cycles for nothing. Dynamic
Stripes (Delmas et al., arXiv 1706.00504) and Loom (Sharify et al., DAC 2018) detect, at run time and per group of
activations processed together, the position of the highest 1-bit and stream only the bits up to it [paper
abstracts; DNNsim computes the same per group, docs/hardware.md §2.3]. Here a group is ``GROUP`` = 16 activations:
16 consecutive input channels at one position, the 16 lanes a SIP reduces in one step (channels padded with zeros
to a multiple of 16). A group needs ``bit_length(max level)`` bits, and at least one (a step takes a cycle).

Levels are the quantizer's integers, ``round((clamp(x) − low) / scale)`` in ``0 .. 2^a − 1`` (``quantize.py``), so a
block's inputs after ReLU, whose range starts at 0, need few bits wherever they are small. What a gated block
records per input is the mean over the groups of its convolutions' inputs, each convolution weighted by its MACs
(its share of the block's serial cycles): one number per decision, which the trace stores in eighths of a bit.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["GROUP", "PrecisionMeter", "needed_bits"]

GROUP = 16


def needed_bits(levels: torch.Tensor, group: int = GROUP) -> torch.Tensor:
    """Per sample (dim 0), the mean over groups of ``group`` channels at one position of the bits the group's
    largest level needs (at least 1). ``levels``: non-negative integer values, (N, C, H, W) or (N, C)."""
    if levels.dim() == 2:
        levels = levels[:, :, None, None]
    pad = (-levels.shape[1]) % group
    if pad:
        levels = F.pad(levels, (0, 0, 0, 0, 0, pad))
    n, channels, height, width = levels.shape
    largest = levels.reshape(n, channels // group, group, height, width).amax(dim=2)
    bits = torch.frexp(largest.double())[1].clamp_(min=1)  # 2^(e-1) <= v < 2^e: e is v's bit length; 0 gives 0
    return bits.double().mean(dim=(1, 2, 3))


class PrecisionMeter:
    """Collects, for one block run on a batch, each quantized convolution's per-sample needed bits and MACs."""

    def __init__(self) -> None:
        self.parts: list[tuple[torch.Tensor, int]] = []

    def add(self, levels: torch.Tensor, macs_per_sample: int) -> None:
        self.parts.append((needed_bits(levels), macs_per_sample))

    def block_bits(self) -> torch.Tensor | None:
        """The MAC-weighted mean over the convolutions (per sample), or None when nothing was quantized."""
        if not self.parts:
            return None
        total = sum(macs for _, macs in self.parts)
        return sum(bits * (macs / total) for bits, macs in self.parts)
