"""Replay kernel: every input's cost is the always-run cost plus one table lookup per gated block (DESIGN §4).

    per_input[n, m] = fixed[m] + Σ_b table[b, codes[n, b], m]

``_replay_kernel`` is a private Numba kernel (parallel over inputs) taking arrays only; ``replay_reference`` is its
plain-numpy twin with the same signature, which the tests compare it with; ``replay_costs`` is the public wrapper
that validates shapes and code ranges (``ValueError``) and calls the kernel. Imports numpy and numba only.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["replay_costs", "replay_reference"]


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
