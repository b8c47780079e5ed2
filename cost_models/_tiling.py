"""The tiling search every array kind shares: loop order × power-of-two tiles, buffer fills, DRAM traffic and stalls.

An array kind reduces one layer (one group of it) to a ``Mapping``, the numbers its array consumes the loops by, and
calls ``search``, which returns the best ``Search`` by the mapping's ``objective`` (``CYCLES``, ``ENERGY`` or
``EDP``) under its ``output_policy`` (``ACC`` or ``ACT``) and ``fill_rule`` (``PROMOTED`` or ``TILE``);
``search(..., fixed=found)`` re-evaluates one found mapping (order, tiles, stationarity) at other bits and raises
``ValueError`` when no tile fits. The dataflow is the public Bit Fusion simulator's, re-expressed for any array;
the design, the formulas and their sources are in docs/hardware.md §5.8.

``search`` runs the Numba kernel ``_search_kernel``; ``search_reference`` is its plain exhaustive twin (every order ×
every tiling, in Python) that the tests compare with it field by field.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import NamedTuple

import numba
import numpy as np

__all__ = [
    "Mapping",
    "Search",
    "search",
    "search_reference",
    "LOOPS",
    "ORDERS",
    "ACC",
    "ACT",
    "PROMOTED",
    "TILE",
    "CYCLES",
    "ENERGY",
    "EDP",
    "OBJECTIVES",
]

LOOPS = ("B", "OW", "OH", "IC", "OC")
# The tensors a buffer holds, in the order of _DEPS's columns and of the (act, wgt, out) triples below
_ACT, _WGT, _OUT = 0, 1, 2
# Which tensor each loop indexes: columns act, wgt, out (public simulator tile_deps) [repo].
_DEPS = np.array([[1, 0, 1], [1, 0, 1], [1, 0, 1], [1, 1, 0], [0, 1, 1]], dtype=np.int64)
ORDERS = np.array(list(itertools.permutations(range(5))), dtype=np.int64)  # outermost first
LOOPS_INDEX = {tuple(LOOPS[i] for i in order): index for index, order in enumerate(ORDERS)}


def _representative_orders(orders: np.ndarray) -> np.ndarray:
    """For each set of loops with more than one tile (a 5-bit mask), the first order of each distinct nesting of
    those loops; a loop run once changes nothing, so the other orders repeat an earlier one exactly. Row ``mask``
    lists order indices, padded with -1."""
    table = np.full((32, len(orders)), -1, dtype=np.int64)
    for mask in range(32):
        seen, row = set(), []
        for index, order in enumerate(orders):
            key = tuple(loop for loop in order if mask >> loop & 1)
            if key not in seen:
                seen.add(key)
                row.append(index)
        table[mask, : len(row)] = row
    return table


_REPRESENTATIVES = _representative_orders(ORDERS)
ACC, ACT = 0, 1
PROMOTED, TILE = 0, 1
CYCLES, ENERGY, EDP = 0, 1, 2
OBJECTIVES = {"cycles": CYCLES, "energy": ENERGY, "edp": EDP}
INPUT_STATIONARY, OUTPUT_STATIONARY, WEIGHT_STATIONARY = 0, 1, 2


@dataclass(frozen=True)
class Mapping:
    """How an array consumes one layer at one precision: the numbers ``search`` needs besides the layer."""

    rows: int  # reduction lanes (input channels, or K²·C with im2col) per cycle
    cols: int  # output channels per cycle
    windows: int  # output positions per cycle
    pack: int  # operands packed per reduction lane (Bit Fusion spatial fusion)
    temporal: int  # cycles per step (temporal fusion, or bit-serial cycles), divided by ``temporal_div``
    im2col: bool
    pad_outputs: bool  # output tiles occupy whole column banks
    a_bits: int
    w_bits: int
    acc_bits: int
    out_bits: int
    output_policy: int  # ACC or ACT
    fill_rule: int  # PROMOTED or TILE
    cap_act_bits: int
    cap_wgt_bits: int
    cap_out_bits: int
    dram_bits_per_cycle: int
    # prices of the search objective's energy (pJ): active unit-cycle, idle unit-cycle, act r/w, wgt r/w, out r/w
    # and dram (per bit)
    prices: tuple[float, ...]
    units: int = 1  # physical compute units of the array (every compute cycle has ``units`` unit-cycles)
    unit_reduction: int = 1  # reduction channels one unit takes per step (SIP lanes, FU packing, 1 per multiplier)
    unit_temporal: int = 1  # cycles a unit is busy per step of one (position, channel) pair
    temporal_div: int = 1  # compute = ceil(steps · temporal / temporal_div) over the layer (Loom on FC layers)
    objective: int = CYCLES


@dataclass(frozen=True)
class Search:
    """Action counts of the best mapping of one layer (all in cycles or bits), and the tiling that gives them."""

    cycles: int
    compute_cycles: int
    stall_cycles: int
    mem_cycles: int
    fill_drain_cycles: int
    dram_read_bits: int
    dram_write_bits: int
    ibuf_read_bits: int
    ibuf_write_bits: int
    wbuf_read_bits: int
    wbuf_write_bits: int
    obuf_read_bits: int
    obuf_write_bits: int
    order: tuple[str, ...]
    tiles: tuple[int, int, int, int, int]  # b, ow, oh, ic, oc
    energy_pj: float  # the tiling's energy (simulator formula with the active / idle split)
    style: int = 0  # inner-loop stationarity: 0 input, 1 output, 2 weight
    o_tile: int = 1  # the power-of-two output tile before clipping to out_h / out_w
    active_unit_cycles: int = 0  # unit-cycles doing mapped work; the rest of compute_cycles × units are idle


class _Problem(NamedTuple):
    """The kernel's integer inputs: the layer (one group of it) and its ``Mapping``, booleans as 0 or 1."""

    batch: int
    out_h: int
    out_w: int
    in_ch: int
    out_ch: int
    kernel: int
    stride: int
    im2col: int
    rows: int
    cols: int
    windows: int
    pack: int
    temporal: int
    a_bits: int
    w_bits: int
    acc_bits: int
    out_bits: int
    output_policy: int
    cap_act_bits: int
    cap_wgt_bits: int
    cap_out_bits: int
    dram_bits_per_cycle: int
    pad_outputs: int
    fill_rule: int
    forced_style: int  # the stationarity of a ``fixed`` mapping, or -1: the cheapest
    units: int
    unit_reduction: int
    unit_temporal: int
    temporal_div: int
    objective: int


