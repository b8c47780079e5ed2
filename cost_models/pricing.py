"""What one layer costs on one preset: ``layer_cost`` at (w_bits, a_bits), ``option_cost`` for a DFS option.

``layer_cost`` maps the layer onto the preset's array (kind registry), searches the tiling (``_tiling.search``: loop
order × power-of-two tiles, roofline stalls with first fill and last drain) and prices the action counts
(``_energy``). Results are memoised per (layer shape, preset, bits): equal shapes in a network are costed once.

Choices (also recorded in each preset's ``[policy]``):

* Outputs (``output_bits``): ``"act"`` (default, docs/design.md §3): final outputs leave at the layer's activation bits,
  partial sums spill at ``acc_bits`` only when the reduction is tiled outside the output tile; ``"acc"``: the public
  Bit Fusion simulator's policy, every output tile is read and written as ``acc_bits`` partial sums [repo].
* Search objective (``search_objective``): ``"cycles"`` (the public simulator: fewest cycles, then least energy;
  the anchor tests use it), ``"energy"`` or ``"edp"`` (energy × cycles; the shipped presets' default). See
  docs/hardware.md §5.8 and the preset files for the reasons.
* Compute energy: active unit-cycles at ``unit_cycle_pj``, idle ones at ``idle_unit_cycle_pj`` (docs/hardware.md §5.2,
  §5.3); which units count as active is the kind module's ``array_mapping`` (``bitfusion``, ``bitserial``,
  ``bitparallel``).
* SRAM reads are counted per MAC by the public simulator's stationarity proxy (docs/hardware.md §1.3): the
  non-stationary operands are read once per MAC at their bit width, with no sharing of a read among the filters or
  windows that a broadcast would feed [repo]. On broadcast arrays (DaDianNao, Stripes, Loom: one activation read feeds
  ``filters·tiles`` SIPs, one weight read ``windows`` SIPs) this overstates the buffer reads; it is kept as the
  simulator's proxy so that every kind is counted the same way.
* First fill and last drain (``fill_drain``): ``"tile"`` (default): only the first tile of each operand and the last
  output tile are exposed; ``"promoted"``: the public simulator's whole promoted blocks [repo]. See
  docs/hardware.md §5.8.
* Full precision (``fp_bits``) on integer hardware: ``"int32"`` (default): a 32×32 integer MAC by the array's own
  extension (Bit Fusion temporal fusion: 16 passes at pmax 8; bit-serial: 32 serial bits; bit-parallel 16-bit:
  4 passes), traffic at 32 bits. Reason: none of these designs has a float unit, and int32 is the cheapest exact
  stand-in for the fp32 layer the paper runs [our assumption, docs/hardware.md §5.4]. ``"fp_unit"``: traffic as int32,
  but the MACs run on a separate fp32 unit at ``fp_macs_per_cycle`` and ``fp_mac_pj`` (Horowitz 45 nm) [docs/hardware.md
  §5.4].
* Skip (``skip``): ``"alias"`` (default): a skipped layer costs nothing, its output is its input in place
  [docs/design.md §3]; ``"copy"``: the input is read from and written back to DRAM at ``skip_copy_bits`` (DRAM-bound
  cycles).
* Storage width (``min_storage_bits``, bit-parallel arrays only): 1 (default): operands move at the option's own bits;
  16 on a 16-bit array: a fixed-width design stores and moves narrower operands in full words [our assumption,
  ``loom_paper_twin``].
* Grouped and depthwise convolutions (``_grouped_cost``): either the groups run one after another (each a small
  dense convolution), or ``P`` groups at a time are packed block-diagonally into one dense pass (``P·C/g`` reduction
  lanes × ``P·K/g`` output columns, as many as the array holds), whichever the preset's search objective prefers
  [our assumption; see ``_grouped_cost``].
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

from cost_models import _energy, _tiling, bitserial
from cost_models._registry import array_mapping_for
from cost_models.preset import Preset, load_preset
from dfs_sim.layer_table import ConvLayer, output_size
from dfs_sim.options import FULL_PRECISION_BITS, Option

__all__ = ["METRICS", "LayerCost", "effective_cost", "layer_cost", "option_cost", "skip_cost", "trims"]

# what a cost table holds per block and option, and a replay sums per input; the unit-cycles give the utilisation
METRICS = ("cycles", "e_compute_pj", "e_sram_pj", "e_dram_pj", "dram_bits", "unit_cycles", "active_unit_cycles")
_SRAM_FIELDS = (
    "ibuf_read_bits",
    "ibuf_write_bits",
    "wbuf_read_bits",
    "wbuf_write_bits",
    "obuf_read_bits",
    "obuf_write_bits",
)


class LayerShape(NamedTuple):
    """What a layer's cost depends on (not its name, block or role): the key of the memoised cost functions, so equal
    shapes in a network are costed once."""

    in_ch: int
    out_ch: int
    in_h: int
    in_w: int
    kernel: int
    stride: int
    padding: int
    groups: int
    batch: int

    @classmethod
    def of(cls, layer: ConvLayer) -> LayerShape:
        return cls(
            layer.in_ch,
            layer.out_ch,
            layer.in_h,
            layer.in_w,
            layer.kernel,
            layer.stride,
            layer.padding,
            layer.groups,
            layer.batch,
        )

    @property
    def out_h(self) -> int:
        return output_size(self.in_h, self.kernel, self.stride, self.padding)

    @property
    def out_w(self) -> int:
        return output_size(self.in_w, self.kernel, self.stride, self.padding)

    def packed(self, groups_per_pass: int) -> LayerShape:
        """The dense layer that runs ``groups_per_pass`` groups of this grouped layer block-diagonally in one pass."""
        return self._replace(
            in_ch=groups_per_pass * self.in_ch // self.groups,
            out_ch=groups_per_pass * self.out_ch // self.groups,
            groups=1,
        )


@dataclass(frozen=True)
class LayerCost:
    """Cycles, traffic (bits) and energy (pJ) of one layer at one precision; sums of layers add field by field."""

    cycles: int = 0
    compute_cycles: int = 0
    stall_cycles: int = 0
    e_compute_pj: float = 0.0
    e_sram_pj: float = 0.0
    e_dram_pj: float = 0.0
    dram_read_bits: int = 0
    dram_write_bits: int = 0
    ibuf_read_bits: int = 0
    ibuf_write_bits: int = 0
    wbuf_read_bits: int = 0
    wbuf_write_bits: int = 0
    obuf_read_bits: int = 0
    obuf_write_bits: int = 0
    unit_cycles: int = 0  # compute-unit cycles, active and idle (compute cycles × the array's units)
    active_unit_cycles: int = 0  # of which doing mapped work (the rest are idle); compute energy prices both
    macs: int = 0
    mem_cycles: int = 0  # DRAM cycles between the first fill and the last drain (roofline term)
    fill_drain_cycles: int = 0  # first fill + last drain, never hidden by compute

    @property
    def energy_pj(self) -> float:
        return self.e_compute_pj + self.e_sram_pj + self.e_dram_pj

    @property
    def dram_bits(self) -> int:
        return self.dram_read_bits + self.dram_write_bits

    def metrics(self) -> tuple[float, ...]:
        """The values of ``METRICS`` in order."""
        return tuple(float(getattr(self, name)) for name in METRICS)

    def __add__(self, other: LayerCost) -> LayerCost:
        return LayerCost(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(self)})

    def scaled(self, factor: int) -> LayerCost:
        return LayerCost(**{f.name: getattr(self, f.name) * factor for f in dataclasses.fields(self)})


def layer_cost(layer: ConvLayer, preset: Preset | str, w_bits: int, a_bits: int) -> LayerCost:
    """Cost of ``layer`` on ``preset`` with ``w_bits``-bit weights and ``a_bits``-bit activations (integer MACs).

    Raises ``ValueError`` for bits < 1 and when no tile of the layer fits the buffers.
    """
    preset = load_preset(preset)
    _check_bits(w_bits, a_bits)
    shape = LayerShape.of(layer)
    if shape.groups > 1:
        return _grouped_pick(shape, preset, w_bits, a_bits)[0]
    return _cached_cost(shape, preset, w_bits, a_bits)


def _check_bits(w_bits: int, a_bits: int) -> None:
    for name, bits in (("w_bits", w_bits), ("a_bits", a_bits)):
        if isinstance(bits, bool) or not isinstance(bits, int) or bits < 1:
            raise ValueError(f"{name} must be a positive integer, got {bits!r}")


def option_cost(layer: ConvLayer, preset: Preset | str, option: Option) -> LayerCost:
    """Cost of running ``layer`` at a DFS option: skip, quantized (w, a), or full precision per ``fp_bits``.

    For options with equal weight and activation bits (all DFS and SkipNet options) the mapping-reuse rule of
    ``_ladder_cost`` applies, so a cost table never charges an option more than an option with more bits.
    """
    preset = load_preset(preset)
    if option.is_skip:
        return skip_cost(layer, preset)
    if option.w_bits == option.a_bits and option.w_bits <= FULL_PRECISION_BITS:
        _check_bits(option.w_bits, option.a_bits)
        ladder = _grouped_ladder if layer.groups > 1 else _ladder_cost
        base = ladder(LayerShape.of(layer), preset, option.w_bits)[0]
    else:
        base = layer_cost(layer, preset, option.w_bits, option.a_bits)
    if option.float and preset.policy.fp_bits == "fp_unit":
        return _on_fp_unit(layer, preset, option.w_bits, option.a_bits, base)
    return base


def effective_cost(layer: ConvLayer, preset: Preset | str, option: Option, effective_bits: float) -> LayerCost:
    """Cost of ``layer`` at ``option`` on a dynamic-precision bit-serial preset when each step of the input streams,
    on average, ``effective_bits`` activation bits (a whole or fractional number, the trace's mean in eighths): the
    static mapping of ``option_cost`` (a compiler maps before it sees the data), with the steps streaming the
    measured bits instead of ``a``; storage, traffic and buffer accesses stay at the option's ``a`` bits.

    Sources: Dynamic Stripes (arXiv 1706.00504) and Loom (DAC 2018) detect at run time the precision a group of
    activations needs (leading zeros trimmed) and stream only those bits [paper abstracts, docs/hardware.md §2.3];
    DNNsim's ShapeShifter and Loom take each step's widest activation (``cost_models.step_widths``).

    How a mean is charged, exactly: a step streaming ``x`` bits at ``b = act_bits_per_cycle`` bits a cycle takes
    ``ceil(x/b)`` passes, and on the window dataflow a layer's compute cycles are (steps × filter sets) × passes ×
    the weight passes or bits (``cost_models.bitserial.stepwise_compute``), linear in the passes. The export's step
    measurement (``dfs_sim.model.precision``, ``--precision-measure step``) records the mean over steps of
    ``b·ceil(x/b)``, each convolution weighted by its steps × filter sets, so ``effective_bits / b`` is the mean
    number of passes. This function therefore prices ``effective_bits`` as ``effective_bits / b`` passes: at a
    multiple of ``b`` by the search with that many bits streamed (for ``b = 1`` every whole bit), elsewhere the
    compute cycles, unit-cycles, active unit-cycles and compute energy linearly between the two neighbouring
    multiples of ``b`` (exact, being linear in the passes), and the cycles as compute + ``max(0, mem − compute)`` +
    fill/drain from those compute cycles (the roofline of ``cost_models._tiling``, exact). So the compute cycles
    equal DNNsim's sum over steps whenever the preset's steps are DNNsim's (the ``dnnsim_*`` presets;
    ``tests/test_step_precision.py``). Below ``b`` bits a step still takes one pass. A ``"position"``-measured trace
    (the mean group bit length, not rounded up to ``b``) is charged the same way, which on a ``b > 1`` preset
    undercounts the passes its rounding would add [our assumption; docs/hardware.md "DNNsim reference"]. Weights
    stay at ``w`` bits even on a ``dynamic_weights`` preset (the trace records activations only; per-step weight
    widths are priced by ``cost_models.bitserial.stepwise_cost``). Options that cannot trim (``trims``) cost
    ``option_cost``.
    """
    preset = load_preset(preset)
    if not preset.dynamic_precision:
        raise ValueError(f"preset {preset.name!r} does not model dynamic precision (array.dynamic_precision)")
    if (
        isinstance(effective_bits, bool)
        or not isinstance(effective_bits, (int, float))
        or not math.isfinite(effective_bits)
        or effective_bits < 1
    ):
        raise ValueError(f"effective_bits must be a number >= 1, got {effective_bits!r}")
    if not trims(option, preset):
        return option_cost(layer, preset, option)
    b = preset.array.act_bits_per_cycle
    full = b * -(-option.a_bits // b)  # the static cost streams ceil(a/b) passes
    if effective_bits >= full:
        return option_cost(layer, preset, option)
    low = max(b * math.floor(effective_bits / b), b)
    if low >= effective_bits:
        return _streamed(layer, preset, option, low)
    return _between(
        _streamed(layer, preset, option, low), _streamed(layer, preset, option, low + b), (effective_bits - low) / b
    )


def _streamed(layer: ConvLayer, preset: Preset, option: Option, bits: int) -> LayerCost:
    """``layer`` at ``option`` with ``bits`` (a multiple of ``b``, at least ``b``) activation bits streamed per step."""
    if bits >= option.a_bits:
        return option_cost(layer, preset, option)
    return _effective(LayerShape.of(layer), preset, option.w_bits, option.a_bits, bits)


_LINEAR_FIELDS = ("compute_cycles", "e_compute_pj", "unit_cycles", "active_unit_cycles")


def _between(low: LayerCost, high: LayerCost, fraction: float) -> LayerCost:
    """``low`` with the fields linear in the streamed passes (``_LINEAR_FIELDS``) a ``fraction`` of the way to
    ``high``, and the roofline cycles from those compute cycles (``effective_cost``); the rest (traffic, SRAM,
    DRAM, memory cycles) is the same at both ends (one mapping, storage at the option's bits)."""
    moved = {
        name: getattr(low, name) + fraction * (getattr(high, name) - getattr(low, name)) for name in _LINEAR_FIELDS
    }
    compute = moved["compute_cycles"]
    stalls = max(0.0, low.mem_cycles - compute) + low.fill_drain_cycles
    return dataclasses.replace(low, cycles=compute + stalls, stall_cycles=stalls, **moved)


def trims(option: Option, preset: Preset) -> bool:
    """Whether ``preset`` streams fewer than ``option``'s activation bits when the data needs fewer: a dynamic-precision
    array and a quantized option no wider than its SIPs' ``pe_width`` (skip computes nothing; full precision is
    32-bit passes, not one serial stream) [our assumption, docs/hardware.md §2.3]."""
    return preset.dynamic_precision and not (option.is_skip or option.float) and option.a_bits <= preset.array.pe_width


@functools.lru_cache(maxsize=65536)
def _effective(shape: LayerShape, preset: Preset, w_bits: int, a_bits: int, serial_a_bits: int) -> LayerCost:
    """``effective_cost`` of one shape: the static pick (ladder or own search; for grouped shapes its packing) run
    with ``serial_a_bits`` streamed."""
    if shape.groups > 1:
        if w_bits == a_bits:
            packed = _grouped_ladder(shape, preset, a_bits)[1]
        else:
            packed = _grouped_pick(shape, preset, w_bits, a_bits)[1]
        return _grouped_cost(shape, packed, lambda dense: _effective(dense, preset, w_bits, a_bits, serial_a_bits))
    if w_bits == a_bits:
        found = _ladder_cost(shape, preset, a_bits)[1]
    else:
        found = _search_pick(shape, preset, w_bits, a_bits)[1]
    return _search_cost(shape, preset, w_bits, a_bits, fixed=found, serial_a_bits=serial_a_bits)[0]


def skip_cost(layer: ConvLayer, preset: Preset | str) -> LayerCost:
    """A skipped layer: nothing under ``skip = "alias"``; a DRAM read and write of its input under ``"copy"``.

    ``alias`` (docs/design.md §3 default; docs/hardware.md §5.4 "alias"): the identity output is the block input,
    already where the consumer reads it, so the skip moves nothing and the consumer pays its own normal read. ``copy``
    (docs/hardware.md §5.4 "copy"): the input is read from and written back to DRAM at ``skip_copy_bits``; its cycles
    are the DRAM transfer time (read then write, no compute to hide it) [our assumption]. Either way no compute
    (docs/hardware.md §5.4: cycles_comp = 0, E_comp = 0), so a skip costs less than any execution.
    """
    preset = load_preset(preset)
    if preset.policy.skip == "alias":
        return LayerCost()
    bits = layer.input_count * preset.policy.skip_copy_bits
    cycles = 2 * math.ceil(bits / preset.dram.bits_per_cycle)
    return LayerCost(
        cycles=cycles,
        stall_cycles=cycles,
        e_dram_pj=_energy.price_dram(2 * bits, preset),
        dram_read_bits=bits,
        dram_write_bits=bits,
    )


@functools.lru_cache(maxsize=65536)
def _search_pick(shape: LayerShape, preset: Preset, w_bits: int, a_bits: int) -> tuple[LayerCost, _tiling.Search]:
    """The search's own pick for one layer shape at (w_bits, a_bits); the one memo of ``layer_cost`` and the ladder."""
    return _search_cost(shape, preset, w_bits, a_bits)


def _cached_cost(shape: LayerShape, preset: Preset, w_bits: int, a_bits: int) -> LayerCost:
    return _search_pick(shape, preset, w_bits, a_bits)[0]


def _search_cost(
    shape: LayerShape,
    preset: Preset,
    w_bits: int,
    a_bits: int,
    fixed: _tiling.Search | None = None,
    serial_a_bits: int | None = None,
) -> tuple[LayerCost, _tiling.Search]:
    """Map, search (or evaluate the ``fixed`` mapping) and price one layer shape (one group of a grouped shape;
    ``_grouped_cost`` puts the groups together); ``serial_a_bits`` as in ``effective_cost``."""
    (batch, out_h, out_w, group_in, group_out, kernel, stride), mapping = _search_problem(
        shape, preset, w_bits, a_bits, serial_a_bits
    )
    try:
        found = _tiling.search(batch, out_h, out_w, group_in, group_out, kernel, stride, mapping, fixed=fixed)
    except ValueError:
        raise ValueError(
            f"preset {preset.name!r}: no tile of layer {tuple(shape)} fits the buffers at w={w_bits}, a={a_bits}"
        ) from None
    # DNNsim's pipelined FC columns (array.fc_dataflow = "columns"); any other preset or layer: unchanged
    found = bitserial.settle_fc_columns(preset, found, mapping, group_in, group_out, batch * out_h * out_w)
    sram = {name: getattr(found, name) for name in _SRAM_FIELDS}
    unit_cycles = found.compute_cycles * mapping.units
    active = found.active_unit_cycles
    cost = LayerCost(
        cycles=found.cycles,
        compute_cycles=found.compute_cycles,
        stall_cycles=found.stall_cycles,
        e_compute_pj=_energy.price_compute(active, unit_cycles - active, preset),
        e_sram_pj=_energy.price_sram(sram, preset),
        e_dram_pj=_energy.price_dram(found.dram_read_bits + found.dram_write_bits, preset),
        dram_read_bits=found.dram_read_bits,
        dram_write_bits=found.dram_write_bits,
        unit_cycles=unit_cycles,
        active_unit_cycles=active,
        macs=batch * out_h * out_w * group_out * group_in * kernel * kernel,
        mem_cycles=found.mem_cycles,
        fill_drain_cycles=found.fill_drain_cycles,
        **sram,
    )
    return cost, found


# The search's dims: batch, out_h, out_w, in_ch and out_ch of one group, kernel, stride.
SearchDims = tuple[int, int, int, int, int, int, int]


def search_problem(
    layer: ConvLayer, preset: Preset | str, w_bits: int, a_bits: int
) -> tuple[SearchDims, _tiling.Mapping]:
    """The (dims, mapping) that the tiling search solves for one layer; for benchmarks and tests of the search."""
    return _search_problem(LayerShape.of(layer), load_preset(preset), w_bits, a_bits)


def _search_problem(
    shape: LayerShape, preset: Preset, w_bits: int, a_bits: int, serial_a_bits: int | None = None
) -> tuple[SearchDims, _tiling.Mapping]:
    batch, out_h, out_w = shape.batch, shape.out_h, shape.out_w
    group_in, group_out = shape.in_ch // shape.groups, shape.out_ch // shape.groups
    policy, buffers = preset.policy, preset.buffers
    # a fixed-width memory moves narrow operands in full words (bit-parallel only, where compute is the same)
    w_bits, a_bits = max(w_bits, policy.min_storage_bits), max(a_bits, policy.min_storage_bits)
    kib_bits = 1024 * 8 * buffers.fit_fraction
    common = {
        "pad_outputs": buffers.pad_outputs_to_cols,
        "acc_bits": policy.acc_bits,
        "out_bits": a_bits,
        "output_policy": _tiling.ACC if policy.output_bits == "acc" else _tiling.ACT,
        "fill_rule": _tiling.PROMOTED if policy.fill_drain == "promoted" else _tiling.TILE,
        "objective": _tiling.OBJECTIVES[policy.search_objective],
        "prices": _energy.search_prices(preset),
        "cap_act_bits": int(buffers.ibuf_kib * kib_bits),
        "cap_wgt_bits": int(buffers.wbuf_kib * kib_bits),
        "cap_out_bits": int(buffers.obuf_kib * kib_bits),
        "dram_bits_per_cycle": preset.dram.bits_per_cycle,
    }
    to_mapping = array_mapping_for(preset.kind)
    if serial_a_bits is not None:  # only bit-serial arrays stream fewer bits than they store
        common["serial_a_bits"] = serial_a_bits
    mapping = to_mapping(preset, group_in, a_bits, w_bits, layer_windows=batch * out_h * out_w, **common)
    return (batch, out_h, out_w, group_in, group_out, shape.kernel, shape.stride), mapping


def _dominates(low: LayerCost, high: LayerCost) -> bool:
    return low.cycles <= high.cycles and low.energy_pj <= high.energy_pj and low.dram_bits <= high.dram_bits


@functools.lru_cache(maxsize=65536)
def _ladder_cost(shape: LayerShape, preset: Preset, bits: int) -> tuple[LayerCost, _tiling.Search]:
    """Cost at ``bits``-bit weights and activations, never above the cost at ``bits + 1`` (up to 32).

    Rule [our assumption]: a compiler may always run a layer with the mapping it found for more bits (its tiles
    are smaller at fewer bits, so it fits). If the search's own pick at ``bits`` costs more cycles, energy or DRAM
    bits than the pick at ``bits + 1``, the ``bits + 1`` mapping (loop order, tiles, stationarity) is used instead.
    Reason: the cycle-first search trades large energy for a cycle or two of first fill, so without this rule
    fewer bits could be charged more energy on fast-DRAM presets.
    """
    picked = _search_pick(shape, preset, bits, bits)
    if bits >= FULL_PRECISION_BITS:
        return picked
    upper, upper_mapping = _ladder_cost(shape, preset, bits + 1)
    if _dominates(picked[0], upper):
        return picked
    try:
        reused = _search_cost(shape, preset, bits, bits, fixed=upper_mapping)
    except ValueError:
        return picked
    return reused if _dominates(reused[0], upper) else picked


def _packing_limit(shape: LayerShape, preset: Preset, w_bits: int, a_bits: int) -> int:
    """The most groups one pass of the array holds: ``min(groups, rows·pack // (C/g), cols // (K/g))``.

    ``rows·pack`` is the array's reduction width per cycle (input channels: Bit Fusion rows × spatial packing, SIP or
    multiplier lanes) and ``cols`` its output channels per cycle (Fusion-Unit columns, filter slots × tiles), both
    from the kind's ``array_mapping`` at these bits. Fewer bits never lower it (packing only grows)."""
    group_in, group_out = shape.in_ch // shape.groups, shape.out_ch // shape.groups
    mapping = _search_problem(shape.packed(1), preset, w_bits, a_bits)[1]
    return max(1, min(shape.groups, mapping.rows * mapping.pack // group_in, mapping.cols // group_out))


def _grouped_cost(shape: LayerShape, packed: int, dense_cost) -> LayerCost:
    """Cost of a grouped convolution run ``packed`` groups per pass: ``groups // packed`` passes of the packed dense
    layer plus one pass of the remaining groups, each costed by ``dense_cost(dense shape)``.

    Mapping [our assumption]: an array that reduces over input channels down its rows and spreads output channels
    across its columns runs ``packed`` groups at once by giving group ``j`` rows ``j·C/g …`` and columns ``j·K/g …``
    and zero weights everywhere else: a block-diagonal dense layer of ``packed·C/g → packed·K/g`` channels. The
    broadcast bit-serial and bit-parallel tiles (one activation lane set feeds every filter slot) run it the same
    way. ``packed = 1`` is the groups run one after another. The zeros are real work for these designs, none of which
    gates zero operands: the weights are laid out and fetched densely (``packed`` × the layer's weights) and the
    units that multiply them count as active; ``macs`` is the layer's own count.
    """
    passes, remainder = divmod(shape.groups, packed)
    total = dense_cost(shape.packed(packed)).scaled(passes)
    if remainder:
        total = total + dense_cost(shape.packed(remainder))
    group_in = shape.in_ch // shape.groups
    macs = shape.batch * shape.out_h * shape.out_w * shape.out_ch * group_in * shape.kernel * shape.kernel
    return dataclasses.replace(total, macs=macs)


def _objective_key(cost: LayerCost, preset: Preset) -> tuple[float, ...]:
    """Order of two whole-layer costs under the preset's ``search_objective``, as ``_tiling`` orders tilings."""
    objective = preset.policy.search_objective
    if objective == "cycles":
        return (cost.cycles, cost.energy_pj)
    if objective == "energy":
        return (cost.energy_pj, cost.cycles)
    return (cost.energy_pj * cost.cycles, cost.cycles, cost.energy_pj)


def _best_packing(shape, preset, packings, dense_cost) -> tuple[LayerCost, int]:
    """The cheapest of the ``packings`` by the objective (ties: the first, i.e. fewer groups per pass)."""
    costs = [(_grouped_cost(shape, packed, dense_cost), packed) for packed in packings]
    return min(costs, key=lambda pair: _objective_key(pair[0], preset))


@functools.lru_cache(maxsize=65536)
def _grouped_pick(shape: LayerShape, preset: Preset, w_bits: int, a_bits: int) -> tuple[LayerCost, int]:
    """A grouped layer at (w_bits, a_bits): one group at a time or packed to the array's limit, the better one."""
    limit = _packing_limit(shape, preset, w_bits, a_bits)
    packings = (1,) if limit == 1 else (1, limit)
    return _best_packing(shape, preset, packings, lambda dense: _cached_cost(dense, preset, w_bits, a_bits))


@functools.lru_cache(maxsize=65536)
def _grouped_ladder(shape: LayerShape, preset: Preset, bits: int) -> tuple[LayerCost, int]:
    """``_ladder_cost`` for grouped layers: the packing found for ``bits + 1`` is reused when the own pick at ``bits``
    would cost more (a packing that fits at more bits fits at fewer), and each packed pass is itself a ladder cost."""
    limit = _packing_limit(shape, preset, bits, bits)
    packings = (1,) if limit == 1 else (1, limit)

    def dense_cost(dense):
        return _ladder_cost(dense, preset, bits)[0]

    picked = _best_packing(shape, preset, packings, dense_cost)
    if bits >= FULL_PRECISION_BITS:
        return picked
    upper, upper_packing = _grouped_ladder(shape, preset, bits + 1)
    if _dominates(picked[0], upper) or upper_packing == picked[1]:
        return picked
    reused = _grouped_cost(shape, upper_packing, dense_cost), upper_packing
    return reused if _dominates(reused[0], upper) else picked


def retimed(base: LayerCost, compute: int, **changes) -> LayerCost:
    """``base`` with ``compute`` compute cycles and the rest of its mapping kept: the roofline stalls (memory beyond
    compute, plus the exposed fill and drain) follow [docs/hardware.md §5.6]; ``changes`` replace other fields."""
    stalls = max(0, base.mem_cycles - compute) + base.fill_drain_cycles
    return dataclasses.replace(base, cycles=compute + stalls, compute_cycles=compute, stall_cycles=stalls, **changes)


def _on_fp_unit(layer: ConvLayer, preset: Preset, w_bits: int, a_bits: int, base: LayerCost) -> LayerCost:
    """Full precision on a separate fp32 unit: traffic of the int32 mapping, MACs at ``fp_macs_per_cycle``
    [docs/hardware.md §5.4]."""
    compute = math.ceil(base.macs / preset.policy.fp_macs_per_cycle)
    return retimed(
        base,
        compute,
        unit_cycles=base.macs,
        active_unit_cycles=base.macs,
        e_compute_pj=base.macs * preset.policy.fp_mac_pj,
    )
