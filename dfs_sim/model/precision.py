"""Effective activation precision: the bits a group of quantized activations actually needs (Dynamic Stripes).

Bit-serial accelerators stream an activation one bit per cycle, so leading zeros cost cycles for nothing. Dynamic
Stripes (Delmas et al., arXiv 1706.00504) and Loom (Sharify et al., DAC 2018) detect, at run time and per group of
activations processed together, the position of the highest 1-bit and stream only the bits up to it [paper
abstracts; DNNsim computes the same per group, docs/hardware.md §2.3]. Here a group is ``GROUP`` = 16 consecutive
input channels (the 16 lanes a SIP reduces in one step; channels padded with zeros to a multiple of 16) at
``positions`` consecutive positions (row-major): 1 by default, or 16 for the 16 windows a Stripes tile steps
together, whose slowest group sets the step's length. A group needs ``bit_length(max level)`` bits, and at least one
(a step takes a cycle).

Levels are the quantizer's integers, ``round((clamp(x) − low) / scale)`` in ``0 .. 2^a − 1`` (``quantize.py``), so a
block's inputs after ReLU, whose range starts at 0, need few bits wherever they are small. What a gated block
records per input is the mean over the groups of its convolutions' inputs, each convolution weighted by its MACs
(its share of the block's serial cycles): one number per decision, which the trace stores in eighths of a bit.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["GROUP", "POSITIONS", "PrecisionMeter", "needed_bits"]

GROUP = 16  # channels per group: a SIP's lanes
POSITIONS = (1, 16)  # positions per group: one, or the 16 windows of a Stripes tile


def needed_bits(levels: torch.Tensor, group: int = GROUP, positions: int = 1) -> torch.Tensor:
    """Per sample (dim 0), the mean over groups of ``group`` channels × ``positions`` consecutive positions of the
    bits the group's largest level needs (at least 1). ``levels``: non-negative integer values, (N, C, H, W) or
    (N, C); channels and positions are padded with zeros to whole groups."""
    if levels.dim() == 2:
        levels = levels[:, :, None, None]
    n, channels = levels.shape[:2]
    flat = levels.reshape(n, channels, -1)
    flat = F.pad(flat, (0, (-flat.shape[2]) % positions, 0, (-channels) % group))
    n, channels, places = flat.shape
    grouped = flat.reshape(n, channels // group, group, places // positions, positions)
    largest = grouped.amax(dim=(2, 4))
    bits = torch.frexp(largest.double())[1].clamp_(min=1)  # 2^(e-1) <= v < 2^e: e is v's bit length; 0 gives 0
    return bits.double().mean(dim=(1, 2))


class PrecisionMeter:
    """Collects, for one block run on a batch, each quantized convolution's per-sample needed bits and MACs, in
    groups of 16 channels × ``positions`` positions."""

    def __init__(self, positions: int = 1) -> None:
        if positions not in POSITIONS:
            raise ValueError(f"positions per group must be one of {POSITIONS}, got {positions!r}")
        self.positions = positions
        self.parts: list[tuple[torch.Tensor, int]] = []

    def add(self, levels: torch.Tensor, macs_per_sample: int) -> None:
        self.parts.append((needed_bits(levels, positions=self.positions), macs_per_sample))

    def block_bits(self) -> torch.Tensor | None:
        """The MAC-weighted mean over the convolutions (per sample), or None when nothing was quantized."""
        if not self.parts:
            return None
        total = sum(macs for _, macs in self.parts)
        return sum(bits * (macs / total) for bits, macs in self.parts)
