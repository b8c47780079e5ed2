"""Shared tiling and memory model: loop-order × power-of-two tile search, buffer fills, DRAM traffic and stalls.

Every accelerator model reduces a layer to a ``Mapping`` (how its array consumes the loops) and calls ``search``.
The dataflow is the public Bit Fusion simulator's optimizer (hsharma35/bitfusion @04ec1c8, ``optimizer.py``; described
in docs/hardware.md §1.3), re-expressed here for any array:

* Loops B, OW, OH, IC, OC are tiled with power-of-two tiles (OC in multiples of the array's columns unless im2col);
  the kernel window is never tiled. All 5! loop orders are tried. [repo]
* A tile must fit ``fit_fraction`` (½, double buffering) of each buffer. [repo]
* Each buffer's fill is promoted outward through the loop nest while the loop indexes that tensor and the enlarged
  fill still fits; loops that do not index the tensor leave the fill in place; once promotion stops every outer
  loop multiplies the traffic. DRAM reads are the sums of the fills. [repo]
* SRAM accesses inside a tile follow the cheapest of input-, output- and weight-stationary by a bit-count proxy. [repo]
* Stalls: ``max(0, ceil(middle_dram_bits / bw) - compute) + ceil(first_fill / bw) + ceil(last_drain / bw)``: a
  roofline with perfect overlap except for the first fill and the last drain. [repo]
  ``fill_rule`` says what the first fill and the last drain are. ``PROMOTED`` (0): the public simulator's choice,
  each buffer's whole promoted block is loaded before compute starts [repo]. ``TILE`` (1, default, our assumption):
  compute starts once the first tile of each operand is in (double buffering hides the rest) and only the last
  output tile drains after compute. Reason: with ``PROMOTED`` a wider operand can stop promotion earlier, shrink
  the first fill and so make a layer *faster* at more bits (the public simulator's own table shows it, e.g.
  3×3 64→64 at a=3: 114,732 cycles at w=7 but 114,156 at w=8); with ``TILE`` every term of a tiling's cycles grows
  with the bits and the feasible tilings shrink, so more bits never cost fewer cycles.
* The pick follows ``objective`` (the preset's ``policy.search_objective``). ``CYCLES`` (0): the fewest total
  cycles, then the least energy (same energy formula as the simulator) [repo]; the public-simulator anchors need it.
  ``ENERGY`` (1): the least energy, then the fewest cycles. ``EDP`` (2): the least energy × cycles, then the fewest
  cycles, then the least energy [our assumption, see the presets]. Reason for the last two: with cycles first, tiny
  tiles that shave a few first-fill cycles win at the price of many DRAM refetches (e.g. 3.6× the compulsory DRAM
  bits for a 32→32 3×3 conv on 16×16 that fits on chip, for 8% fewer cycles).
* Energy of a tiling: compute = active unit-cycles × ``unit_cycle_pj`` + idle unit-cycles × ``idle_unit_cycle_pj``,
  plus the SRAM and DRAM bits × their prices. ``units`` is the number of physical compute units (Fusion Units, SIPs,
  multipliers); every compute cycle holds ``units`` unit-cycles. Active unit-cycles count the work actually mapped
  (docs/hardware.md §5.3: E = cycles · #SIPs_active · e; §5.2: #FU_active): every real (output position, output
  channel) pair keeps one unit busy for ``unit_temporal`` cycles per reduction chunk of ``unit_reduction`` channels
  (``ceil(chunk / unit_reduction)`` chunks per input-channel tile, the last tile holding only the real remainder;
  with im2col the chunk is K²·channels); the rest of the ``compute × units`` unit-cycles are idle (unmapped filter
  or window slots, unused lanes or rows, padding of the last tile).

Outputs (``output_policy``):

* ``ACC`` (0): the public simulator's policy: outputs move as ``acc_bits`` partial sums, each output tile is loaded
  from DRAM before it is accumulated (also the first time) and written back after. [repo]
* ``ACT`` (1, default, our assumption): outputs start at zero in the OBUF (no first load); when the IC loop is
  outside the output tile's fill, partial sums spill to DRAM and are read back at ``acc_bits``; the final outputs
  are written once at ``out_bits`` (the layer's activation width), counting real (unpadded) outputs.

Compute cycles per tile (docs/hardware.md §1.3 and §2): ``b · ceil(oc/cols) · ceil(oh·ow/windows) · K² ·
ceil(ic/(rows·pack)) · temporal``; with im2col ``ceil(b·oh·ow/windows) · ceil(oc/cols) · ceil(K²·ic/(rows·pack)) ·
temporal``. Bit Fusion has ``windows = 1``; bit-serial arrays put ``windows`` output positions side by side and
``temporal`` is the serial cycle count per step.

``search`` runs a Numba kernel (``_search_kernel``): tilings outermost, and per tiling only one order of each class
that nests its repeated loops the same way (a loop run once changes nothing); ties go to the lowest (order, tiling)
index. ``search_reference`` is the plain exhaustive twin (every order × every tiling, in Python) that the tests
compare it with field by field; on the 3×3 64→64 56×56 layer the kernel is ~1000× faster (~60 µs vs ~90 ms).
``search(..., fixed=found)`` re-evaluates one mapping (order, tiles, stationarity) at other bits.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass

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
_NRESULT = 22


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
    orders, style, order_offset = ORDERS, None, 0
    if fixed is not None:
        b, _, _, ic, oc = fixed.tiles
        b_tiles, o_tiles = np.array([b], np.int64), np.array([fixed.o_tile], np.int64)
        ic_tiles, oc_tiles = np.array([ic], np.int64), np.array([oc], np.int64)
        order_offset = LOOPS_INDEX[fixed.order]
        orders, style = ORDERS[order_offset : order_offset + 1], fixed.style
    ints = np.array(
        [
            batch,
            out_h,
            out_w,
            in_ch,
            out_ch,
            kernel,
            stride,
            int(mapping.im2col),
            mapping.rows,
            mapping.cols,
            mapping.windows,
            mapping.pack,
            mapping.temporal,
            mapping.a_bits,
            mapping.w_bits,
            mapping.acc_bits,
            mapping.out_bits,
            mapping.output_policy,
            mapping.cap_act_bits,
            mapping.cap_wgt_bits,
            mapping.cap_out_bits,
            mapping.dram_bits_per_cycle,
            int(mapping.pad_outputs),
            mapping.fill_rule,
            -1 if style is None else style,
            mapping.units,
            mapping.unit_reduction,
            mapping.unit_temporal,
            mapping.temporal_div,
            mapping.objective,
        ],
        dtype=np.int64,
    )
    prices = np.array(mapping.prices, dtype=np.float64)
    reps = _REPRESENTATIVES if fixed is None else _representative_orders(orders)
    result = _search_kernel(ints, prices, b_tiles, o_tiles, ic_tiles, oc_tiles, orders, reps, _DEPS)
    result[13] += order_offset
    return _to_search(result, out_h, out_w)


# The kernel's result slots 0..12 are Search's first 13 fields, in order (13: order index, 14..17: tiles, 18: style,
# 19: active unit-cycles, 21: energy)
_RESULT_COUNTERS = tuple(field.name for field in dataclasses.fields(Search))[:13]


def _to_search(result: np.ndarray, out_h: int, out_w: int) -> Search:
    if result[0] < 0:
        raise ValueError("no tiling fits the buffers")
    values = [int(v) for v in result[: _NRESULT - 1]]
    order = tuple(LOOPS[i] for i in ORDERS[values[13]])
    b, o, ic, oc = values[14:18]
    return Search(
        **dict(zip(_RESULT_COUNTERS, values[: len(_RESULT_COUNTERS)], strict=True)),
        order=order,
        tiles=(b, min(o, out_w), min(o, out_h), ic, oc),
        energy_pj=float(result[_NRESULT - 1]),
        style=values[18],
        o_tile=o,
        active_unit_cycles=values[19],
    )


@numba.njit(cache=True)
def _cdiv(a, b):
    return -(-a // b)


@numba.njit(cache=True)
def _search_kernel(ints, prices, b_tiles, o_tiles, ic_tiles, oc_tiles, orders, reps, deps):  # pragma: no cover
    """Tilings outermost (their order-independent terms once), loop orders inside, only the representative orders
    of the tiling's set of repeated loops (``reps``); ties go to the lowest (order index, tiling index), the order in
    which ``search_reference`` meets them, so the result equals the exhaustive search exactly."""
    B, OH, OW, IC, OC, K, S = ints[0], ints[1], ints[2], ints[3], ints[4], ints[5], ints[6]
    im2col, rows, cols, windows, pack, temporal = ints[7], ints[8], ints[9], ints[10], ints[11], ints[12]
    a_bits, w_bits, acc_bits, out_bits, policy = ints[13], ints[14], ints[15], ints[16], ints[17]
    cap = np.empty(3, np.int64)
    cap[0], cap[1], cap[2] = ints[18], ints[19], ints[20]
    bw, pad_out, fill_rule, forced_style = ints[21], ints[22], ints[23], ints[24]
    units, unit_red, unit_temporal, temporal_div, objective = ints[25], ints[26], ints[27], ints[28], ints[29]
    red = rows * pack
    pairs = B * OH * OW * OC
    best = np.full(_NRESULT, -1.0)
    best_key0, best_key1, best_key2, best_oi, best_ti = 0.0, 0.0, 0.0, 0, 0
    found = False
    tile = np.empty(3, np.int64)
    fill = np.empty(3, np.int64)
    peak = np.empty(3, np.int64)
    promote = np.empty(3, np.int64)
    counts = np.empty(5, np.int64)
    ti = -1
    for b in b_tiles:
        for o in o_tiles:
            ow = min(o, OW)
            oh = min(o, OH)
            for ic in ic_tiles:
                for oc in oc_tiles:
                    ti += 1
                    counts[0] = _cdiv(B, b)
                    counts[1] = _cdiv(OW, ow)
                    counts[2] = _cdiv(OH, oh)
                    counts[3] = _cdiv(IC, ic)
                    counts[4] = _cdiv(OC, oc)
                    oc_slots = _cdiv(oc, cols) * cols if pad_out else oc
                    tile[1] = _cdiv(K * K * ic, red) * red * oc * w_bits
                    if im2col:
                        tile[0] = ow * oh * K * K * ic * b * a_bits
                    else:
                        tile[0] = (K + (ow - 1) * S) * (K + (oh - 1) * S) * ic * b * a_bits
                    tile[2] = ow * oh * oc_slots * b * acc_bits
                    if tile[0] > cap[0] or tile[1] > cap[1] or tile[2] > cap[2]:
                        continue
                    ntiles = counts[0] * counts[1] * counts[2] * counts[3] * counts[4]
                    # inner-loop SRAM traffic by the cheapest stationarity (bit-count proxy) [repo]
                    is_loop = _cdiv(oc, cols) * cols
                    os_loop = _cdiv(ic * K * K, red) * red if im2col else _cdiv(ic, red) * red * K * K
                    ws_loop = b * oh * ow
                    if forced_style >= 0:
                        style = forced_style
                    else:
                        e_is = (os_loop * ws_loop) * (a_bits + is_loop * (w_bits + acc_bits))
                        e_os = (is_loop * ws_loop) * (acc_bits + os_loop * (a_bits + w_bits))
                        e_ws = (os_loop * is_loop) * (w_bits + ws_loop * (a_bits + acc_bits))
                        e_min = min(e_is, e_os, e_ws)
                        style = 0 if e_is == e_min else (1 if e_os == e_min else 2)
                    reduce_in = K * K * ic * oh * ow * b
                    macs = reduce_in * oc
                    if style == 0:
                        act_r = reduce_in * a_bits
                        out_rw = macs * acc_bits
                        wgt_r = macs * w_bits
                    elif style == 1:
                        act_r = macs * a_bits
                        out_rw = oc * oh * ow * b * acc_bits
                        wgt_r = macs * w_bits
                    else:
                        act_r = macs * a_bits
                        out_rw = macs * acc_bits
                        wgt_r = K * K * ic * oc * w_bits
                    act_r *= ntiles
                    out_rw *= ntiles
                    wgt_r *= ntiles
                    if im2col:
                        per_tile = _cdiv(b * oh * ow, windows) * _cdiv(oc, cols) * _cdiv(K * K * ic, red)
                        spp = (IC // ic) * _cdiv(K * K * ic, unit_red) + _cdiv(K * K * (IC % ic), unit_red)
                    else:
                        per_tile = b * _cdiv(oc, cols) * _cdiv(oh * ow, windows) * K * K * _cdiv(ic, red)
                        spp = K * K * ((IC // ic) * _cdiv(ic, unit_red) + _cdiv(IC % ic, unit_red))
                    compute = _cdiv(ntiles * per_tile * temporal, temporal_div)
                    active = pairs * spp * unit_temporal
                    e_compute = active * prices[0] + (compute * units - active) * prices[1]
                    distinct_out = tile[2] * counts[0] * counts[1] * counts[2] * counts[4]
                    real_out_tile = ow * oh * oc * b
                    mask = 0
                    for loop in range(5):
                        if counts[loop] > 1:
                            mask |= 1 << loop
                    for r in range(reps.shape[1]):
                        oi = reps[mask, r]
                        if oi < 0:
                            break
                        for x in range(3):
                            fill[x] = tile[x]
                            peak[x] = tile[x]
                            promote[x] = 1
                        for pos in range(4, -1, -1):
                            loop = orders[oi, pos]
                            n = counts[loop]
                            for x in range(3):
                                if promote[x]:
                                    if deps[loop, x]:
                                        fill[x] *= n
                                        if fill[x] > cap[x]:
                                            promote[x] = 0
                                        else:
                                            peak[x] = fill[x]
                                else:
                                    fill[x] *= n
                        if fill_rule == 1:
                            for x in range(3):
                                peak[x] = tile[x]
                        if policy == 0:
                            dram_rd = fill[0] + fill[1] + fill[2]
                            dram_wr = fill[2]
                            first = peak[0] + peak[1] + peak[2]
                            last = peak[2]
                            obuf_w = out_rw + fill[2]
                        else:
                            spill = fill[2] - distinct_out
                            dram_rd = fill[0] + fill[1] + spill
                            dram_wr = spill + B * OH * OW * OC * out_bits
                            first = peak[0] + peak[1]
                            last = (peak[2] // tile[2]) * real_out_tile * out_bits
                            obuf_w = out_rw + spill
                        obuf_r = out_rw + fill[2]
                        mem = _cdiv(dram_rd + dram_wr - first - last, bw)
                        fill_drain = _cdiv(first, bw) + _cdiv(last, bw)
                        stalls = max(0, mem - compute) + fill_drain
                        cycles = compute + stalls
                        energy = (
                            e_compute
                            + act_r * prices[2]
                            + fill[0] * prices[3]
                            + wgt_r * prices[4]
                            + fill[1] * prices[5]
                            + obuf_r * prices[6]
                            + obuf_w * prices[7]
                            + (dram_rd + dram_wr) * prices[8]
                        )
                        if objective == 0:
                            key0, key1, key2 = float(cycles), energy, 0.0
                        elif objective == 1:
                            key0, key1, key2 = energy, float(cycles), 0.0
                        else:
                            key0, key1, key2 = cycles * energy, float(cycles), energy
                        if found:
                            if key0 != best_key0:
                                if key0 > best_key0:
                                    continue
                            elif key1 != best_key1:
                                if key1 > best_key1:
                                    continue
                            elif key2 != best_key2:
                                if key2 > best_key2:
                                    continue
                            elif oi > best_oi or (oi == best_oi and ti > best_ti):
                                continue
                        found = True
                        best_key0, best_key1, best_key2, best_oi, best_ti = key0, key1, key2, oi, ti
                        best[0] = cycles
                        best[1] = compute
                        best[2] = stalls
                        best[3] = mem
                        best[4] = fill_drain
                        best[5] = dram_rd
                        best[6] = dram_wr
                        best[7] = act_r
                        best[8] = fill[0]
                        best[9] = wgt_r
                        best[10] = fill[1]
                        best[11] = obuf_r
                        best[12] = obuf_w
                        best[13] = oi
                        best[14] = b
                        best[15] = o
                        best[16] = ic
                        best[17] = oc
                        best[18] = style
                        best[19] = active
                        best[_NRESULT - 1] = energy
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
    red = m.rows * m.pack
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
                "wgt": math.ceil(k2 * ic / red) * red * oc * m.w_bits,
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
            os_loop = math.ceil(ic * k2 / red) * red if m.im2col else math.ceil(ic / red) * red * k2
            ws_loop = b * oh * ow
            proxies = [
                (os_loop * ws_loop) * (m.a_bits + is_loop * (m.w_bits + m.acc_bits)),
                (is_loop * ws_loop) * (m.acc_bits + os_loop * (m.a_bits + m.w_bits)),
                (os_loop * is_loop) * (m.w_bits + ws_loop * (m.a_bits + m.acc_bits)),
            ]
            style = proxies.index(min(proxies))
            window_reads = k2 * ic * oh * ow * b
            macs = window_reads * oc
            act_r = (window_reads if style == 0 else macs) * m.a_bits * ntiles
            wgt_r = (k2 * ic * oc if style == 2 else macs) * m.w_bits * ntiles
            out_rw = (oc * oh * ow * b if style == 1 else macs) * m.acc_bits * ntiles
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
                per_tile = math.ceil(b * oh * ow / m.windows) * math.ceil(oc / m.cols) * math.ceil(k2 * ic / red)
                chunks = full * math.ceil(k2 * ic / m.unit_reduction) + math.ceil(k2 * rest / m.unit_reduction)
            else:
                per_tile = b * math.ceil(oc / m.cols) * math.ceil(oh * ow / m.windows) * k2 * math.ceil(ic / red)
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
                best = (
                    cycles,
                    compute,
                    stalls,
                    mem,
                    fill_drain,
                    dram_rd,
                    dram_wr,
                    act_r,
                    fill["act"],
                    wgt_r,
                    fill["wgt"],
                    obuf_r,
                    obuf_w,
                    order_index,
                    b,
                    o,
                    ic,
                    oc,
                    style,
                    active,
                    energy,
                )
    if best is None:
        raise ValueError("no tiling fits the buffers")
    result = np.array([*best[:18], best[18], best[19], 0, best[-1]], dtype=np.float64)
    return _to_search(result, out_h, out_w)
