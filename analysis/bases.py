"""DFS gates trained on different cost bases (the paper's proxy, an accelerator's energy or latency) at matched cost.

A DFS run's training cost basis is what its budget was measured in (``per_run.cost_basis``: "proxy" or "<preset>
<metric>"). For every DFS run, every other basis that trained DFS runs, every preset and every cost axis, the other
basis's Pareto front (cost down, accuracy up) is interpolated at the run's cost, as ``analysis.matched`` does for the
baselines: a hardware-trained gate against the proxy-trained front answers "does training on the hardware's own cost
buy accuracy at the same cost?", and the same row on another preset answers "how does a gate trained for one
accelerator fare on another?".

The front's 95% interval at the run's cost is the linear interpolation of its two neighbouring runs' Wilson
intervals [our approximation: it is exact at the runs themselves]. ``verdict`` compares the run's interval with it:
"more accurate" or "less accurate" when the two are disjoint, "within intervals" when they overlap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.matched import COST_AXES, dominating_run, front_points, interpolate_front

__all__ = ["PROXY", "AXIS_OF_METRIC", "basis_comparison"]

PROXY = "proxy"
AXIS_OF_METRIC = {"energy": "energy_pj_mean", "latency": "latency_us_mean"}
_INTERVAL = ["accuracy", "accuracy_ci_low", "accuracy_ci_high"]
COLUMNS = [
    "run",
    "budget",
    "cost_basis",
    "reference_basis",
    "preset",
    "axis",
    "own_basis",
    "cost",
    "accuracy",
    "accuracy_ci_low",
    "accuracy_ci_high",
    "reference_accuracy_at_cost",
    "reference_ci_low",
    "reference_ci_high",
    "accuracy_gain",
    "verdict",
    "status_at_cost",
    "reference_cost_at_accuracy",
    "cost_ratio",
    "status_at_accuracy",
    "dominated_by",
]


def _is_own_basis(basis: str, preset: str, axis: str) -> bool:
    """Whether ``preset`` and ``axis`` are what the basis "<preset> <metric>" measured during training."""
    name, _, metric = basis.rpartition(" ")
    return name == preset and AXIS_OF_METRIC.get(metric) == axis


def _verdict(low: float, high: float, reference_low: float, reference_high: float) -> str:
    if not np.isfinite(reference_low):
        return ""
    if low > reference_high:
        return "more accurate"
    if high < reference_low:
        return "less accurate"
    return "within intervals"


def basis_comparison(per_run: pd.DataFrame, axes: Sequence[str] = COST_AXES, method: str = "dfs") -> pd.DataFrame:
    """One row per run of ``method`` × other training basis × preset × cost axis (empty if one basis trained all).

    ``cost`` and ``accuracy`` (with its Wilson interval) are the run's; ``reference_accuracy_at_cost`` (with the
    interpolated interval) is what runs trained on ``reference_basis`` reach at that cost, ``accuracy_gain`` the
    run's accuracy minus it; ``reference_cost_at_accuracy`` is the cost they need for the run's accuracy and
    ``cost_ratio`` = reference / run (above 1: the run is cheaper). ``own_basis`` marks the preset and axis the run's
    budget was measured on. Statuses and ``dominated_by`` (a reference run at no more cost and no less accuracy) are as
    in ``analysis.matched``.
    """
    runs = per_run[per_run["method"] == method]
    axes = [axis for axis in axes if axis in per_run.columns]
    rows: list[dict] = []
    if "cost_basis" in runs.columns and runs["cost_basis"].nunique() > 1:
        bases = list(dict.fromkeys(runs["cost_basis"]))
        for preset, at_preset in runs.groupby("preset", sort=False):
            for axis in axes:
                groups = {basis: at_preset[at_preset["cost_basis"] == basis] for basis in bases}
                fronts = {basis: front_points(group, axis, _INTERVAL[1:]) for basis, group in groups.items()}
                rows.extend(
                    _row(run, reference, str(preset), axis, fronts[reference], groups[reference])
                    for _, run in at_preset.iterrows()
                    for reference in bases
                    if reference != run["cost_basis"]
                )
    return pd.DataFrame(rows, columns=COLUMNS)


def _row(run: pd.Series, reference: str, preset: str, axis: str, front: pd.DataFrame, group: pd.DataFrame) -> dict:
    cost, accuracy = float(run[axis]), float(run["accuracy"])
    at_cost, status_cost = interpolate_front(front, axis, cost, _INTERVAL)
    at_accuracy, status_accuracy = interpolate_front(front, "accuracy", accuracy, [axis])
    # the statuses name the front's runs "baseline"; here they are the reference basis's runs
    status_cost, status_accuracy = (
        status.replace("baseline", "reference") for status in (status_cost, status_accuracy)
    )
    reference_accuracy = at_cost.get("accuracy", np.nan)
    reference_low = at_cost.get("accuracy_ci_low", np.nan)
    reference_high = at_cost.get("accuracy_ci_high", np.nan)
    reference_cost = at_accuracy.get(axis, np.nan)
    low, high = float(run["accuracy_ci_low"]), float(run["accuracy_ci_high"])
    return {
        "run": run["run"],
        "budget": run.get("budget"),
        "cost_basis": run["cost_basis"],
        "reference_basis": reference,
        "preset": preset,
        "axis": axis,
        "own_basis": _is_own_basis(run["cost_basis"], preset, axis),
        "cost": cost,
        "accuracy": accuracy,
        "accuracy_ci_low": low,
        "accuracy_ci_high": high,
        "reference_accuracy_at_cost": reference_accuracy,
        "reference_ci_low": reference_low,
        "reference_ci_high": reference_high,
        "accuracy_gain": accuracy - reference_accuracy,
        "verdict": _verdict(low, high, reference_low, reference_high),
        "status_at_cost": status_cost,
        "reference_cost_at_accuracy": reference_cost,
        "cost_ratio": reference_cost / cost if cost > 0 else np.nan,
        "status_at_accuracy": status_accuracy,
        "dominated_by": dominating_run(group, axis, cost, accuracy),
    }
