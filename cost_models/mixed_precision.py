"""Per-layer mixed precision searched on a preset's own cost: HAQ's problem (Wang et al., CVPR 2019) without its RL.

Each gated block gets one static width. What a choice costs is the preset's cost of that block at that option
(``cost_models.budget.budget_costs``: energy or latency, 100% = every gated block at full precision); what it loses is
a per-block sensitivity measured on the validation split (``dfs_sim.model.mixed``: the validation loss with that one
block at that width and the rest at full precision, less the full-precision loss). Assuming the losses add across
blocks (the first-order assumption of HAWQ, Dong et al., ICCV 2019, and of HAQ's reward), the best assignment under a
budget is a multiple-choice knapsack, which ``search_widths`` solves by dynamic programming over the cost, rounded up
to ``resolution`` steps of the budget so that the answer never exceeds it: exact but for assignments within
blocks/resolution of the budget, which the rounding may miss. With 17 blocks and a handful of
widths that takes milliseconds; an RL agent or a greedy pass would only approximate it (docs/departures.md).
``search_widths_reference`` enumerates every assignment, for the tests.
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["search_widths", "search_widths_reference"]


def search_widths(sensitivity: np.ndarray, costs: np.ndarray, budget_pct: float, resolution: int = 4000) -> np.ndarray:
    """The option index per block (blocks × options inputs) minimising the summed ``sensitivity`` with the mean cost
    at most ``budget_pct`` (costs as ``budget_costs``: a mean of 1 is 100%). Raises ``ValueError`` when even the
    cheapest assignment exceeds the budget. Ties go to the cheaper assignment."""
    sensitivity, costs = np.asarray(sensitivity, dtype=np.float64), np.asarray(costs, dtype=np.float64)
    if sensitivity.shape != costs.shape or sensitivity.ndim != 2:
        raise ValueError(f"sensitivity {sensitivity.shape} and costs {costs.shape} must be the same blocks × options")
    blocks = costs.shape[0]
    allowed = budget_pct / 100.0 * blocks  # the summed cost the budget allows
    if costs.min(axis=1).sum() > allowed * (1 + 1e-12):
        raise ValueError(
            f"no assignment fits {budget_pct:g}%: the cheapest costs {costs.min(axis=1).mean() * 100:.2f}%"
        )
    step = allowed / resolution
    units = np.ceil(costs / step - 1e-9).astype(np.int64)  # rounded up: a found assignment always fits
    best = np.full(resolution + 1, np.inf)  # best[c]: least summed sensitivity at exactly c units so far
    best[0] = 0.0
    choice = np.zeros((blocks, resolution + 1), dtype=np.int64)
    for b in range(blocks):
        candidates = np.full((costs.shape[1], resolution + 1), np.inf)
        for k in range(costs.shape[1]):
            u = units[b, k]
            if u <= resolution:
                candidates[k, u:] = best[: resolution + 1 - u] + sensitivity[b, k]
        choice[b] = candidates.argmin(axis=0)
        best = candidates.min(axis=0)
    if not np.isfinite(best).any():  # only assignments within the rounding of the budget fit: the cheapest does
        return costs.argmin(axis=1)
    end = int(np.flatnonzero(best == best[np.isfinite(best)].min())[0])  # the cheapest of the best
    codes = np.zeros(blocks, dtype=np.int64)
    for b in range(blocks - 1, -1, -1):
        codes[b] = choice[b, end]
        end -= units[b, codes[b]]
    return codes


def search_widths_reference(sensitivity: np.ndarray, costs: np.ndarray, budget_pct: float) -> np.ndarray:
    """Every assignment tried (options ** blocks): the exact optimum, for small tests."""
    sensitivity, costs = np.asarray(sensitivity, dtype=np.float64), np.asarray(costs, dtype=np.float64)
    blocks, options = costs.shape
    allowed = budget_pct / 100.0 * blocks
    best, best_key = None, None
    for codes in itertools.product(range(options), repeat=blocks):
        index = (np.arange(blocks), np.asarray(codes))
        total = costs[index].sum()
        if total <= allowed * (1 + 1e-12):
            key = (sensitivity[index].sum(), total)
            if best_key is None or key < best_key:
                best, best_key = np.asarray(codes), key
    if best is None:
        raise ValueError(f"no assignment fits {budget_pct:g}%")
    return best
