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
This is the ``"position"`` measurement, the export's default and the meaning of every trace whose metadata names no
measurement.

The ``"step"`` measurement (``--precision-measure step``) is DNNsim's: a bit-serial tile steps ``windows`` windows ×
``lanes`` input channels of one kernel tap together, and the step lasts as long as its widest activation needs
(isakedo/DNNsim @4748a60 ``ShapeShifter::process_mmul`` ``slowest_column``, ``Loom::process_mmul``; conventions in
``cost_models/step_widths.py``: zero counts as one bit, a sign bit for signed data, windows taken 16 at a time along
the output's first spatial axis, zero padding and empty lanes read as zeros). ``step_widths`` computes every step's
width for one convolution; a decision records the mean per-step width over its block's convolutions, each step
rounded up to the preset's ``bits_per_cycle`` (Loom streams ``b`` bits a cycle, so a step of width ``x`` streams
``b·ceil(x/b)``) and each convolution weighted by its steps × filter sets, so that a cost linear in the streamed bits
charged at the mean equals DNNsim's sum over steps (``cost_models.pricing.effective_cost``). The model code hands the
meter only the levels and MACs; ``step_measurement(model, geometry)`` adds the convolution's kernel, stride, padding
and filters through a forward pre-hook on each quantized convolution.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "GROUP",
    "MEASUREMENTS",
    "POSITIONS",
    "PrecisionMeter",
    "StepGeometry",
    "needed_bits",
    "step_measurement",
    "step_widths",
]

GROUP = 16  # channels per group: a SIP's lanes
POSITIONS = (1, 16)  # positions per group: one, or the 16 windows of a Stripes tile
MEASUREMENTS = ("position", "step")  # what a trace's precision columns mean (metadata effective_precision.measurement)


@dataclasses.dataclass(frozen=True)
class StepGeometry:
    """What one step of a bit-serial tile holds, for the ``"step"`` measurement: ``windows`` output windows ×
    ``lanes`` input channels of one kernel tap, run once per set of ``filters_per_set`` filters (``filters·tiles``),
    streaming ``bits_per_cycle`` activation bits a cycle (a preset's ``array``; DNNsim's example: 16, 16, 256, 1)."""

    windows: int = 16
    lanes: int = 16
    filters_per_set: int = 256
    bits_per_cycle: int = 1

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"StepGeometry.{field.name} must be a positive integer, got {value!r}")

    def to_meta(self) -> dict:
        return dataclasses.asdict(self)


def _value_widths(levels: torch.Tensor) -> torch.Tensor:
    """DNNsim's bits per value (``cost_models.step_widths.value_widths``): bit length, at least 1; signed data (any
    negative value) complement negatives (``−v − 1``) and add the sign bit."""
    values = levels.round().to(torch.int64)
    signed = bool((values < 0).any())
    magnitude = torch.where(values < 0, -values - 1, values) if signed else values
    bits = torch.frexp(magnitude.double())[1].clamp_(min=1)
    return bits + int(signed)


