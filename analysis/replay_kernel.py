"""Replay kernels: every input's cost is the always-run cost plus one table lookup per gated block (docs/design.md §4).

    out[n, lane] = fixed[lane] + Σ_b tables[b, codes[n, b], lane]

A lane is one metric of one preset (``replay_costs``: every metric of a cost table, ``cost_models.METRICS``) or one
metric on many presets (``replay_presets``). Both run the same pair kernel: adjacent gated blocks are combined into
one table, so each input needs half the lookups. Its plain-numpy twin is ``replay_reference``; ``_replay_kernel``,
one lookup per block, serves option sets too large to pair. Imports numpy and numba only.
"""

from __future__ import annotations

import functools
from typing import Any

import numba
import numpy as np

__all__ = [
    "pair_tables",
    "precision_deltas",
    "precision_deltas_reference",
    "replay_costs",
    "replay_presets",
    "replay_presets_reference",
    "replay_reference",
    "split_presets",
    "split_presets_reference",
    "tally_decisions",
    "tally_decisions_reference",
]

# Lanes are summed LANE_GROUP at a time per pass, each lane a running total that stays in a register. Five is the
# shipped preset count and the replayed metric count (analysis.frames.COST_METRICS); with the SLP vectoriser the
# five become one 4-wide AVX2 add and one scalar add per lookup, which measured faster than eight lanes padded to a
# cache line (two 4-wide adds).
LANE_GROUP = 5
# Pair tables have 2^(2·bits) rows for options coded in `bits` bits; beyond 16 options (256 rows) the tables outgrow
# the L1 cache and the one-lookup-per-block kernel is used instead.
MAX_PAIRED_OPTIONS = 16


@numba.njit(cache=True, parallel=True)
def _replay_kernel(codes, table, fixed):  # pragma: no cover - compiled
    n_inputs, n_blocks = codes.shape
    n_metrics = table.shape[2]
    out = np.empty((n_inputs, n_metrics), dtype=np.float64)
    for n in numba.prange(n_inputs):
        for m in range(n_metrics):
            out[n, m] = fixed[m]
        for b in range(n_blocks):
            code = codes[n, b]
            for m in range(n_metrics):
                out[n, m] += table[b, code, m]
    return out