class _Prices(NamedTuple):
    """``Mapping.prices`` by name (pJ per unit-cycle or per bit)."""

    active_unit_cycle: float
    idle_unit_cycle: float
    act_read: float
    act_write: float
    wgt_read: float
    wgt_write: float
    out_read: float
    out_write: float
    dram: float


class _Best(NamedTuple):
    """The kernel's result: ``Search``'s counters, then the tiling that gives them (``cycles`` -1: no tile fits the
    buffers)."""

    cycles: int
    compute_cycles: int
    stall_cycles: int
    mem_cycles: int
    fill_drain_cycles: int
    dram_read_bits: int
    dram_write_bits: int
    ibuf_read_bits: int
    ibuf_write_bits: int
    wbuf_read_bits: int
    wbuf_write_bits: int
    obuf_read_bits: int
    obuf_write_bits: int
    order_index: int  # row of the ``orders`` given to the kernel
    b_tile: int
    o_tile: int  # before clipping to out_h / out_w
    ic_tile: int
    oc_tile: int
    style: int
    active_unit_cycles: int
    energy_pj: float


def _tile_sizes(total: int, step: int = 1) -> np.ndarray:
    """Power-of-two multiples of ``step`` up to the first that covers ``total`` (each clipped to ``total``)."""
    sizes = []
    size = step
    while True:
        sizes.append(min(size, total))
        if size >= total:
            break
        size *= 2
    return np.array(sizes, dtype=np.int64)


