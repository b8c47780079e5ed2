"""Per-run summaries that need no hardware model: accuracy, option histogram and the paper's computation percentage."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from dfs_sim.options import proxy_costs
from dfs_sim.traces import TraceRun

__all__ = ["block_fractions", "option_histogram", "computation_pct", "proxy_per_input", "run_summary"]


def option_histogram(run: TraceRun) -> np.ndarray:
    """How many decisions (over inputs and blocks) took each option code; length ``len(run.options)``."""
    return np.bincount(run.codes.ravel(), minlength=len(run.options))


def block_fractions(run: TraceRun) -> np.ndarray:
    """The fraction of inputs that took each option at each gated block: (blocks, options), rows summing to 1."""
    counts = np.zeros((run.num_blocks, len(run.options)))
    for block in range(run.num_blocks):
        counts[block] = np.bincount(run.codes[:, block], minlength=len(run.options))
    return counts / run.num_inputs


def computation_pct(run: TraceRun) -> float:
    """The DFS paper's computation percentage: Σ mask·cost / (number of gated decisions) × 100 (docs/design.md §1).

    Option k costs (bits/32)², so a run where every block runs at full precision scores 100 and one that skips
    every block scores 0.
    """
    costs = np.array(proxy_costs(run.options))
    histogram = option_histogram(run)
    return float(histogram @ costs / run.codes.size * 100.0)


def proxy_per_input(run: TraceRun) -> np.ndarray:
    """Each input's mean proxy cost over its gated blocks, (bits/32)² per block (the paper's cost, per input)."""
    return np.array(proxy_costs(run.options))[run.codes].mean(axis=1)


def run_summary(runs: Iterable[TraceRun]) -> pd.DataFrame:
    """One row per run: inputs, accuracy, computation percentage and the fraction of decisions at each option.

    Option columns are named by option (``frac_skip``, ``frac_q8``, ..., ``frac_fp``) so that runs with different
    option lists (DFS's seven, SkipNet's two) share columns; an option a run does not have is 0 there.
    """
    rows = []
    option_names: list[str] = []
    for run in runs:
        histogram = option_histogram(run)
        row = {
            "run": run.name,
            "method": run.method,
            "budget": run.budget,
            "depth": run.meta["model"].get("depth"),
            "dataset": run.meta["model"]["dataset"],
            "n": run.num_inputs,
            "accuracy": run.accuracy,
            "computation_pct": computation_pct(run),
        }
        for option, count in zip(run.options, histogram, strict=True):
            row[f"frac_{option.name}"] = count / run.codes.size
            if option.name not in option_names:
                option_names.append(option.name)
        rows.append(row)
    frame = pd.DataFrame(rows)
    fraction_columns = [f"frac_{name}" for name in option_names]
    frame[fraction_columns] = frame[fraction_columns].fillna(0.0)
    return frame