def replay_reference(codes: np.ndarray, table: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """Plain-numpy twin of the kernels: gather ``table[b, codes[:, b]]`` for every block and add, block by block."""
    out = np.tile(np.asarray(fixed, dtype=np.float64), (codes.shape[0], 1))
    for b in range(codes.shape[1]):
        out += table[b, codes[:, b].astype(np.intp)]
    return out


replay_presets_reference = replay_reference


@numba.njit(cache=True)
def tally_decisions(codes, costs, counts, gathered):  # pragma: no cover - compiled
    """For codes (N, B): add to ``counts`` (B, K) the inputs that took each option at each block, and fill
    ``gathered`` (N, B) with each decision's cost ``costs[b, codes[n, b]]`` (which the caller sums with numpy, so
    that a mean over them equals ``costs[arange(B), codes].mean()`` to the last bit)."""
    n_inputs, n_blocks = codes.shape
    for n in range(n_inputs):
        for b in range(n_blocks):
            code = codes[n, b]
            counts[b, code] += 1
            gathered[n, b] = costs[b, code]


@numba.njit(cache=True, parallel=True)
def split_presets(costs, us_per_cycle, lanes, by_metric, energy, latency):  # pragma: no cover - compiled
    """Unpack ``replay_presets``' (N, P·M) totals of P presets × M metrics into contiguous rows: ``by_metric``
    (P, M, N), ``energy`` (P, N), the sum of the three energy lanes added left to right, and ``latency`` (P, N),
    the cycles lane × ``us_per_cycle[p]``. ``lanes`` holds the lane of cycles and of the three energy parts within a
    preset's M. Contiguous rows let numpy sum each column pairwise, as a whole-run mean does."""
    n_inputs = costs.shape[0]
    presets, metrics = by_metric.shape[0], by_metric.shape[1]
    cycles, first, second, third = lanes[0], lanes[1], lanes[2], lanes[3]
    for n in numba.prange(n_inputs):
        for p in range(presets):
            base = p * metrics
            for m in range(metrics):
                by_metric[p, m, n] = costs[n, base + m]
            energy[p, n] = costs[n, base + first] + costs[n, base + second] + costs[n, base + third]
            latency[p, n] = costs[n, base + cycles] * us_per_cycle[p]


def split_presets_reference(costs: np.ndarray, us_per_cycle: np.ndarray, lanes, metrics: int):
    """Plain-numpy twin of ``split_presets``: (by_metric, energy, latency) for costs (N, P·metrics)."""
    presets = costs.shape[1] // metrics
    by_metric = costs.reshape(costs.shape[0], presets, metrics).transpose(1, 2, 0)
    cycles, first, second, third = lanes
    energy = by_metric[:, first] + by_metric[:, second] + by_metric[:, third]
    latency = by_metric[:, cycles] * np.asarray(us_per_cycle)[:, None]
    return by_metric, energy, latency


def tally_decisions_reference(codes: np.ndarray, costs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Plain-numpy twin of ``tally_decisions``: (counts, gathered) for codes (N, B) and costs (B, K)."""
    counts = np.stack([np.bincount(codes[:, b], minlength=costs.shape[1]) for b in range(codes.shape[1])])
    return counts.astype(np.int64), costs[np.arange(codes.shape[1]), codes]


def code_bits(options: int) -> int:
    """Bits that hold an option code: pair tables index a pair ``(k1, k2)`` as ``k1 << bits | k2``. Three bits
    (DFS's seven options, SkipNet's two) or four, so that only two kernels are ever compiled."""
    return 3 if int(options) <= 8 else 4


def pair_tables(tables: np.ndarray) -> np.ndarray:
    """Combine adjacent gated blocks, lanes in groups of ``LANE_GROUP``:
    ``pairs[g, j, k1 << bits | k2, l] = tables[2j, k1, g·LANE_GROUP + l] + tables[2j+1, k2, g·LANE_GROUP + l]``.

    ``tables`` is (B, K, P). Codes that are not options (``K <= k < 2**bits``) cost zero, so every code masked to
    ``bits`` bits indexes inside the table. An odd last block is paired with a zero-cost dummy block whose code is
    always 0, and P is padded with zero lanes to a multiple of ``LANE_GROUP``. Each input then needs B/2 lookups instead
    of B, and each lookup reads ``LANE_GROUP`` adjacent float64, which the vectoriser turns into vector loads.
    """
    tables = np.asarray(tables, dtype=np.float64)
    blocks, options, lanes = tables.shape
    if blocks % 2:
        tables = np.concatenate([tables, np.zeros((1, options, lanes))], axis=0)
    bits = code_bits(options)
    groups = -(-lanes // LANE_GROUP)
    padded = np.zeros((tables.shape[0], 1 << bits, groups * LANE_GROUP))
    padded[:, :options, :lanes] = tables
    pairs = padded[0::2, :, None, :] + padded[1::2, None, :, :]  # (B/2, rows, rows, lanes)
    pairs = pairs.reshape(pairs.shape[0], 1 << 2 * bits, groups, LANE_GROUP)
    return np.ascontiguousarray(pairs.transpose(2, 0, 1, 3))


def _pair_kernel_source(bits: int):
    """The pair kernel's Python source for codes of ``bits`` bits, a closure so that Numba compiles the shift and
    mask as constants (1.3x faster than passing them in). It fills ``out`` (N, groups·LANE_GROUP) one group of
    ``LANE_GROUP`` lanes per pass, with even and odd pairs in two separate sets of totals, which halves each chain of
    dependent additions. Codes are masked to ``bits`` bits, so any code reads inside ``pairs``; an odd last block is
    looked up alone (its pair's dummy is 0)."""
    mask = (1 << bits) - 1

    def kernel(codes, pairs, fixed, out):  # pragma: no cover - compiled
        if pairs.shape[2] != 1 << (2 * bits):  # a kernel of another code width would read past the tables
            raise ValueError("pair tables do not match the kernel's code width")
        n_inputs, n_blocks = codes.shape
        full_pairs = n_blocks // 2
        for g in range(pairs.shape[0]):
            group = pairs[g]
            start = fixed[g]
            base = 5 * g
            for n in numba.prange(n_inputs):
                row = codes[n]
                a0 = start[0]
                a1 = start[1]
                a2 = start[2]
                a3 = start[3]
                a4 = start[4]
                b0 = 0.0
                b1 = 0.0
                b2 = 0.0
                b3 = 0.0
                b4 = 0.0
                j = 0
                while j + 1 < full_pairs:
                    r = group[j, ((np.int64(row[2 * j]) & mask) << bits) | (row[2 * j + 1] & mask)]
                    q = group[j + 1, ((np.int64(row[2 * j + 2]) & mask) << bits) | (row[2 * j + 3] & mask)]
                    a0 += r[0]
                    a1 += r[1]
                    a2 += r[2]
                    a3 += r[3]
                    a4 += r[4]
                    b0 += q[0]
                    b1 += q[1]
                    b2 += q[2]
                    b3 += q[3]
                    b4 += q[4]
                    j += 2
                if j < full_pairs:
                    r = group[j, ((np.int64(row[2 * j]) & mask) << bits) | (row[2 * j + 1] & mask)]
                    a0 += r[0]
                    a1 += r[1]
                    a2 += r[2]
                    a3 += r[3]
                    a4 += r[4]
                if n_blocks % 2:
                    r = group[full_pairs, (np.int64(row[2 * full_pairs]) & mask) << bits]
                    b0 += r[0]
                    b1 += r[1]
                    b2 += r[2]
                    b3 += r[3]
                    b4 += r[4]
                totals = out[n]
                totals[base] = a0 + b0
                totals[base + 1] = a1 + b1
                totals[base + 2] = a2 + b2
                totals[base + 3] = a3 + b3
                totals[base + 4] = a4 + b4

    # Numba's cache keys closures by their values, but kernels that share a name share one index file, which two
    # processes compiling different widths at once could leave pointing at the other's code.
    kernel.__name__ = kernel.__qualname__ = f"pair_kernel_{bits}bit"
    return kernel


@functools.cache
def _pair_kernel(bits: int):
    """The pair kernel for ``bits``-bit codes, compiled (or loaded from Numba's cache) once per process with LLVM's
    SLP vectoriser on.

    Numba leaves SLP vectorisation off by default since LLVM miscompiled other code with it (numba#8705, #8852);
    for this kernel it turns five scalar adds per lookup into one vector and one scalar add, 1.3-1.4x faster on
    the CI machine class. The test suite checks this compiled kernel against ``replay_reference``. Only the
    compilation of this one function sees the setting.
    """
    readonly = functools.partial(numba.types.Array, layout="C", readonly=True)  # writable arrays convert to these
    signature = numba.void(
        readonly(numba.uint8, 2), readonly(numba.float64, 4), readonly(numba.float64, 2), numba.float64[:, ::1]
    )
    # Numba sets its config attributes at import time from NUMBA_* environment variables (through globals()), so
    # mypy cannot see SLP_VECTORIZE on the module: read and write it through an untyped name.
    config: Any = numba.config
    previous = config.SLP_VECTORIZE
    config.SLP_VECTORIZE = 1
    try:
        return numba.njit(signature, cache=True, parallel=True, boundscheck=False)(_pair_kernel_source(bits))
    finally:
        config.SLP_VECTORIZE = previous


def _checked(codes, tables, fixed, check_codes: bool):
    tables = np.ascontiguousarray(tables, dtype=np.float64)
    fixed = np.ascontiguousarray(fixed, dtype=np.float64)
    codes = np.asarray(codes)
    if tables.ndim != 3 or tables.shape[1] == 0:
        raise ValueError(f"cost table must be 3-D (blocks, options >= 1, lanes), got shape {tables.shape}")
    if fixed.shape != (tables.shape[2],):
        raise ValueError(f"fixed costs must have shape ({tables.shape[2]},), got {fixed.shape}")
    if codes.ndim != 2:
        raise ValueError(f"codes must be 2-D (inputs, blocks), got shape {codes.shape}")
    if codes.shape[1] != tables.shape[0]:
        raise ValueError(f"codes have {codes.shape[1]} blocks but the cost table has {tables.shape[0]}")
    if codes.size and not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"codes must be integers, got dtype {codes.dtype}")
    if codes.size and (check_codes or tables.shape[1] > MAX_PAIRED_OPTIONS):  # the wide kernel does not mask
        low = 0 if codes.dtype.kind == "u" else codes.min()  # unsigned codes need one pass, not two
        high = codes.max()
        if low < 0 or high >= tables.shape[1]:
            raise ValueError(f"codes must lie in 0..{tables.shape[1] - 1}, got {codes.min()}..{high}")
    return codes, tables, fixed


def replay_presets(
    codes: np.ndarray, tables: np.ndarray, fixed: np.ndarray, out: np.ndarray | None = None, *, check_codes: bool = True
) -> np.ndarray:
    """Per-input totals ``out[n, p] = fixed[p] + Σ_b tables[b, codes[n, b], p]`` for codes (N, B), tables (B, K, P)
    and fixed (P,): one metric on P presets, or P metrics of one preset.

    Raises ``ValueError`` for mismatched shapes, non-integer codes, or (with ``check_codes``) codes outside
    ``0..K-1``. ``check_codes=False`` skips that pass over the codes for codes already validated, such as a
    ``TraceRun``'s; the pair kernel never reads outside its tables whatever the codes, but out-of-range codes then
    give wrong totals instead of an error (more than ``MAX_PAIRED_OPTIONS`` options are always checked).

    Returns an (N, P) float64 view of an (N, P padded to a multiple of ``LANE_GROUP``) buffer, which can be passed back
    as ``out`` to avoid allocating (and page-faulting) a new one for every chunk. With more than
    ``MAX_PAIRED_OPTIONS`` options, ``out`` is not used.
    """
    codes, tables, fixed = _checked(codes, tables, fixed, check_codes)
    lanes = tables.shape[2]
    if tables.shape[1] > MAX_PAIRED_OPTIONS:
        wide = np.ascontiguousarray(codes, dtype=np.uint8 if tables.shape[1] <= 256 else np.int64)
        return _replay_kernel(wide, tables, fixed)
    pairs = pair_tables(tables)
    width = pairs.shape[0] * LANE_GROUP
    padded_fixed = np.zeros(width)
    padded_fixed[:lanes] = fixed
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    if (
        out is None
        or out.shape != (codes.shape[0], width)
        or out.dtype != np.float64
        or not out.flags.c_contiguous
        or not out.flags.writeable
    ):
        out = np.empty((codes.shape[0], width), dtype=np.float64)
    bits = code_bits(tables.shape[1])
    _pair_kernel(bits)(codes, pairs, padded_fixed.reshape(-1, LANE_GROUP), out)
    return out[:, :lanes]


def replay_costs(codes, cost_table, *, check_codes: bool = True) -> np.ndarray:
    """Per-input metrics (N, metrics) for option ``codes`` (N, B) under one cost table.

    ``cost_table`` is anything with ``.block`` (B, options, metrics) and ``.fixed`` (metrics,) float arrays (a
    ``cost_models.CostTable``), or a ``(block, fixed)`` pair. Errors and ``check_codes`` as in ``replay_presets``.
    """
    table, fixed = cost_table if isinstance(cost_table, tuple) else (cost_table.block, cost_table.fixed)
    return np.ascontiguousarray(replay_presets(codes, table, fixed, check_codes=check_codes))


@numba.njit(cache=True, parallel=True)
def precision_deltas(codes, precision, deltas, out):  # pragma: no cover - compiled
    """``out[n, m] = Σ_b deltas[b, codes[n, b], precision[n, b], m]``: what the effective precisions of input ``n``
    change in each metric on a dynamic-precision preset (``CostTable.precision_deltas``; precision 0 changes
    nothing)."""
    n_inputs, n_blocks = codes.shape
    n_metrics = deltas.shape[3]
    for n in numba.prange(n_inputs):
        for m in range(n_metrics):
            out[n, m] = 0.0
        for b in range(n_blocks):
            level = precision[n, b]
            if level:
                row = deltas[b, codes[n, b], level]
                for m in range(n_metrics):
                    out[n, m] += row[m]


def precision_deltas_reference(codes: np.ndarray, precision: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    """Plain-numpy twin of ``precision_deltas``."""
    out = np.zeros((codes.shape[0], deltas.shape[3]))
    for b in range(codes.shape[1]):
        out += deltas[b, codes[:, b].astype(np.intp), precision[:, b].astype(np.intp)]
    return out