def _dims(batch, out_h, out_w, in_ch, out_ch, mapping):
    b_tiles = _tile_sizes(batch)
    o_tiles = _tile_sizes(max(out_h, out_w))
    ic_tiles = _tile_sizes(in_ch)
    oc_tiles = _tile_sizes(out_ch, 1 if mapping.im2col else mapping.cols)
    return b_tiles, o_tiles, ic_tiles, oc_tiles


def search(
    batch: int,
    out_h: int,
    out_w: int,
    in_ch: int,
    out_ch: int,
    kernel: int,
    stride: int,
    mapping: Mapping,
    fixed: Search | None = None,
) -> Search:
    """Best mapping by the Numba kernel. Raises ``ValueError`` when no tile fits the buffers.

    With ``fixed`` (a ``Search`` found for other bits), only that loop order, tiling and stationarity are evaluated.
    """
    b_tiles, o_tiles, ic_tiles, oc_tiles = _dims(batch, out_h, out_w, in_ch, out_ch, mapping)
    orders, forced_style, order_offset = ORDERS, -1, 0
    if fixed is not None:
        b, _, _, ic, oc = fixed.tiles
        b_tiles, o_tiles = np.array([b], np.int64), np.array([fixed.o_tile], np.int64)
        ic_tiles, oc_tiles = np.array([ic], np.int64), np.array([oc], np.int64)
        order_offset = LOOPS_INDEX[fixed.order]
        orders, forced_style = ORDERS[order_offset : order_offset + 1], fixed.style
    # positional, in _Problem's order (keywords would cost the search 2 µs a call)
    problem = _Problem(
        batch, out_h, out_w, in_ch, out_ch, kernel, stride,
        int(mapping.im2col), mapping.rows, mapping.cols, mapping.windows, mapping.pack, mapping.temporal,
        mapping.a_bits, mapping.w_bits, mapping.acc_bits, mapping.out_bits, mapping.output_policy,
        mapping.cap_act_bits, mapping.cap_wgt_bits, mapping.cap_out_bits, mapping.dram_bits_per_cycle,
        int(mapping.pad_outputs), mapping.fill_rule, forced_style,
        mapping.units, mapping.unit_reduction, mapping.unit_temporal, mapping.temporal_div, mapping.objective,
    )  # fmt: skip
    prices = _Prices._make(map(float, mapping.prices))
    representatives = _REPRESENTATIVES if fixed is None else _representative_orders(orders)
    best = _search_kernel(problem, prices, b_tiles, o_tiles, ic_tiles, oc_tiles, orders, representatives, _DEPS)
    return _to_search(best, out_h, out_w, order_offset)


def _to_search(best: _Best, out_h: int, out_w: int, order_offset: int = 0) -> Search:
    """``best`` as a ``Search``; ``order_offset``: the ``ORDERS`` row of the kernel's first order."""
    if best.cycles < 0:
        raise ValueError("no tiling fits the buffers")
    o = best.o_tile
    return Search(
        cycles=best.cycles,
        compute_cycles=best.compute_cycles,
        stall_cycles=best.stall_cycles,
        mem_cycles=best.mem_cycles,
        fill_drain_cycles=best.fill_drain_cycles,
        dram_read_bits=best.dram_read_bits,
        dram_write_bits=best.dram_write_bits,
        ibuf_read_bits=best.ibuf_read_bits,
        ibuf_write_bits=best.ibuf_write_bits,
        wbuf_read_bits=best.wbuf_read_bits,
        wbuf_write_bits=best.wbuf_write_bits,
        obuf_read_bits=best.obuf_read_bits,
        obuf_write_bits=best.obuf_write_bits,
        order=tuple(LOOPS[i] for i in ORDERS[best.order_index + order_offset]),
        tiles=(best.b_tile, min(o, out_w), min(o, out_h), best.ic_tile, best.oc_tile),
        energy_pj=float(best.energy_pj),
        style=best.style,
        o_tile=o,
        active_unit_cycles=best.active_unit_cycles,
    )


