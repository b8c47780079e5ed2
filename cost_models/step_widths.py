"""The bits each step of a bit-serial accelerator streams, with DNNsim's conventions (isakedo/DNNsim @4748a60).

DNNsim's dynamic-precision machines (ShapeShifter, Loom) do not charge a layer ``a`` cycles per step as Stripes does:
each step lasts as long as the widest activation the step holds. This module computes, from integer activations (and
weights) and the geometry, the width of every step exactly as DNNsim does, and from the widths the compute cycles
DNNsim reports; ``tests/test_dnnsim_reference.py`` checks every row of ``tests/data/dnnsim_reference.csv`` (DNNsim's
own runs, ``validation/dnnsim/``) against them. It is numpy only. The cost models take the widths it computes:
``cost_models.bitserial.stepwise_cost`` prices a layer on a ``trim_group = "step"`` preset (the ``dnnsim_*``
reference presets) from them, and ``pipelined_cycles`` is its FC column schedule (docs/hardware.md "DNNsim
reference").

DNNsim's conventions, file by file [repo]:

* **Width of one value** (``core/src/Loom.cpp Loom::process_pe``, ``core/src/ShapeShifter.cpp
  ShapeShifter::process_pe``, table ``core/src/Utils.cpp generateMinMaxTable``): position of the highest 1-bit + 1;
  zero counts as one bit (``minMax(0)`` = (16, 0)). For signed data (a trace whose minimum is negative:
  ``base/src/Array.cpp set_values``) a negative value is first complemented (``v ^ 0xFFFF`` = ``−v − 1``) and the
  sign adds one bit, so 0 and −1 take 2 bits, 1 takes 2, −2 takes 2, 2 takes 3.
* **What one step holds** (``core/src/WindowFirstOutS.cpp still_on_chip_data_conv_layer``,
  ``core/src/OutputStationary.cpp fill_window_buffer``, ``fill_weight_buffer``): a convolution's windows are taken
  ``columns`` (16) at a time (window ``w`` at ``x = w % out_x``, ``y = w / out_y``; ``x`` indexes the trace's third
  axis), its filters ``rows·tiles`` (256) at a time, and each of those (window set, filter set) pairs runs
  ``ceil(C/lanes)·R·S`` steps, one per kernel tap and chunk of ``lanes`` (16) input channels (chunks padded with
  zeros). All tiles step together on the same activations.
* **Step cycles, convolution** (``ShapeShifter::process_mmul`` and ``Loom::process_mmul``, ``group_size 1``,
  ``column_registers 0``, ``minor_bit false``): ShapeShifter: the widest activation of the step's windows × lanes
  (``slowest_column``); Loom: ``ceil(that / pe_serial_bits) · w``; Loom with ``dynamic_weights``: ``ceil(that /
  pe_serial_bits)`` × the widest weight of the step's filters (all tiles) × lanes. Stripes (``Stripes::process_tiles``)
  takes ``min(a, pe_width)`` and DaDianNao (``DaDianNao::process_tiles``, one window per step) one cycle. The layer's
  compute cycles are the sum over its steps.
* **Fully connected layers** (``still_on_chip_data_linear_layer``, ``process_linear``): one step per chunk of
  ``lanes`` inputs, per filter set of ``rows·tiles``; chunk ``t`` sits in column ``t % columns`` of buffer row ``t``,
  and the machine reads the column of its own rotating index, which runs on across filter sets, so when
  ``ceil(C/lanes)`` is not a multiple of ``columns`` later filter sets read an empty column (width of a zero). The
  steps overlap: a new one starts every cycle on the next column once that column is free, and the compute cycles
  are the last column's finish (``getCycles``: the maximum of ``compute_cycles``; ``pipelined_cycles``). DaDianNao
  takes one cycle per step, not pipelined.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "value_widths",
    "conv_act_step_widths",
    "conv_wgt_step_widths",
    "fc_act_step_widths",
    "fc_wgt_step_widths",
    "pipelined_cycles",
    "dnnsim_compute_cycles",
    "ARCHITECTURES",
]

ARCHITECTURES = ("DaDianNao", "Stripes", "ShapeShifter", "Loom", "DynLoom")


def value_widths(values: np.ndarray, signed: bool) -> np.ndarray:
    """Bits DNNsim charges for each value: ``bit_length(v)``, at least 1; signed data: ``bit_length(v if v >= 0 else
    −v − 1)``, at least 1, plus the sign bit (``Loom::process_pe``, ``ShapeShifter::process_pe``, ``minMax``)."""
    v = np.asarray(values, dtype=np.int64)
    magnitude = np.where(v < 0, -v - 1, v) if signed else v
    if (magnitude < 0).any() or (magnitude >= 1 << 15).any():
        raise ValueError("values must fit DNNsim's 16-bit words (unsigned data: 0 .. 32767)")
    # bit_length for 0 <= m < 2^15: frexp's exponent
    bits = np.frexp(magnitude.astype(np.float64))[1].astype(np.int64)
    return np.maximum(bits, 1) + int(signed)


def _pad_to(array: np.ndarray, axis: int, multiple: int, fill: int) -> np.ndarray:
    extra = -array.shape[axis] % multiple
    if not extra:
        return array
    widths = [(0, 0)] * array.ndim
    widths[axis] = (0, extra)
    return np.pad(array, widths, constant_values=fill)


def _tap_order(kernel: int) -> list[tuple[int, int]]:
    """(x, y) kernel taps in DNNsim's buffer order: y (fourth trace axis) outer, x (third axis) inner."""
    return [(x, y) for y in range(kernel) for x in range(kernel)]


