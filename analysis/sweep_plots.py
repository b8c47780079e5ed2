"""Plots of a design-space sweep: DFS's gain against each axis, a heat-map over two axes, and each method's front of
hardware points (mean energy against mean latency)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.pareto import pareto_mask
from analysis.plots import METHOD_STYLE, family_styles, plt, save_figure

__all__ = ["gain_by_axis_figure", "gain_heatmap_figure", "hardware_front_figure", "write_sweep_plots"]

GAINS = {
    "energy_ratio_vs_skipnet": "SkipNet",
    "energy_ratio_vs_dfs_binary": "DFS skip/fp only",
    "energy_ratio_vs_static": "static",
}
GAIN_LABEL = "Energy the baseline needs for DFS's accuracy ÷ DFS's energy"


def _label(axis: str) -> str:
    return axis.removeprefix("axis:")


GAIN_STYLE = {  # one colour and marker per baseline, as in the replay's plots
    "energy_ratio_vs_skipnet": METHOD_STYLE["skipnet"],
    "energy_ratio_vs_dfs_binary": METHOD_STYLE["dfs_binary"],
    "energy_ratio_vs_static": METHOD_STYLE["static"],
}


def gain_by_axis_figure(frame: pd.DataFrame, axes: Sequence[str]) -> plt.Figure:
    """For each axis: the matched-accuracy energy ratio (above 1: DFS saves), averaged over the other axes for each
    DFS run; one line per baseline (the median over DFS runs) with the band between the runs' least and greatest, so
    that the plot reads the same at 3 runs or 100."""
    dfs = frame[frame["method"] == "dfs"]
    figure, panels = plt.subplots(1, len(axes), figsize=(4.6 * len(axes), 3.8), squeeze=False, layout="constrained")
    for panel, axis in zip(panels.ravel(), axes, strict=True):
        column = f"axis:{axis}"
        for gain, baseline in GAINS.items():
            per_run = dfs.groupby(["run", column])[gain].mean().unstack(column)  # DFS runs × axis values
            per_run = per_run.dropna(how="all")  # runs no baseline run is as accurate as, at any point
            if per_run.empty:
                continue
            style = GAIN_STYLE[gain]
            positions = np.arange(per_run.shape[1])
            panel.fill_between(
                positions, per_run.min().to_numpy(), per_run.max().to_numpy(), color=style["color"], alpha=0.15
            )
            panel.plot(
                positions,
                per_run.median().to_numpy(),
                color=style["color"],
                marker=style["marker"],
                label=f"vs {baseline} (median over {len(per_run)} DFS runs; band: their range)",
            )
            panel.set_xticks(positions, [str(value) for value in per_run.columns])
        panel.axhline(1.0, color="grey", linewidth=0.8)
        panel.set_xlabel(_label(column))
        panel.set_ylabel("Energy ratio (baseline / DFS)")
        panel.grid(alpha=0.3)
    handles, labels = panels.ravel()[0].get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="outside lower center", fontsize=7, ncols=1)
    figure.suptitle(f"Where DFS pays off: {GAIN_LABEL}, by axis")
    return figure


def gain_heatmap_figure(frame: pd.DataFrame, x: str, y: str) -> plt.Figure:
    """Mean energy ratio over DFS runs on the grid of two axes, one panel per baseline."""
    dfs = frame[frame["method"] == "dfs"]
    figure, panels = plt.subplots(1, len(GAINS), figsize=(5.0 * len(GAINS), 4.0), squeeze=False, layout="constrained")
    for panel, (gain, baseline) in zip(panels.ravel(), GAINS.items(), strict=True):
        grid = dfs.pivot_table(index=f"axis:{y}", columns=f"axis:{x}", values=gain, aggfunc="mean", dropna=False)
        values = grid.to_numpy(dtype=float)
        image = panel.imshow(values, origin="lower", aspect="auto", cmap="RdYlGn")
        for (row, col), value in np.ndenumerate(values):
            panel.text(col, row, "n/a" if np.isnan(value) else f"{value:.2f}", ha="center", va="center", fontsize=7)
        panel.set_xticks(range(grid.shape[1]), [str(value) for value in grid.columns])
        panel.set_yticks(range(grid.shape[0]), [str(value) for value in grid.index])
        panel.set_xlabel(x)
        panel.set_ylabel(y)
        panel.set_title(f"vs {baseline}")
        figure.colorbar(image, ax=panel, label="Energy ratio (baseline / DFS)")
    figure.suptitle("DFS's energy advantage at matched accuracy (mean over DFS runs; n/a: fronts do not overlap)")
    return figure


def hardware_front_figure(frame: pd.DataFrame) -> plt.Figure:
    """Each method's hardware points (its runs' mean energy and latency at each point) and their Pareto front."""
    figure, panel = plt.subplots(figsize=(6.0, 4.4), layout="constrained")
    for method, style in family_styles(frame["method"], known=METHOD_STYLE).items():
        rows = frame[frame["method"] == method].groupby("point")[["energy_pj_mean", "latency_us_mean"]].mean()
        if rows.empty:
            continue
        energy, latency = rows["energy_pj_mean"].to_numpy() * 1e-6, rows["latency_us_mean"].to_numpy()
        panel.scatter(latency, energy, color=style["color"], marker=style["marker"], alpha=0.5, label=style["label"])
        front = pareto_mask(np.column_stack([latency, energy]))
        order = np.argsort(latency[front])
        panel.plot(latency[front][order], energy[front][order], color=style["color"])
    panel.set_xlabel("Mean latency per input (µs)")
    panel.set_ylabel("Mean energy per input (µJ)")
    panel.grid(alpha=0.3)
    panel.legend()
    panel.set_title("Hardware points per method (mean over its runs) and their fronts")
    return figure


def write_sweep_plots(frame: pd.DataFrame, axes: Sequence[str], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = save_figure(gain_by_axis_figure(frame, axes), folder, "gain_by_axis")
    if len(axes) >= 2:
        written += save_figure(gain_heatmap_figure(frame, axes[0], axes[1]), folder, "gain_heatmap")
    written += save_figure(hardware_front_figure(frame), folder, "hardware_fronts")
    return written