def step_widths(
    levels: torch.Tensor, kernel: int, stride: int, padding: int, windows: int = 16, lanes: int = 16
) -> torch.Tensor:
    """Widest activation of every step of one convolution, per sample: (N, window sets, ``ceil(C/lanes)·kernel²``),
    steps in DNNsim's buffer order (kernel row, kernel column, channel chunk), the same numbers as
    ``cost_models.step_widths.conv_act_step_widths`` on each sample [DNNsim ``WindowFirstOutS``,
    ``OutputStationary::fill_window_buffer``; ``tests/test_step_precision.py`` checks the two agree]. ``levels``:
    (N, C, H, W) integer levels, H = W."""
    n, channels, height, width = levels.shape
    if height != width:
        raise ValueError("DNNsim places windows right only for square inputs")
    per_value = _value_widths(F.pad(levels, (padding, padding, padding, padding), value=0))  # padding reads zeros
    out = (height + 2 * padding - kernel) // stride + 1
    steps = []
    for y in range(kernel):  # DNNsim's tap order: y (fourth axis) outer, x (third axis) inner
        for x in range(kernel):
            tap = per_value[:, :, x : x + stride * (out - 1) + 1 : stride, y : y + stride * (out - 1) + 1 : stride]
            tap = tap.transpose(2, 3).reshape(n, channels, out * out)  # window w = wy·out + wx
            tap = F.pad(tap, (0, (-tap.shape[2]) % windows, 0, (-channels) % lanes), value=0)
            grouped = tap.reshape(n, tap.shape[1] // lanes, lanes, tap.shape[2] // windows, windows)
            steps.append(grouped.amax(dim=(2, 4)).transpose(1, 2))  # (N, window sets, chunks)
    return torch.cat(steps, dim=2)


# the convolution whose input the meter sees next: (kernel, stride, padding, out_channels), set by the pre-hooks of
# step_measurement; the geometry of an active step measurement
_CONV: list[tuple[int, int, int, int] | None] = [None]
_ACTIVE: list[StepGeometry | None] = [None]


def _note_conv(module: nn.Module, _inputs) -> None:
    assert isinstance(module, nn.Conv2d)
    kernel, stride, padding = module.kernel_size, module.stride, module.padding
    if (
        isinstance(padding, str)
        or kernel[0] != kernel[1]
        or stride[0] != stride[1]
        or padding[0] != padding[1]
        or module.groups != 1
    ):
        raise ValueError("the step measurement needs square, ungrouped convolutions with numeric padding")
    _CONV[0] = (kernel[0], stride[0], padding[0], module.out_channels)


@contextlib.contextmanager
def step_measurement(model: nn.Module, geometry: StepGeometry) -> Iterator[None]:
    """While open, every ``PrecisionMeter`` measures DNNsim's per-step widths for ``geometry`` (module docstring)
    instead of per-position groups; each quantized convolution of ``model`` (those with an ``input_quantizer``) tells
    the meter its kernel, stride, padding and filters through a forward pre-hook, removed on exit."""
    if _ACTIVE[0] is not None:
        raise RuntimeError("a step measurement is already open")
    handles = [
        module.register_forward_pre_hook(_note_conv)
        for module in model.modules()
        if isinstance(module, nn.Conv2d) and hasattr(module, "input_quantizer")
    ]
    _ACTIVE[0] = geometry
    try:
        yield
    finally:
        _ACTIVE[0], _CONV[0] = None, None
        for handle in handles:
            handle.remove()


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
    """Collects, for one block run on a batch, each quantized convolution's per-sample needed bits and weight: in
    groups of 16 channels × ``positions`` positions, weighted by MACs; or, inside ``step_measurement``, the mean
    per-step width, weighted by steps × filter sets."""

    def __init__(self, positions: int = 1) -> None:
        if positions not in POSITIONS:
            raise ValueError(f"positions per group must be one of {POSITIONS}, got {positions!r}")
        self.positions = positions
        self.geometry = _ACTIVE[0]
        self.parts: list[tuple[torch.Tensor, int]] = []

    def add(self, levels: torch.Tensor, macs_per_sample: int) -> None:
        if self.geometry is None:
            self.parts.append((needed_bits(levels, positions=self.positions), macs_per_sample))
            return
        conv = _CONV[0]
        if conv is None or levels.dim() != 4:
            raise RuntimeError("step measurement: the convolution's geometry was not noted (step_measurement)")
        kernel, stride, padding, out_channels = conv
        geometry = self.geometry
        widths = step_widths(levels, kernel, stride, padding, geometry.windows, geometry.lanes)
        b = geometry.bits_per_cycle
        streamed = torch.ceil(widths / b) * b  # Loom streams b bits a cycle: ceil(width / b) passes
        filter_sets = -(-out_channels // geometry.filters_per_set)
        steps = widths.shape[1] * widths.shape[2] * filter_sets
        self.parts.append((streamed.double().mean(dim=(1, 2)), steps))

    def block_bits(self) -> torch.Tensor | None:
        """The weighted mean over the convolutions (per sample), or None when nothing was quantized."""
        if not self.parts:
            return None
        total = sum(weight for _, weight in self.parts)
        return sum(bits * (weight / total) for bits, weight in self.parts)
