"""DFS against its baselines (SkipNet, the binary-option ablation of DFS, static quantization) at matched cost and at
matched accuracy.

For every DFS run and preset, each baseline method's Pareto front (cost down, accuracy up) is interpolated linearly
between its runs: the accuracy the baseline reaches at the DFS run's cost, and the cost it needs for the DFS run's
accuracy. Outside the span of the front we never extrapolate; the status says on which side the DFS run lies
("cheaper than every baseline run", "more accurate than every baseline run", ...). Independently of the fronts'
spans, ``dominated_by`` names a baseline run that is no costlier and no less accurate than the DFS run (and better
in one of the two), the plainest verdict there is.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.pareto import pareto_front

__all__ = [
    "BASELINES",
    "COST_AXES",
    "OUTSIDE",
    "dominating_run",
    "front_points",
    "interpolate_front",
    "matched_comparison",
]

BASELINES = ("skipnet", "dfs_binary", "static")
COST_AXES = ("energy_pj_mean", "latency_us_mean")
OK, NO_RUNS = "ok", "no runs"
# where a DFS run lies outside a baseline front's span, by the axis matched on
OUTSIDE = {
    "cost": ("cheaper than every baseline run", "costlier than every baseline run"),
    "accuracy": ("less accurate than every baseline run", "more accurate than every baseline run"),
}


def front_points(per_run: pd.DataFrame, cost: str, extra: Sequence[str] = ()) -> pd.DataFrame:
    """The Pareto-optimal rows of ``per_run`` for (``cost`` min, accuracy max), sorted by cost, duplicates dropped.

    Along the result both cost and accuracy strictly increase, so either can be interpolated against the other.
    """
    front = per_run[pareto_front(per_run, {cost: "min", "accuracy": "max"})]
    front = front.sort_values([cost, "accuracy"]).drop_duplicates(subset=[cost, "accuracy"])
    return front[[cost, "accuracy", *extra]].reset_index(drop=True)


def interpolate_front(front: pd.DataFrame, x: str, value: float, y: Sequence[str]) -> tuple[dict, str]:
    """Linear interpolation of columns ``y`` at ``front[x] == value``; ``({}, status)`` outside the front's span,
    the status saying which side (``OUTSIDE``; ``x`` is "accuracy" or a cost)."""
    if front.empty:
        return {}, NO_RUNS
    xs = front[x].to_numpy(dtype=float)
    below, above = OUTSIDE["accuracy" if x == "accuracy" else "cost"]
    if not np.isfinite(value):
        raise ValueError(f"{x} is {value}: a matched comparison needs a finite value")
    if value < xs[0]:
        return {}, below
    if value > xs[-1]:
        return {}, above
    return {column: float(np.interp(value, xs, front[column].to_numpy(dtype=float))) for column in y}, OK


def dominating_run(runs: pd.DataFrame, cost: str, at_cost: float, accuracy: float) -> str:
    """The name of a run in ``runs`` no costlier and no less accurate than (``at_cost``, ``accuracy``) and strictly
    better in one of the two (the cheapest such run, then the most accurate); "" when there is none."""
    better = runs[
        (runs[cost] <= at_cost)
        & (runs["accuracy"] >= accuracy)
        & ((runs[cost] < at_cost) | (runs["accuracy"] > accuracy))
    ]
    if better.empty:
        return ""
    return str(better.sort_values([cost, "accuracy"], ascending=[True, False])["run"].iloc[0])


def matched_comparison(
    per_run: pd.DataFrame,
    baselines: Sequence[str] = BASELINES,
    axes: Sequence[str] = COST_AXES,
    adaptive: Sequence[str] = ("dfs",),
) -> pd.DataFrame:
    """One row per DFS run × preset × baseline × cost axis (``adaptive``: the methods whose runs are compared, DFS by
    default; their columns keep the ``dfs_`` names, and ``method`` says which).

    Columns: ``dfs_cost`` and ``dfs_accuracy`` of the DFS run; ``baseline_accuracy_at_cost`` (the baseline's
    accuracy at the same cost) and ``accuracy_gain`` = DFS − baseline; ``baseline_cost_at_accuracy`` (the cost the
    baseline needs for the DFS run's accuracy) and ``cost_ratio`` = baseline / DFS (above 1: DFS is cheaper);
    ``status_at_cost`` and ``status_at_accuracy`` say "ok", "no runs" or where the DFS run lies outside the front
    (``OUTSIDE``); ``dominated_by`` names a baseline run at no more cost and no less accuracy ("" if none).
    """
    axes = [axis for axis in axes if axis in per_run.columns]
    rows = []
    for preset, at_preset in per_run.groupby("preset", sort=False):
        for axis in axes:
            fronts = {name: front_points(at_preset[at_preset["method"] == name], axis) for name in baselines}
            for _, dfs in at_preset[at_preset["method"].isin(adaptive)].iterrows():
                cost, accuracy = float(dfs[axis]), float(dfs["accuracy"])
                for name, front in fronts.items():
                    dominated_by = dominating_run(at_preset[at_preset["method"] == name], axis, cost, accuracy)
                    at_cost, status_cost = interpolate_front(front, axis, cost, ["accuracy"])
                    at_accuracy, status_accuracy = interpolate_front(front, "accuracy", accuracy, [axis])
                    baseline_accuracy = at_cost.get("accuracy", np.nan)
                    baseline_cost = at_accuracy.get(axis, np.nan)
                    rows.append(
                        {
                            "run": dfs["run"],
                            "method": dfs["method"],
                            "budget": dfs.get("budget"),
                            "preset": preset,
                            "baseline": name,
                            "axis": axis,
                            "dfs_cost": cost,
                            "dfs_accuracy": accuracy,
                            "baseline_accuracy_at_cost": baseline_accuracy,
                            "accuracy_gain": accuracy - baseline_accuracy,
                            "status_at_cost": status_cost,
                            "baseline_cost_at_accuracy": baseline_cost,
                            "cost_ratio": baseline_cost / cost if cost > 0 else np.nan,
                            "status_at_accuracy": status_accuracy,
                            "dominated_by": dominated_by,
                        }
                    )
    columns = [
        "run",
        "method",
        "budget",
        "preset",
        "baseline",
        "axis",
        "dfs_cost",
        "dfs_accuracy",
        "baseline_accuracy_at_cost",
        "accuracy_gain",
        "status_at_cost",
        "baseline_cost_at_accuracy",
        "cost_ratio",
        "status_at_accuracy",
        "dominated_by",
    ]
    return pd.DataFrame(rows, columns=columns)