def conv_act_step_widths(
    acts: np.ndarray,
    kernel: int,
    stride: int,
    padding: int,
    *,
    signed: bool,
    windows: int = 16,
    lanes: int = 16,
) -> np.ndarray:
    """Widest activation of every convolution step: shape (window sets, ``ceil(C/lanes)·kernel²``), steps in
    DNNsim's buffer order (kernel row, kernel column, channel chunk).

    ``acts``: one sample's integer activations (C, H, W), H = W (DNNsim's ``WindowFirstOutS`` divides the window index
    by ``out_y`` where it means ``out_x``, so only square outputs are placed right). Zero padding and empty lanes
    hold zeros, as in DNNsim's padded trace and buffers."""
    acts = np.asarray(acts, dtype=np.int64)
    channels, height, width = acts.shape
    if height != width:
        raise ValueError("DNNsim places windows right only for square inputs")
    padded = np.pad(acts, ((0, 0), (padding, padding), (padding, padding)))
    out = (height + 2 * padding - kernel) // stride + 1
    zero_width = int(value_widths(np.zeros(1, dtype=np.int64), signed)[0])
    per_value = value_widths(padded, signed)
    steps = []
    for x, y in _tap_order(kernel):
        # tap (x, y) of window (wx, wy) reads padded[:, wx*stride + x, wy*stride + y]; window index w = wx + out*wy
        tap = per_value[:, x : x + stride * (out - 1) + 1 : stride, y : y + stride * (out - 1) + 1 : stride]
        tap = tap.transpose(0, 2, 1).reshape(channels, out * out)  # (C, windows), w = wy*out + wx
        tap = _pad_to(_pad_to(tap, 0, lanes, zero_width), 1, windows, 0)  # empty lanes read 0; absent windows nothing
        grouped = tap.reshape(tap.shape[0] // lanes, lanes, tap.shape[1] // windows, windows)
        steps.append(grouped.max(axis=(1, 3)).T)  # (window sets, chunks)
    return np.concatenate(steps, axis=1)


def conv_wgt_step_widths(
    weights: np.ndarray, *, signed: bool, filters_per_set: int = 256, lanes: int = 16
) -> np.ndarray:
    """Widest weight of every convolution step, for Loom's ``dynamic_weights``: shape (filter sets,
    ``ceil(C/lanes)·kernel²``), same step order as ``conv_act_step_widths``; a filter set is the ``rows·tiles``
    filters the tiles hold together. ``weights``: (K, C, kernel, kernel), the trace's axes (the third is x)."""
    weights = np.asarray(weights, dtype=np.int64)
    kernel = weights.shape[2]
    zero_width = int(value_widths(np.zeros(1, dtype=np.int64), signed)[0])
    per_value = value_widths(weights, signed)
    steps = []
    for x, y in _tap_order(kernel):
        tap = _pad_to(per_value[:, :, x, y], 1, lanes, zero_width)  # (K, C padded)
        tap = _pad_to(tap, 0, filters_per_set, 0)  # absent filters are not processed
        grouped = tap.reshape(tap.shape[0] // filters_per_set, filters_per_set, tap.shape[1] // lanes, lanes)
        steps.append(grouped.max(axis=(1, 3)))  # (filter sets, chunks)
    return np.concatenate(steps, axis=1)


def fc_act_step_widths(
    acts: np.ndarray, out_ch: int, *, signed: bool, columns: int = 16, filters_per_set: int = 256, lanes: int = 16
) -> np.ndarray:
    """Width DNNsim reads on each step of a fully connected layer, in execution order (filter sets outer, chunks
    inner): chunk ``t``'s widest input when the rotating column index equals ``t % columns``, else the width of a
    zero (the empty column; module docstring). ``acts``: one sample's integer inputs (C,)."""
    per_value = _pad_to(value_widths(np.asarray(acts, dtype=np.int64), signed), 0, lanes, 0)
    chunk = per_value.reshape(-1, lanes).max(axis=1)
    zero_width = int(value_widths(np.zeros(1, dtype=np.int64), signed)[0])
    chunk = np.maximum(chunk, zero_width)
    sets = -(-out_ch // filters_per_set)
    t = np.tile(np.arange(chunk.size), sets)
    column = np.arange(t.size) % columns
    return np.where(column == t % columns, chunk[t], zero_width)


def fc_wgt_step_widths(weights: np.ndarray, *, signed: bool, filters_per_set: int = 256, lanes: int = 16) -> np.ndarray:
    """Widest weight of each fully connected step (filter sets outer, chunks inner), for ``dynamic_weights``.
    ``weights``: (K, C)."""
    weights = np.asarray(weights, dtype=np.int64)
    return conv_wgt_step_widths(
        weights[:, :, None, None], signed=signed, filters_per_set=filters_per_set, lanes=lanes
    ).reshape(-1)


def pipelined_cycles(step_cycles: np.ndarray, columns: int = 16) -> int:
    """Compute cycles of DNNsim's fully connected schedule (``Stripes::process_tiles``, ``Loom::process_linear``,
    ``ShapeShifter::process_linear`` with ``linear``): step ``i`` goes to column ``i % columns``, starts one cycle
    after the previous step or when its column is free, whichever is later, and holds the column ``step_cycles[i]``
    cycles; the layer takes until the last column is done."""
    free = [0] * columns
    start = 0
    for i, cycles in enumerate(np.asarray(step_cycles, dtype=np.int64).tolist()):
        column = i % columns
        start = max(start, free[column])
        free[column] = start + cycles
        start += 1
    return max(free)


def dnnsim_compute_cycles(
    arch: str,
    acts: np.ndarray,
    weights: np.ndarray,
    *,
    a_bits: int,
    w_bits: int,
    stride: int = 1,
    padding: int = 0,
    pe_serial_bits: int = 1,
    tiles: int = 16,
    rows: int = 16,
    columns: int = 16,
    lanes: int = 16,
    pe_width: int = 16,
) -> int:
    """DNNsim's ``compute_cycles`` for one sample of one layer on ``arch`` (``ARCHITECTURES``; "DynLoom" is Loom
    with ``dynamic_weights``), from its integer activations ((C, H, W), or (C,) for a fully connected layer) and
    weights ((K, C, k, k) or (K, C)), as the module docstring derives them. Signedness is the data's, as in DNNsim:
    an array with a negative value is signed. DaDianNao uses one column whatever ``columns`` says."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {ARCHITECTURES}, got {arch!r}")
    acts, weights = np.asarray(acts, dtype=np.int64), np.asarray(weights, dtype=np.int64)
    signed_act, signed_wgt = bool((acts < 0).any()), bool((weights < 0).any())
    fc = acts.ndim == 1
    filters_per_set = rows * tiles
    out_ch = weights.shape[0]
    filter_sets = -(-out_ch // filters_per_set)
    if fc:
        chunks = -(-acts.shape[0] // lanes)
        if arch == "DaDianNao":
            return filter_sets * chunks
        act = fc_act_step_widths(
            acts, out_ch, signed=signed_act, columns=columns, filters_per_set=filters_per_set, lanes=lanes
        )
        if arch == "Stripes":
            step = np.full(act.size, min(a_bits, pe_width))
        elif arch == "ShapeShifter":
            step = act
        else:
            wgt = (
                fc_wgt_step_widths(weights, signed=signed_wgt, filters_per_set=filters_per_set, lanes=lanes)
                if arch == "DynLoom"
                else w_bits
            )
            step = -(-act // pe_serial_bits) * wgt
        return pipelined_cycles(step, columns)
    kernel = weights.shape[2]
    if arch == "DaDianNao":
        out = (acts.shape[1] + 2 * padding - kernel) // stride + 1
        return out * out * filter_sets * -(-acts.shape[0] // lanes) * kernel * kernel
    act = conv_act_step_widths(acts, kernel, stride, padding, signed=signed_act, windows=columns, lanes=lanes)
    if arch == "Stripes":
        return act.size * filter_sets * min(a_bits, pe_width)
    if arch == "ShapeShifter":
        return int(act.sum()) * filter_sets
    passes = -(-act // pe_serial_bits)  # (window sets, steps)
    if arch == "Loom":
        return int(passes.sum()) * filter_sets * w_bits
    wgt = conv_wgt_step_widths(weights, signed=signed_wgt, filters_per_set=filters_per_set, lanes=lanes)
    return int(passes.sum(axis=0) @ wgt.sum(axis=0))