# The kernel's steps, inlined into it by Numba (called as functions, taking the problem record by value, they make
# the search about 1.7× slower)
_helper = numba.njit(cache=True, inline="always")


@numba.njit(cache=True)
def _cdiv(a, b):
    return -(-a // b)


@_helper
def _tile_bits(p, reduction_width, b, ow, oh, ic, oc):  # pragma: no cover
    """Bits of one tile of activations (the input window), weights (rows padded to the reduction width) and outputs
    (partial sums, whole column banks when ``pad_outputs``)."""
    k = p.kernel
    if p.im2col:
        act = ow * oh * k * k * ic * b * p.a_bits
    else:
        act = (k + (ow - 1) * p.stride) * (k + (oh - 1) * p.stride) * ic * b * p.a_bits
    wgt = _cdiv(k * k * ic, reduction_width) * reduction_width * oc * p.w_bits
    out_slots = _cdiv(oc, p.cols) * p.cols if p.pad_outputs else oc
    return act, wgt, ow * oh * out_slots * b * p.acc_bits


@_helper
def _loop_counts(p, b, ow, oh, ic, oc):  # pragma: no cover
    """How many tiles each loop B, OW, OH, IC, OC runs."""
    return _cdiv(p.batch, b), _cdiv(p.out_w, ow), _cdiv(p.out_h, oh), _cdiv(p.in_ch, ic), _cdiv(p.out_ch, oc)


@_helper
def _stationarity(p, reduction_width, b, ow, oh, ic, oc):  # pragma: no cover
    """The inner loop's stationarity: the forced one, else the cheapest by the public simulator's bit-count proxy
    (ties: input, then output stationary) [repo]."""
    if p.forced_style >= 0:
        return p.forced_style
    k2 = p.kernel * p.kernel
    is_loop = _cdiv(oc, p.cols) * p.cols
    if p.im2col:
        os_loop = _cdiv(ic * k2, reduction_width) * reduction_width
    else:
        os_loop = _cdiv(ic, reduction_width) * reduction_width * k2
    ws_loop = b * oh * ow
    input_proxy = (os_loop * ws_loop) * (p.a_bits + is_loop * (p.w_bits + p.acc_bits))
    output_proxy = (is_loop * ws_loop) * (p.acc_bits + os_loop * (p.a_bits + p.w_bits))
    weight_proxy = (os_loop * is_loop) * (p.w_bits + ws_loop * (p.a_bits + p.acc_bits))
    cheapest = min(input_proxy, output_proxy, weight_proxy)
    if input_proxy == cheapest:
        return INPUT_STATIONARY
    return OUTPUT_STATIONARY if output_proxy == cheapest else WEIGHT_STATIONARY


@_helper
def _buffer_reads(p, style, b, ow, oh, ic, oc, tile_count):  # pragma: no cover
    """Bits read over the layer inside the tiles: (activations, weights, output partial sums, which are written as
    often as read); the stationary operand is read once per tile."""
    window_reads = p.kernel * p.kernel * ic * oh * ow * b
    macs = window_reads * oc
    act = window_reads * p.a_bits if style == INPUT_STATIONARY else macs * p.a_bits
    out = oc * oh * ow * b * p.acc_bits if style == OUTPUT_STATIONARY else macs * p.acc_bits
    wgt = p.kernel * p.kernel * ic * oc * p.w_bits if style == WEIGHT_STATIONARY else macs * p.w_bits
    return act * tile_count, wgt * tile_count, out * tile_count


@_helper
def _compute(p, reduction_width, b, ow, oh, ic, oc, tile_count):  # pragma: no cover
    """(compute cycles, active unit-cycles) of the layer: every real (output position, output channel) pair keeps
    one unit busy ``unit_temporal`` cycles per chunk of ``unit_reduction`` channels of each input-channel tile (the
    last tile holds only the real remainder)."""
    k2 = p.kernel * p.kernel
    full_tiles, rest = p.in_ch // ic, p.in_ch % ic
    if p.im2col:
        per_tile = _cdiv(b * oh * ow, p.windows) * _cdiv(oc, p.cols) * _cdiv(k2 * ic, reduction_width)
        chunks_per_pair = full_tiles * _cdiv(k2 * ic, p.unit_reduction) + _cdiv(k2 * rest, p.unit_reduction)
    else:
        per_tile = b * _cdiv(oc, p.cols) * _cdiv(oh * ow, p.windows) * k2 * _cdiv(ic, reduction_width)
        chunks_per_pair = k2 * (full_tiles * _cdiv(ic, p.unit_reduction) + _cdiv(rest, p.unit_reduction))
    compute = _cdiv(tile_count * per_tile * p.temporal, p.temporal_div)
    pairs = p.batch * p.out_h * p.out_w * p.out_ch
    return compute, pairs * chunks_per_pair * p.unit_temporal


@_helper
def _promote(tile_bits, capacity, tensor, orders, oi, counts, deps):  # pragma: no cover
    """(DRAM fill, peak block) of one tensor's buffer under loop order ``orders[oi]``. From the innermost loop
    outward, the block grows by each loop that indexes the tensor while it fits ``capacity`` (``peak``: the largest
    block that fits); loops that do not index it leave it in place; once it stops, every outer loop refetches it
    [repo]."""
    fill = peak = tile_bits
    promoting = True
    for position in range(4, -1, -1):
        loop = orders[oi, position]
        if not promoting:
            fill *= counts[loop]
        elif deps[loop, tensor]:
            fill *= counts[loop]
            if fill > capacity:
                promoting = False
            else:
                peak = fill
    return fill, peak


@_helper
def _dram_traffic(p, fills, peaks, out_tile, distinct_out, real_out_tile):  # pragma: no cover
    """(DRAM reads, DRAM writes, first fill, last drain, output-buffer writes from DRAM) under the output policy:
    ``ACC`` loads every output tile before accumulating and writes it back at ``acc_bits`` [repo]; ``ACT`` starts
    outputs at zero, spills partial sums only when the IC loop is outside the output block, and writes the real
    outputs once at ``out_bits``."""
    act_fill, wgt_fill, out_fill = fills
    act_peak, wgt_peak, out_peak = peaks
    if p.output_policy == ACC:
        first = act_peak + wgt_peak + out_peak
        return act_fill + wgt_fill + out_fill, out_fill, first, out_peak, out_fill
    spill = out_fill - distinct_out
    written = p.batch * p.out_h * p.out_w * p.out_ch * p.out_bits
    last = (out_peak // out_tile) * real_out_tile * p.out_bits
    return act_fill + wgt_fill + spill, spill + written, act_peak + wgt_peak, last, spill


@_helper
def _objective_key(objective, cycles, energy):  # pragma: no cover
    """What the search minimises, compared field by field: (cycles, energy), (energy, cycles) or
    (energy × cycles, cycles, energy)."""
    if objective == CYCLES:
        return float(cycles), energy, 0.0
    if objective == ENERGY:
        return energy, float(cycles), 0.0
    return cycles * energy, float(cycles), energy


@_helper
def _loses(key, order_index, tiling, best_key, best_order_index, best_tiling):  # pragma: no cover
    """Whether a candidate loses to the best so far: the first key field that differs decides (the greater loses);
    on equal keys the later (order index, tiling index) loses, the order in which ``search_reference`` meets them."""
    for field in range(3):
        if key[field] != best_key[field]:
            return key[field] > best_key[field]
    return order_index > best_order_index or (order_index == best_order_index and tiling > best_tiling)


@numba.njit(cache=True)
def _search_kernel(p, prices, b_tiles, o_tiles, ic_tiles, oc_tiles, orders, representatives, deps):  # pragma: no cover
    """Tilings outermost (their order-independent terms once), loop orders inside, only the representative orders
    of the tiling's set of repeated loops (``representatives``); ties go to the lowest (order index, tiling index),
    the order in which ``search_reference`` meets them, so the result equals the exhaustive search exactly."""
    reduction_width = p.rows * p.pack
    counts = np.empty(5, np.int64)  # an array: the loop order indexes it
    capacity = (p.cap_act_bits, p.cap_wgt_bits, p.cap_out_bits)
    best = _Best(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1.0)
    best_key, best_tiling = (0.0, 0.0, 0.0), 0
    found = False
    tiling = -1
    for b in b_tiles:
        for o in o_tiles:
            ow, oh = min(o, p.out_w), min(o, p.out_h)
            for ic in ic_tiles:
                for oc in oc_tiles:
                    tiling += 1
                    counts[0], counts[1], counts[2], counts[3], counts[4] = _loop_counts(p, b, ow, oh, ic, oc)
                    tile = _tile_bits(p, reduction_width, b, ow, oh, ic, oc)
                    if tile[_ACT] > capacity[_ACT] or tile[_WGT] > capacity[_WGT] or tile[_OUT] > capacity[_OUT]:
                        continue
                    tile_count = counts[0] * counts[1] * counts[2] * counts[3] * counts[4]
                    style = _stationarity(p, reduction_width, b, ow, oh, ic, oc)
                    act_reads, wgt_reads, out_accesses = _buffer_reads(p, style, b, ow, oh, ic, oc, tile_count)
                    compute, active = _compute(p, reduction_width, b, ow, oh, ic, oc, tile_count)
                    compute_pj = (
                        active * prices.active_unit_cycle + (compute * p.units - active) * prices.idle_unit_cycle
                    )
                    distinct_out = tile[_OUT] * counts[0] * counts[1] * counts[2] * counts[4]
                    real_out_tile = ow * oh * oc * b
                    repeated = 0  # the loops with more than one tile, as a mask
                    for loop in range(5):
                        if counts[loop] > 1:
                            repeated |= 1 << loop
                    for r in range(representatives.shape[1]):
                        oi = representatives[repeated, r]
                        if oi < 0:
                            break
                        act_fill, act_peak = _promote(tile[_ACT], capacity[_ACT], _ACT, orders, oi, counts, deps)
                        wgt_fill, wgt_peak = _promote(tile[_WGT], capacity[_WGT], _WGT, orders, oi, counts, deps)
                        out_fill, out_peak = _promote(tile[_OUT], capacity[_OUT], _OUT, orders, oi, counts, deps)
                        peaks = tile if p.fill_rule == TILE else (act_peak, wgt_peak, out_peak)
                        dram_read, dram_write, first, last, obuf_from_dram = _dram_traffic(
                            p, (act_fill, wgt_fill, out_fill), peaks, tile[_OUT], distinct_out, real_out_tile
                        )
                        obuf_reads = out_accesses + out_fill
                        obuf_writes = out_accesses + obuf_from_dram
                        mem = _cdiv(dram_read + dram_write - first - last, p.dram_bits_per_cycle)
                        fill_drain = _cdiv(first, p.dram_bits_per_cycle) + _cdiv(last, p.dram_bits_per_cycle)
                        stalls = max(0, mem - compute) + fill_drain
                        cycles = compute + stalls
                        energy = (
                            compute_pj
                            + act_reads * prices.act_read
                            + act_fill * prices.act_write
                            + wgt_reads * prices.wgt_read
                            + wgt_fill * prices.wgt_write
                            + obuf_reads * prices.out_read
                            + obuf_writes * prices.out_write
                            + (dram_read + dram_write) * prices.dram
                        )
                        key = _objective_key(p.objective, cycles, energy)
                        if found and _loses(key, oi, tiling, best_key, best.order_index, best_tiling):
                            continue
                        found, best_key, best_tiling = True, key, tiling
                        best = _Best(
                            cycles, compute, stalls, mem, fill_drain, dram_read, dram_write, act_reads, act_fill,
                            wgt_reads, wgt_fill, obuf_reads, obuf_writes, oi, b, o, ic, oc, style, active, energy,
                        )  # fmt: skip
    return best


def search_reference(
    batch: int, out_h: int, out_w: int, in_ch: int, out_ch: int, kernel: int, stride: int, mapping: Mapping
) -> Search:
    """Plain exhaustive twin of ``search``: every loop order × every power-of-two tiling, scored one by one in Python.

    Slow (tens of thousands of Python evaluations per layer); the tests compare it with the Numba kernel.
    """
    m = mapping
    b_tiles, o_tiles, ic_tiles, oc_tiles = (list(map(int, t)) for t in _dims(batch, out_h, out_w, in_ch, out_ch, m))
    deps = {"B": ("act", "out"), "OW": ("act", "out"), "OH": ("act", "out"), "IC": ("act", "wgt"), "OC": ("wgt", "out")}
    caps = {"act": m.cap_act_bits, "wgt": m.cap_wgt_bits, "out": m.cap_out_bits}
    reduction_width = m.rows * m.pack
    k2 = kernel * kernel
    e_active, e_idle, e_ar, e_aw, e_wr, e_ww, e_or, e_ow, e_dram = m.prices
    pairs = batch * out_h * out_w * out_ch
    best, best_key = None, None
    for order_index, order in enumerate(itertools.permutations(LOOPS)):
        for b, o, ic, oc in itertools.product(b_tiles, o_tiles, ic_tiles, oc_tiles):
            ow, oh = min(o, out_w), min(o, out_h)
            counts = {
                "B": math.ceil(batch / b),
                "OW": math.ceil(out_w / ow),
                "OH": math.ceil(out_h / oh),
                "IC": math.ceil(in_ch / ic),
                "OC": math.ceil(out_ch / oc),
            }
            slots = math.ceil(oc / m.cols) * m.cols if m.pad_outputs else oc
            if m.im2col:
                act = ow * oh * k2 * ic * b * m.a_bits
            else:
                act = (kernel + (ow - 1) * stride) * (kernel + (oh - 1) * stride) * ic * b * m.a_bits
            tile = {
                "act": act,
                "wgt": math.ceil(k2 * ic / reduction_width) * reduction_width * oc * m.w_bits,
                "out": ow * oh * slots * b * m.acc_bits,
            }
            if any(tile[x] > caps[x] for x in tile):
                continue
            fill, peak, growing = dict(tile), dict(tile), dict.fromkeys(tile, True)
            for loop in reversed(order):
                for x in fill:
                    if not growing[x]:
                        fill[x] *= counts[loop]
                    elif x in deps[loop]:
                        fill[x] *= counts[loop]
                        if fill[x] > caps[x]:
                            growing[x] = False
                        else:
                            peak[x] = fill[x]
            if m.fill_rule == TILE:
                peak = dict(tile)
            ntiles = math.prod(counts.values())
            is_loop = math.ceil(oc / m.cols) * m.cols
            if m.im2col:
                os_loop = math.ceil(ic * k2 / reduction_width) * reduction_width
            else:
                os_loop = math.ceil(ic / reduction_width) * reduction_width * k2
            ws_loop = b * oh * ow
            proxies = [
                (os_loop * ws_loop) * (m.a_bits + is_loop * (m.w_bits + m.acc_bits)),
                (is_loop * ws_loop) * (m.acc_bits + os_loop * (m.a_bits + m.w_bits)),
                (os_loop * is_loop) * (m.w_bits + ws_loop * (m.a_bits + m.acc_bits)),
            ]
            style = proxies.index(min(proxies))
            window_reads = k2 * ic * oh * ow * b
            macs = window_reads * oc
            act_r = (window_reads if style == INPUT_STATIONARY else macs) * m.a_bits * ntiles
            wgt_r = (k2 * ic * oc if style == WEIGHT_STATIONARY else macs) * m.w_bits * ntiles
            out_rw = (oc * oh * ow * b if style == OUTPUT_STATIONARY else macs) * m.acc_bits * ntiles
            if m.output_policy == ACC:
                dram_rd = fill["act"] + fill["wgt"] + fill["out"]
                dram_wr = fill["out"]
                first = peak["act"] + peak["wgt"] + peak["out"]
                last = peak["out"]
                obuf_w = out_rw + fill["out"]
            else:
                distinct = tile["out"] * counts["B"] * counts["OW"] * counts["OH"] * counts["OC"]
                spill = fill["out"] - distinct
                dram_rd = fill["act"] + fill["wgt"] + spill
                dram_wr = spill + batch * out_h * out_w * out_ch * m.out_bits
                first = peak["act"] + peak["wgt"]
                last = peak["out"] // tile["out"] * (ow * oh * oc * b) * m.out_bits
                obuf_w = out_rw + spill
            obuf_r = out_rw + fill["out"]
            full, rest = divmod(in_ch, ic)
            if m.im2col:
                per_tile = (
                    math.ceil(b * oh * ow / m.windows) * math.ceil(oc / m.cols) * math.ceil(k2 * ic / reduction_width)
                )
                chunks = full * math.ceil(k2 * ic / m.unit_reduction) + math.ceil(k2 * rest / m.unit_reduction)
            else:
                per_tile = (
                    b * math.ceil(oc / m.cols) * math.ceil(oh * ow / m.windows) * k2 * math.ceil(ic / reduction_width)
                )
                chunks = k2 * (full * math.ceil(ic / m.unit_reduction) + math.ceil(rest / m.unit_reduction))
            compute = -(-ntiles * per_tile * m.temporal // m.temporal_div)
            active = pairs * chunks * m.unit_temporal
            bw = m.dram_bits_per_cycle
            mem = math.ceil((dram_rd + dram_wr - first - last) / bw)
            fill_drain = math.ceil(first / bw) + math.ceil(last / bw)
            stalls = max(0, mem - compute) + fill_drain
            cycles = compute + stalls
            e_compute = active * e_active + (compute * m.units - active) * e_idle
            energy = (
                e_compute
                + act_r * e_ar
                + fill["act"] * e_aw
                + wgt_r * e_wr
                + fill["wgt"] * e_ww
                + obuf_r * e_or
                + obuf_w * e_ow
                + (dram_rd + dram_wr) * e_dram
            )
            key = {CYCLES: (cycles, energy), ENERGY: (energy, cycles), EDP: (cycles * energy, cycles, energy)}[
                m.objective
            ]
            if best_key is None or key < best_key:  # strict: the first of equal keys (lowest order, tiling) stays
                best_key = key
                best = _Best(
                    cycles=cycles,
                    compute_cycles=compute,
                    stall_cycles=stalls,
                    mem_cycles=mem,
                    fill_drain_cycles=fill_drain,
                    dram_read_bits=dram_rd,
                    dram_write_bits=dram_wr,
                    ibuf_read_bits=act_r,
                    ibuf_write_bits=fill["act"],
                    wbuf_read_bits=wgt_r,
                    wbuf_write_bits=fill["wgt"],
                    obuf_read_bits=obuf_r,
                    obuf_write_bits=obuf_w,
                    order_index=order_index,
                    b_tile=b,
                    o_tile=o,
                    ic_tile=ic,
                    oc_tile=oc,
                    style=style,
                    active_unit_cycles=active,
                    energy_pj=energy,
                )
    if best is None:
        raise ValueError("no tiling fits the buffers")
    return _to_search(best, out_h, out_w)
