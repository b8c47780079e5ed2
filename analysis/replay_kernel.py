"""Replay kernel: every input's cost is the always-run cost plus one table lookup per gated block (DESIGN §4).

    per_input[n, m] = fixed[m] + Σ_b table[b, codes[n, b], m]

``_replay_kernel`` is a private Numba kernel (parallel over inputs) taking arrays only; ``replay_reference`` is its
plain-numpy twin with the same signature, which the tests compare it with; ``replay_costs`` is the public wrapper
that validates shapes and code ranges (``ValueError``) and calls the kernel. Imports numpy and numba only.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["replay_costs", "replay_reference", "replay_presets", "replay_presets_reference", "pair_tables"]


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
    """Plain-numpy twin of the kernel: gather ``table[b, codes[:, b]]`` for every block and add, block by block."""
    out = np.tile(np.asarray(fixed, dtype=np.float64), (codes.shape[0], 1))
    for b in range(codes.shape[1]):
        out += table[b, codes[:, b].astype(np.intp)]
    return out


def replay_costs(codes, cost_table) -> np.ndarray:
    """Per-input metrics (N, metrics) for option ``codes`` (N, B) under a cost table.

    ``cost_table`` is anything with ``.block`` (B, options, metrics) and ``.fixed`` (metrics,) float arrays (a
    ``cost_models.CostTable``), or a ``(block, fixed)`` pair. Raises ``ValueError`` for mismatched shapes or codes
    outside ``0..options-1``.
    """
    if isinstance(cost_table, tuple):
        table, fixed = cost_table
    else:
        table, fixed = cost_table.block, cost_table.fixed
    table = np.ascontiguousarray(table, dtype=np.float64)
    fixed = np.ascontiguousarray(fixed, dtype=np.float64)
    codes = np.asarray(codes)
    if table.ndim != 3:
        raise ValueError(f"cost table must be 3-D (blocks, options, metrics), got shape {table.shape}")
    if fixed.shape != (table.shape[2],):
        raise ValueError(f"fixed costs must have shape ({table.shape[2]},), got {fixed.shape}")
    if codes.ndim != 2:
        raise ValueError(f"codes must be 2-D (inputs, blocks), got shape {codes.shape}")
    if codes.shape[1] != table.shape[0]:
        raise ValueError(f"codes have {codes.shape[1]} blocks but the cost table has {table.shape[0]}")
    if codes.size and not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"codes must be integers, got dtype {codes.dtype}")
    if codes.size and (codes.min() < 0 or codes.max() >= table.shape[1]):
        raise ValueError(f"codes must lie in 0..{table.shape[1] - 1}, got {codes.min()}..{codes.max()}")
    codes = np.ascontiguousarray(codes, dtype=np.uint8 if table.shape[1] <= 256 else np.int64)
    return _replay_kernel(codes, table, fixed)


# --- Many presets at once: one metric for P presets per input, with adjacent blocks combined into pairs ----------

# Presets are summed in groups of LANES per pass, each lane a scalar running total that stays in a register. Numba
# does not vectorise these sums, so every padded lane costs a load and an add: five lanes (the shipped preset count)
# measured 1.7x faster than eight lanes padded to a cache line on the 2-core AVX2 machine CI runs on.
LANES = 5


def pair_tables(tables: np.ndarray) -> np.ndarray:
    """Combine adjacent gated blocks: ``pairs[j, k1 * K + k2, p] = tables[2j, k1, p] + tables[2j+1, k2, p]``.

    ``tables`` is (B, K, P) for one metric on P presets. An odd last block is paired with a zero-cost dummy block
    whose code is always 0. P is padded with zeros to a multiple of ``LANES``. Each input then needs B/2 lookups
    instead of B.
    """
    tables = np.asarray(tables, dtype=np.float64)
    blocks, options, presets = tables.shape
    if blocks % 2:
        tables = np.concatenate([tables, np.zeros((1, options, presets))], axis=0)
    padded = -(-presets // LANES) * LANES
    pairs = np.zeros((tables.shape[0] // 2, options * options, padded), dtype=np.float64)
    pairs[:, :, :presets] = (tables[0::2, :, None, :] + tables[1::2, None, :, :]).reshape(-1, options * options, presets)
    return pairs


@numba.njit(cache=True, parallel=True, fastmath=True, boundscheck=False)
def _pair_kernel(codes, pairs, fixed, options, out):  # pragma: no cover - compiled
    """Fill ``out`` (N, lanes): five scalar totals per pass, and even and odd pairs into two separate sets of them,
    which halves each chain of dependent additions. An odd last block is looked up alone (its pair's dummy is 0)."""
    n_inputs, n_blocks = codes.shape
    full_pairs = n_blocks // 2
    odd = n_blocks % 2 == 1
    for base in range(0, pairs.shape[2], 5):
        group = pairs[:, :, base:base + 5]
        for n in numba.prange(n_inputs):
            a0 = fixed[base]
            a1 = fixed[base + 1]
            a2 = fixed[base + 2]
            a3 = fixed[base + 3]
            a4 = fixed[base + 4]
            b0 = 0.0
            b1 = 0.0
            b2 = 0.0
            b3 = 0.0
            b4 = 0.0
            j = 0
            while j + 1 < full_pairs:
                r = group[j, np.int64(codes[n, 2 * j]) * options + codes[n, 2 * j + 1]]
                q = group[j + 1, np.int64(codes[n, 2 * j + 2]) * options + codes[n, 2 * j + 3]]
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
                r = group[j, np.int64(codes[n, 2 * j]) * options + codes[n, 2 * j + 1]]
                a0 += r[0]
                a1 += r[1]
                a2 += r[2]
                a3 += r[3]
                a4 += r[4]
            if odd:
                r = group[full_pairs, np.int64(codes[n, 2 * full_pairs]) * options]
                b0 += r[0]
                b1 += r[1]
                b2 += r[2]
                b3 += r[3]
                b4 += r[4]
            row = out[n]
            row[base] = a0 + b0
            row[base + 1] = a1 + b1
            row[base + 2] = a2 + b2
            row[base + 3] = a3 + b3
            row[base + 4] = a4 + b4
    return out


def replay_presets(codes: np.ndarray, tables: np.ndarray, fixed: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """One metric for every input on P presets at once: ``out[n, p] = fixed[p] + Σ_b tables[b, codes[n, b], p]``.

    ``tables`` is (B, K, P) and ``fixed`` (P,). Validates like ``replay_costs``; returns an (N, P) float64 view of
    an (N, P padded to a multiple of LANES) buffer, which can be passed back as ``out`` to avoid allocating (and page-faulting) a new
    one for every chunk. ``replay_presets_reference`` is the plain-numpy twin.
    """
    tables = np.asarray(tables, dtype=np.float64)
    fixed = np.asarray(fixed, dtype=np.float64)
    codes = np.asarray(codes)
    if tables.ndim != 3 or fixed.shape != (tables.shape[2],):
        raise ValueError(f"tables must be (blocks, options, presets) and fixed (presets,), got {tables.shape} and {fixed.shape}")
    if codes.ndim != 2 or codes.shape[1] != tables.shape[0]:
        raise ValueError(f"codes must be (inputs, {tables.shape[0]}), got {codes.shape}")
    unsigned = codes.dtype.kind == "u"  # one pass over the codes instead of two
    if codes.size and ((not unsigned and codes.min() < 0) or codes.max() >= tables.shape[1]):
        raise ValueError(f"codes must lie in 0..{tables.shape[1] - 1}")
    presets = tables.shape[2]
    pairs = pair_tables(tables)
    padded_fixed = np.zeros(pairs.shape[2])
    padded_fixed[:presets] = fixed
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    if out is None or out.shape != (codes.shape[0], pairs.shape[2]) or out.dtype != np.float64:
        out = np.empty((codes.shape[0], pairs.shape[2]), dtype=np.float64)
    return _pair_kernel(codes, pairs, padded_fixed, tables.shape[1], out)[:, :presets]


def replay_presets_reference(codes: np.ndarray, tables: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """Plain-numpy twin of ``replay_presets``: a fancy-index gather per block."""
    out = np.tile(np.asarray(fixed, dtype=np.float64), (codes.shape[0], 1))
    for b in range(codes.shape[1]):
        out += tables[b, codes[:, b].astype(np.intp)]
    return out
