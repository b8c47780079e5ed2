"""Bit-serial accelerators on the DaDianNao tile geometry: Stripes (activations serial) and Loom (both serial).

Geometry: ``tiles`` × (``filters`` × ``windows``) Serial Inner-Product units (SIPs) × ``lanes`` input channels
(DNNsim defaults, isakedo/DNNsim @4748a60, docs/hardware.md §2.1-2.4). One step covers ``windows`` output positions ×
``filters·tiles`` output channels × ``lanes`` input channels of one kernel tap.

* Stripes (Judd et al., MICRO 2016; DNNsim ``Stripes::process_tiles``): a step takes ``a`` cycles (one activation bit
  per cycle) [repo/paper]; weights are ``pe_width`` bits parallel, so a wider weight (32-bit full precision) takes
  ``ceil(w/pe_width)`` passes [our assumption].
* Loom (Sharify et al., DAC 2018; DNNsim ``Loom::process_mmul``): a step takes ``ceil(a/b) · w`` cycles with ``b``
  activation bits per cycle [repo/paper].

Speed-up over the equal-peak 16-bit bit-parallel twin (``parallel_twin``) on layers that fill the tiles: 16/a for
Stripes, 256/(a·w) for Loom with even ``a`` (docs/hardware.md §2.2, §2.4). SRAM reads scale with the operands' bits
because activations and weights are stored and read at their own widths (bit-transposed storage, docs/hardware.md §5.3).

Fully connected layers (one output window: ``batch · out_h · out_w == 1``, i.e. the fc layer and the gates' layers
of the CIFAR ResNets) do not run in the window-parallel dataflow, where they would use one of ``windows`` SIP
columns and take ``a`` cycles per step. docs/hardware.md §2.2: Stripes has no speed-up on FC layers (same time as its
bit-parallel twin) [memory]; docs/hardware.md §2.4: Loom's FC time scales with the weight precision only,
``cycles_bitparallel_16x16 · w/16`` [paper abstract]. Both follow from one rule, which this model uses: an FC layer
has no weight reuse, so it is bound by the weight-buffer bandwidth of the equal-peak twin (``pe_width`` bits per lane
per filter slot per cycle). It runs on the twin's geometry (``parallel_twin``: ``lanes`` × twin filters, one
window), and each twin step takes ``ceil(a/pe_width) · stored_w / pe_width`` cycles, where ``stored_w`` is the
stored weight width: ``ceil(w/pe_width)·pe_width`` for Stripes (bit-parallel weights; so the twin's cycles exactly)
and ``w`` for Loom (bit-serial weights; so the twin's cycles × w/16 for w ≤ 16, rounded up once per layer)
[our assumption for the mechanism]. A preset whose geometry has no integer twin keeps the window dataflow on FC
layers. The SIP work (active SIP-cycles) is the same in both dataflows: ``serial_cycles`` per (filter, window) per
``lanes`` chunk.

DNNsim's schedules (reference presets ``dnnsim_*``, isakedo/DNNsim @4748a60; docs/hardware.md "DNNsim reference"):
with ``array.fc_dataflow = "columns"`` a fully connected layer runs as DNNsim's ``process_linear`` instead of on the
twin: its steps (one chunk of ``lanes`` inputs × the tiles' ``filters·tiles`` filters) start one a cycle on
``windows`` rotating columns (``column_pipeline_cycles``). With ``array.trim_group = "step"`` a dynamic-precision
preset trims each step to its widest activation (and with ``dynamic_weights`` its widest weight), as DNNsim's
ShapeShifter and Loom do; ``stepwise_cost`` prices a layer from those per-step widths
(``cost_models.step_widths`` computes them from the data).

Compute energy (docs/hardware.md §5.3: E = cycles · #SIPs_active · e_SIP_cycle): the ``tiles·filters·windows`` SIPs
are the units; a SIP is active for ``serial_cycles`` cycles per step in which it holds a real (filter, window) pair and
a chunk of up to ``lanes`` input channels; the other SIP-cycles of the compute cycles are idle and cost
``idle_unit_cycle_pj``. Loom, like Stripes, fills only ``K`` of its ``filters·tiles`` = 256 filter slots per step:
CIFAR ResNets have K ≤ 64, so at least 3/4 of the SIPs idle and Loom (1/8 of Stripes' 16-bit peak) can be slower
than the 16-bit bit-parallel baseline on those layers (``tests/test_cost_models.py`` states it on ResNet-38).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from cost_models._tiling import Mapping, Search
from cost_models.preset import ParallelArray, Preset, SerialArray
from cost_models.step_widths import pipelined_cycles
from dfs_sim.errors import ConfigError

if TYPE_CHECKING:
    from cost_models.pricing import LayerCost
    from dfs_sim.layer_table import ConvLayer

__all__ = [
    "serial_cycles",
    "array_mapping",
    "parallel_twin",
    "twin_filters",
    "column_pipeline_cycles",
    "settle_fc_columns",
    "stepwise_compute",
    "stepwise_cost",
]


def serial_cycles(array: SerialArray, a_bits: int, w_bits: int) -> int:
    """Cycles per step: Stripes ``ceil(a/b)·ceil(w/pe_width)``, Loom ``ceil(a/b)·w``.

    Stripes: one activation bit per cycle, ``min(a, 16)`` cycles per step (DNNsim ``Stripes::process_tiles``,
    docs/hardware.md §2.2) [repo]; ``b = act_bits_per_cycle`` generalises it (1 for Stripes). Weights are
    ``pe_width`` bits parallel; a wider weight (32-bit full precision) is split into ``ceil(w/pe_width)`` passes, each
    re-streaming the activation bits [our assumption: the usual multi-pass decomposition, as for the bit-parallel
    array]. Loom: ``ceil(a_eff/b)·w`` cycles per step (DNNsim ``Loom::process_mmul``, docs/hardware.md §2.4) [repo],
    static precision here.
    """
    act_passes = -(-a_bits // array.act_bits_per_cycle)
    if array.variant == "loom":
        return act_passes * w_bits
    return act_passes * -(-w_bits // array.pe_width)


def twin_filters(array: SerialArray) -> int | None:
    """Filters per tile of the equal-peak bit-parallel twin: ``filters·windows / serial_cycles(pe, pe)``, or
    ``None`` when that is not a positive integer. Equal peak: the serial array does ``tiles·filters·windows·lanes``
    1-bit-serial products per cycle and needs ``serial_cycles(pe, pe)`` cycles per ``pe``-bit MAC (docs/hardware.md
    §2.2, §2.4: speed-ups 16/a and 256/(a·w) are quoted against this twin)."""
    filters, remainder = divmod(array.filters * array.windows, serial_cycles(array, array.pe_width, array.pe_width))
    return None if remainder or filters < 1 else filters


def array_mapping(
    preset: Preset,
    in_ch: int,
    a_bits: int,
    w_bits: int,
    *,
    layer_windows: int = 1,
    serial_a_bits: int | None = None,
    **common,
) -> Mapping:
    """Mapping onto the SIP array (window dataflow, or the FC rule for one-window layers; module docstring), with
    the SIPs as the units of the compute energy.

    ``serial_a_bits``: the activation bits the SIPs actually stream, when the data needs fewer than the stored
    ``a_bits`` (dynamic precision: Dynamic Stripes, arXiv 1706.00504, and Loom's runtime trimming detect the
    leading zeros of each group of activations and skip those cycles [paper abstracts, docs/hardware.md §2.3]).
    Storage and traffic stay at ``a_bits``."""
    array: SerialArray = preset.array
    serial_a = a_bits if serial_a_bits is None else serial_a_bits
    sips = array.tiles * array.filters * array.windows
    work = serial_cycles(array, serial_a, w_bits)
    twin = twin_filters(array)
    if layer_windows == 1 and array.fc_dataflow == "columns":
        # DNNsim process_linear: the search sees the columns' throughput, ceil(steps · work / windows);
        # settle_fc_columns then puts in the exact pipeline
        cols, windows, temporal, temporal_div = array.filters * array.tiles, 1, work, array.windows
    elif layer_windows == 1 and twin is not None:
        pe = array.pe_width
        stored_w = w_bits if array.variant == "loom" else -(-w_bits // pe) * pe
        cols, windows, temporal, temporal_div = twin * array.tiles, 1, -(-serial_a // pe) * stored_w, pe
    else:
        cols, windows, temporal, temporal_div = array.filters * array.tiles, array.windows, work, 1
    return Mapping(
        rows=array.lanes,
        cols=cols,
        windows=windows,
        temporal=temporal,
        temporal_div=temporal_div,
        pack=1,
        im2col=in_ch <= array.im2col_max_in_ch,
        a_bits=a_bits,
        w_bits=w_bits,
        units=sips,
        unit_reduction=array.lanes,
        unit_temporal=work,
        **common,
    )


def parallel_twin(preset: Preset, name: str | None = None) -> Preset:
    """The bit-parallel preset with the same peak 16b×16b MACs/cycle, tiles, lanes, buffers, DRAM and clock.

    Peak of the serial array at ``pe_width`` bits: ``tiles·filters·windows·lanes / serial_cycles(pe, pe)``. The twin
    has one window and ``twin_filters`` = ``filters·windows / serial_cycles`` filters per tile: DaDianNao (16
    filters) for Stripes (docs/hardware.md §2.1, §2.2), 2 filters for Loom at 2 activation bits per cycle
    (docs/hardware.md §2.4: "vs a bit-parallel accelerator with the same peak"). Its energy section is copied unchanged
    (SIP prices on multipliers), so compare its cycles, not its compute energy.
    """
    array: SerialArray = preset.array
    filters = twin_filters(array)
    if filters is None:
        raise ConfigError(preset.source or preset.name, "array: no integer bit-parallel twin for this geometry")
    twin_array = ParallelArray(
        tiles=array.tiles,
        filters=filters,
        windows=1,
        lanes=array.lanes,
        pe_width=array.pe_width,
        im2col_max_in_ch=array.im2col_max_in_ch,
    )
    return preset.replace(name=name or f"{preset.name}_parallel_twin", kind="bitparallel", array=twin_array)


def column_pipeline_cycles(steps: int, step_cycles: int, columns: int) -> int:
    """Compute cycles of ``steps`` equal steps of ``step_cycles`` cycles on DNNsim's rotating columns
    (``Stripes::process_tiles`` and ``Loom::process_linear`` / ``ShapeShifter::process_linear`` with ``linear``;
    ``getCycles`` takes the last column's finish): step ``i`` goes to column ``i % columns`` and starts one cycle
    after step ``i − 1`` or when its column is free, whichever is later, so it starts at
    ``(i // columns) · max(step_cycles, columns) + i % columns``; the layer ends when the last step does.
    ``cost_models.step_widths.pipelined_cycles`` is the same schedule for unequal steps."""
    if steps < 1:
        return 0
    last = steps - 1
    return (last // columns) * max(step_cycles, columns) + last % columns + step_cycles


def _fc_columns(preset: Preset, layer_windows: int) -> bool:
    array = preset.array
    return isinstance(array, SerialArray) and array.fc_dataflow == "columns" and layer_windows == 1


def settle_fc_columns(
    preset: Preset, found: Search, mapping: Mapping, in_ch: int, out_ch: int, layer_windows: int
) -> Search:
    """``found`` with DNNsim's pipelined compute cycles for a fully connected layer on a preset with
    ``fc_dataflow = "columns"`` (``column_pipeline_cycles``: ``ceil(in_ch/lanes) · ceil(out_ch/(filters·tiles))``
    steps of ``mapping.unit_temporal`` cycles, filter sets outer as in DNNsim's ``WindowFirstOutS``
    ``still_on_chip_data_linear_layer``); stalls and cycles follow the new compute (roofline, as ``_tiling``), the
    extra unit-cycles are idle. Any other layer or preset: ``found`` unchanged."""
    if not _fc_columns(preset, layer_windows):
        return found
    array: SerialArray = preset.array
    steps = -(-in_ch // array.lanes) * -(-out_ch // (array.filters * array.tiles))
    compute = column_pipeline_cycles(steps, mapping.unit_temporal, array.windows)
    stalls = max(0, found.mem_cycles - compute) + found.fill_drain_cycles
    extra_idle = (compute - found.compute_cycles) * mapping.units
    return dataclasses.replace(
        found,
        compute_cycles=compute,
        stall_cycles=stalls,
        cycles=compute + stalls,
        energy_pj=found.energy_pj + extra_idle * preset.energy.idle_unit_cycle_pj,
    )


def _real_per_set(total: int, per_set: int) -> np.ndarray:
    """How many of ``total`` items each set of ``per_set`` holds (the last set may be partial)."""
    sets = -(-total // per_set)
    real = np.full(sets, per_set, dtype=np.int64)
    real[-1] = total - per_set * (sets - 1)
    return real


def stepwise_compute(
    layer: ConvLayer,
    preset: Preset,
    w_bits: int,
    a_bits: int,
    act_widths: np.ndarray,
    wgt_widths: np.ndarray | None = None,
) -> tuple[int, int]:
    """(compute cycles, active SIP-cycles) of ``layer`` on a ``trim_group = "step"`` preset whose steps stream the
    given widths, DNNsim's ShapeShifter and Loom schedules (isakedo/DNNsim @4748a60):

    * a step's cycles: ``ceil(width / act_bits_per_cycle)`` activation passes (``ShapeShifter::process_mmul``: the
      widest activation, ``slowest_column``; ``Loom::process_mmul``: ``ceil(width / pe_serial_bits)``) times, for
      Stripes, the ``ceil(w/pe_width)`` weight passes (one for w ≤ 16, as DNNsim), for Loom ``w`` weight bits, or,
      with ``dynamic_weights``, the step's widest weight (``Loom::process_mmul`` with ``DYNAMIC_WEIGHTS``);
    * a convolution: ``act_widths`` (window sets, ``ceil(C/lanes)·k²`` steps) as
      ``cost_models.step_widths.conv_act_step_widths`` gives them, ``wgt_widths`` (filter sets of
      ``filters·tiles``, steps) as ``conv_wgt_step_widths``; every (window set, step) runs once per filter set and
      the compute cycles are the sum (all tiles step together: ``process_mmul`` takes the slowest tile);
    * a fully connected layer (``fc_dataflow = "columns"`` only): ``act_widths`` and ``wgt_widths`` one per step in
      execution order (``fc_act_step_widths``, ``fc_wgt_step_widths``), pipelined on the rotating columns
      (``cost_models.step_widths.pipelined_cycles``, ``Loom::process_linear``).

    Active SIP-cycles: every real (filter, window) pair of a step keeps its SIP busy for the step's cycles."""
    array: SerialArray = preset.array
    if not (preset.kind == "bitserial" and array.dynamic_precision and array.trim_group == "step"):
        raise ValueError(f'preset {preset.name!r} does not trim per step (array.trim_group = "step")')
    if a_bits > array.pe_width:
        raise ValueError(f"per-step widths need a_bits <= pe_width ({array.pe_width}), got {a_bits}")
    act = np.asarray(act_widths, dtype=np.int64)
    if act.size and (act.min() < 1 or act.max() > a_bits):
        raise ValueError(f"activation step widths must lie in 1..a_bits = {a_bits}")
    if array.dynamic_weights:
        if wgt_widths is None:
            raise ValueError(f"preset {preset.name!r} trims weights too (array.dynamic_weights): give wgt_widths")
        wgt = np.asarray(wgt_widths, dtype=np.int64)
        if wgt.size and (wgt.min() < 1 or wgt.max() > w_bits):
            raise ValueError(f"weight step widths must lie in 1..w_bits = {w_bits}")
    passes = -(-act // array.act_bits_per_cycle)
    per_pass = -(-w_bits // array.pe_width) if array.variant == "stripes" else w_bits
    filters = _real_per_set(layer.out_ch, array.filters * array.tiles)
    chunks = -(-layer.in_ch // array.lanes)
    positions = layer.batch * layer.out_h * layer.out_w
    if positions == 1:
        if layer.kernel != 1 or not _fc_columns(preset, positions):
            raise ValueError(
                f'preset {preset.name!r}: per-step widths of an FC layer need kernel 1 and fc_dataflow = "columns"'
            )
        if act.shape != (filters.size * chunks,):
            raise ValueError(f"FC step widths: expected {filters.size * chunks} steps, got shape {act.shape}")
        step = passes * (wgt if array.dynamic_weights else per_pass)
        busy = np.repeat(filters, chunks)
        return pipelined_cycles(step, array.windows), int((busy * step).sum())
    if layer.groups != 1:
        raise ValueError("per-step widths: grouped convolutions are not modelled")
    windows = _real_per_set(positions, array.windows)
    steps = chunks * layer.kernel * layer.kernel
    if act.shape != (windows.size, steps):
        raise ValueError(f"conv step widths: expected shape {(windows.size, steps)}, got {act.shape}")
    if not array.dynamic_weights:
        compute = int(passes.sum()) * per_pass * filters.size
        active = int(windows @ passes.sum(axis=1)) * per_pass * int(filters.sum())
        return compute, active
    if wgt.shape != (filters.size, steps):
        raise ValueError(f"conv weight step widths: expected shape {(filters.size, steps)}, got {wgt.shape}")
    compute = int(passes.sum(axis=0) @ wgt.sum(axis=0))
    active = int((windows @ passes) @ (filters @ wgt))
    return compute, active


def stepwise_cost(
    layer: ConvLayer,
    preset: Preset | str,
    w_bits: int,
    a_bits: int,
    act_widths: np.ndarray,
    wgt_widths: np.ndarray | None = None,
) -> LayerCost:
    """Cost of ``layer`` at (w_bits, a_bits) when its steps stream the given per-step widths (``stepwise_compute``):
    the static mapping and traffic of ``layer_cost`` (storage stays at the option's bits; a compiler maps before it
    sees the data), with the compute cycles, the active and idle SIP-cycles and the roofline stalls of the trimmed
    steps. A static preset (no per-step trimming: DaDianNao, Stripes) ignores the widths: ``layer_cost``."""
    from cost_models import _energy
    from cost_models.preset import load_preset
    from cost_models.pricing import layer_cost, retimed

    preset = load_preset(preset)
    static = layer_cost(layer, preset, w_bits, a_bits)
    if not preset.dynamic_precision:
        return static
    compute, active = stepwise_compute(layer, preset, w_bits, a_bits, act_widths, wgt_widths)
    array: SerialArray = preset.array
    unit_cycles = compute * array.tiles * array.filters * array.windows
    return retimed(
        static,
        compute,
        unit_cycles=unit_cycles,
        active_unit_cycles=active,
        e_compute_pj=_energy.price_compute(active, unit_cycles - active, preset),
    )
