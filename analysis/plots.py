"""The plots people look at: energy/latency–accuracy frontiers, decision maps, per-input energy distributions, and
energy parts at matched accuracy. Each function takes tidy frames and returns a matplotlib Figure."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.bases import AXIS_OF_METRIC, PROXY
from analysis.matched import BASELINES, front_points, interpolate_front
from analysis.pareto import pareto_front
from dfs_sim._atomic import atomic_path

__all__ = [
    "cost_basis_figure",
    "decision_map_figure",
    "energy_distribution_figure",
    "energy_parts_figure",
    "frontier_figure",
    "save_figure",
]

METHOD_STYLE = {
    "dfs": {"color": "tab:blue", "marker": "o", "label": "DFS"},
    "skipnet": {"color": "tab:orange", "marker": "s", "label": "SkipNet"},
    "dfs_binary": {"color": "tab:purple", "marker": "D", "label": "DFS skip/fp only"},
    "static": {"color": "tab:green", "marker": "^", "label": "static"},
}
# static runs by how they were made (per_run's ``family``); each family's front is drawn apart
FAMILY_STYLE = {
    **METHOD_STYLE,
    "static": {"color": "tab:green", "marker": "^", "label": "static, post-training"},
    "static QAT": {"color": "tab:olive", "marker": "v", "label": "static, quantization-aware"},
    "mixed precision": {"color": "tab:cyan", "marker": "P", "label": "mixed precision"},
}
# methods the project does not know (any name a trace may carry) get these, in sorted order, after the known ones
OTHER_COLORS = ("tab:red", "tab:brown", "tab:pink", "tab:gray", "black", "gold", "navy", "teal")
OTHER_MARKERS = ("X", "*", "h", "p", "<", ">", "d", "8")


def family_styles(names: Iterable[str], known: dict[str, dict] = FAMILY_STYLE) -> dict[str, dict]:
    """A style for every family (or, with ``known=METHOD_STYLE``, method) in ``names``: the known ones first, in
    ``known``'s order, then any other, sorted, each with its own colour and marker (which cycle only beyond eight
    other families)."""
    present = set(names)
    styles = {name: style for name, style in known.items() if name in present}
    for index, name in enumerate(sorted(present - set(known))):
        color, marker = OTHER_COLORS[index % len(OTHER_COLORS)], OTHER_MARKERS[index % len(OTHER_MARKERS)]
        styles[name] = {"color": color, "marker": marker, "label": name}
    return styles


PART_STYLE = {
    "e_compute_pj": ("compute", "tab:blue"),
    "e_sram_pj": ("on-chip SRAM", "tab:orange"),
    "e_dram_pj": ("DRAM", "tab:red"),
}
AXIS_LABEL = {
    "energy_pj_mean": ("Mean energy per input (µJ)", 1e-6),
    "latency_us_mean": ("Mean latency per input (µs)", 1.0),  # the unit of per_run.csv and the terminal
}

# Text stays text in SVG (smaller, searchable, faster to write); fixed hash salt so reruns are byte-identical.
# The layout is solved by each figure's constrained layout engine, whatever a user's matplotlibrc says.
plt.rcParams.update(
    {
        "svg.hashsalt": "dfs-sim",
        "svg.fonttype": "none",
        "figure.dpi": 100,
        "font.size": 9,
        "figure.autolayout": False,
        "figure.constrained_layout.use": False,
    }
)
PNG_DPI = 110


def _grid(count: int, columns: int = 3, size: tuple[float, float] = (4.2, 3.4)):
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(size[0] * columns, size[1] * rows), squeeze=False, layout="constrained"
    )
    for axis in axes.ravel()[count:]:
        axis.set_visible(False)
    # The grid can hold more panels than ``count`` (the rest hidden above): callers zip it with strict=False.
    return figure, axes.ravel()


def _suptitle(figure: plt.Figure, text: str) -> None:
    """A figure title wrapped to the figure's width (about 11 characters per inch at the title's size), so that a
    narrow figure (one preset, one run) does not clip it."""
    width = max(20, int(figure.get_size_inches()[0] * 11))
    figure.suptitle(textwrap.fill(text, width))


def _row_panels(rows: int, panels: int, width: float = 3.2, label_inches: float = 3.0):
    """One panel per preset side by side, sharing a y axis of ``rows`` labelled rows (the labels on the first panel
    only), tall enough that a label never meets the next: the figure grows with the rows instead of crowding them."""
    height = max(3.0, 0.17 * rows + 1.6)
    figure, axes = plt.subplots(
        1, panels, figsize=(label_inches + width * panels, height), sharey=True, squeeze=False, layout="constrained"
    )
    return figure, axes.ravel()


def _order_runs(frame: pd.DataFrame, cost: str = "energy_pj_mean") -> list[str]:
    """Runs sorted by method (DFS, SkipNet, the ablation, static), then by their mean cost on the first preset."""
    first = frame[frame["preset"] == frame["preset"].iloc[0]]
    rank = {method: position for position, method in enumerate(METHOD_STYLE)}
    ordered = first.assign(rank=first["method"].map(rank).fillna(len(rank))).sort_values(["rank", cost, "run"])
    return list(dict.fromkeys(ordered["run"]))


def _interval_bars(rows: pd.DataFrame) -> list[pd.Series]:
    """Error-bar lengths below and above each run's accuracy (%) to its Wilson 95% interval."""
    return [(rows["accuracy"] - rows["accuracy_ci_low"]) * 100, (rows["accuracy_ci_high"] - rows["accuracy"]) * 100]


ZOOM_POINTS = 3.0  # the zoomed fronts show accuracies within this many points of the best run


def frontier_figure(per_run: pd.DataFrame, cost: str = "energy_pj_mean", zoom: bool = False) -> plt.Figure:
    """Accuracy against mean cost per input, one panel per preset, one series per family (method; static runs by how
    they were made) with its front drawn and each run's 95% Wilson interval as an error bar. Where several seeds of
    one configuration were run, their mean is drawn as a hollow marker with bars of ± one standard deviation.
    ``zoom``: each panel shows only the dense region, the runs within ``ZOOM_POINTS`` of the best accuracy, up to
    one and a half times their median cost."""
    label, scale = AXIS_LABEL[cost]
    presets = list(dict.fromkeys(per_run["preset"]))
    figure, axes = _grid(len(presets))
    family = per_run["family"] if "family" in per_run.columns else per_run["method"]
    on_front = pareto_front(per_run.assign(family=family), {cost: "min", "accuracy": "max"}, by=["preset", "family"])
    for axis, preset in zip(axes, presets, strict=False):
        for name, style in family_styles(family).items():
            rows = per_run[(per_run["preset"] == preset) & (family == name)]
            if rows.empty:
                continue
            axis.scatter(
                rows[cost] * scale,
                rows["accuracy"] * 100,
                color=style["color"],
                marker=style["marker"],
                label=style["label"],
                s=16,
                zorder=3,
            )
            if {"accuracy_ci_low", "accuracy_ci_high"} <= set(rows.columns):
                axis.errorbar(
                    rows[cost] * scale,
                    rows["accuracy"] * 100,
                    yerr=_interval_bars(rows),
                    fmt="none",
                    ecolor=style["color"],
                    elinewidth=0.6,
                    capsize=1.5,
                    alpha=0.6,
                    zorder=2,
                )
            _seed_spread(axis, rows, cost, scale, style["color"])
            front = rows[on_front.loc[rows.index]].sort_values(cost)
            axis.plot(front[cost] * scale, front["accuracy"] * 100, color=style["color"], linewidth=1.2, zorder=2)
        if zoom:
            _zoom(axis, per_run[per_run["preset"] == preset], cost, scale)
        axis.set_title(preset)
        axis.set_xlabel(label)
        axis.set_ylabel("Top-1 accuracy (%)")
        axis.grid(alpha=0.3)
    _shared_legend(figure, axes)
    what = "energy" if cost.startswith("energy") else "latency"
    scope = f", within {ZOOM_POINTS:g} points of the best run" if zoom else ""
    _suptitle(
        figure,
        f"Accuracy against {what} per input{scope} (bars: 95% intervals; hollow: mean ± s.d. over seeds); "
        "lines join each family's Pareto front",
    )
    return figure


def _shared_legend(figure: plt.Figure, axes) -> None:
    """One legend under the panels for every family any panel draws: inside a panel it hid the runs beneath it."""
    entries: dict[str, Any] = {}
    for axis in axes:
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    if entries:
        figure.legend(entries.values(), entries.keys(), loc="outside lower center", ncols=min(len(entries), 7))


def _zoom(axis, rows: pd.DataFrame, cost: str, scale: float) -> None:
    """Limit ``axis`` to the dense region of ``rows`` (``frontier_figure``'s ``zoom``)."""
    best = rows["accuracy"].max() * 100
    near = rows[rows["accuracy"] * 100 >= best - ZOOM_POINTS]
    if near.empty:
        return
    low, middle = near[cost].min() * scale, near[cost].median() * scale
    axis.set_xlim(low * 0.95, max(middle * 1.5, low * 1.1))
    axis.set_ylim(best - ZOOM_POINTS, best + 0.6)


def _seed_spread(axis, rows: pd.DataFrame, cost: str, scale: float, color: str) -> None:
    """Each seed group of ``rows`` with more than one run: its mean, with ± one standard deviation both ways."""
    if "seed_group" not in rows.columns:
        return
    for _, group in rows.groupby("seed_group"):
        if len(group) < 2:
            continue
        axis.errorbar(
            group[cost].mean() * scale,
            group["accuracy"].mean() * 100,
            xerr=group[cost].std(ddof=1) * scale,
            yerr=group["accuracy"].std(ddof=1) * 100,
            fmt="o",
            mfc="none",
            mec=color,
            ecolor=color,
            markersize=7,
            capsize=3,
            zorder=4,
        )


BASIS_COLORS = ("tab:red", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray")


def cost_basis_figure(per_run: pd.DataFrame) -> plt.Figure:
    """DFS gates trained on different cost bases, each panel one preset and axis a basis was trained on (the proxy's
    only, on the first preset's energy, when no run was trained on the hardware): every basis's runs with their 95%
    intervals and its front, and static quantization as the reference."""
    dfs = per_run[per_run["method"] == "dfs"]
    bases = list(dict.fromkeys(dfs["cost_basis"])) if "cost_basis" in dfs.columns else [PROXY]
    presets = set(per_run["preset"])
    panels = []
    for basis in bases:
        preset, _, metric = basis.rpartition(" ")
        if basis != PROXY and preset in presets and (preset, AXIS_OF_METRIC[metric]) not in panels:
            panels.append((preset, AXIS_OF_METRIC[metric]))
    panels = panels or [(str(per_run["preset"].iloc[0]), "energy_pj_mean")]
    colors = {
        basis: "tab:blue" if basis == PROXY else BASIS_COLORS[index % len(BASIS_COLORS)]
        for index, basis in enumerate(basis for basis in bases if basis != PROXY)
    }
    colors[PROXY] = "tab:blue"
    figure, axes = _grid(len(panels), columns=2, size=(5.2, 3.8))
    for axis, (preset, cost) in zip(axes, panels, strict=False):
        label, scale = AXIS_LABEL[cost]
        at_preset = dfs[dfs["preset"] == preset]
        for basis in bases:
            rows = at_preset[at_preset["cost_basis"] == basis] if "cost_basis" in at_preset else at_preset
            axis.errorbar(
                rows[cost] * scale,
                rows["accuracy"] * 100,
                yerr=_interval_bars(rows),
                fmt="o",
                color=colors[basis],
                capsize=2,
                elinewidth=0.8,
                label="DFS, budget in " + ("the paper's proxy" if basis == PROXY else basis),
                zorder=3,
            )
            front = front_points(rows, cost)
            axis.plot(front[cost] * scale, front["accuracy"] * 100, color=colors[basis], linewidth=1.0, zorder=2)
        static = per_run[(per_run["preset"] == preset) & (per_run["method"] == "static")]
        style = METHOD_STYLE["static"]
        if not static.empty:  # a legend names only what the panel shows
            axis.scatter(
                static[cost] * scale,
                static["accuracy"] * 100,
                color=style["color"],
                marker=style["marker"],
                label="static",
                zorder=3,
            )
        low = at_preset["accuracy_ci_low"].min() * 100 if not at_preset.empty else 0.0
        axis.set_ylim(
            low - 0.5, max(per_run.loc[per_run["preset"] == preset, "accuracy_ci_high"].max() * 100, low) + 0.3
        )
        right = at_preset[cost].max() * scale if not at_preset.empty else None
        if right is not None:
            axis.set_xlim(right=right * 1.05)
        axis.set_title(f"{preset}, {'energy' if cost.startswith('energy') else 'latency'}")
        axis.set_xlabel(label)
        axis.set_ylabel("Top-1 accuracy (%)")
        axis.grid(alpha=0.3)
        axis.legend(loc="lower right", fontsize=7)
    _suptitle(figure, "DFS trained on the paper's proxy and on the hardware's own cost (bars: 95% intervals)")
    return figure


def decision_map_figure(per_block: pd.DataFrame) -> plt.Figure:
    """For each run, the fraction of inputs taking each option at each gated block (as in the DFS paper)."""
    runs = list(dict.fromkeys(per_block["run"]))
    figure, axes = _grid(len(runs), columns=3, size=(4.6, 2.6))
    image = None
    for axis, run in zip(axes, runs, strict=False):
        rows = per_block[per_block["run"] == run]
        table = rows.pivot(index="option", columns="block", values="fraction").sort_index()
        names = rows.drop_duplicates("option").set_index("option")["option_name"].reindex(table.index)
        image = axis.imshow(
            table.to_numpy(), aspect="auto", origin="lower", cmap="viridis", vmin=0, vmax=1, interpolation="nearest"
        )
        axis.set_yticks(range(len(names)), names.tolist())
        step = max(1, math.ceil(table.shape[1] / 9))
        axis.set_xticks(range(0, table.shape[1], step))
        axis.set_xlabel("Gated block")
        axis.set_title(run, fontsize=9)
    if image is not None:
        figure.colorbar(image, ax=list(axes), label="Fraction of inputs", shrink=0.6)
    _suptitle(figure, "Decision maps: which option each gated block takes")
    return figure


def energy_distribution_figure(boxes: pd.DataFrame) -> plt.Figure:
    """The distribution of per-input energy of every run (box: quartiles, whiskers 1–99%, marker: mean), one panel per
    preset side by side, one row per run sorted by method and cost; the figure grows with the runs.

    Drawn from ``boxes`` (one row per run × preset: ``energy_pj_p1``, ``_p25``, ``_p50``, ``_p75``, ``_p99`` and
    ``_mean``, exact percentiles of every input's energy), so it needs no per-input rows."""
    presets = list(dict.fromkeys(boxes["preset"]))
    runs = _order_runs(boxes)[::-1]  # the first run at the top
    styles = family_styles(boxes["method"], known=METHOD_STYLE)
    figure, axes = _row_panels(len(runs), len(presets))
    for axis, preset in zip(axes, presets, strict=True):
        at_preset = boxes[boxes["preset"] == preset].set_index("run").loc[runs]
        stats = [
            {
                "whislo": row.energy_pj_p1 * 1e-6,
                "q1": row.energy_pj_p25 * 1e-6,
                "med": row.energy_pj_p50 * 1e-6,
                "q3": row.energy_pj_p75 * 1e-6,
                "whishi": row.energy_pj_p99 * 1e-6,
            }
            for row in at_preset.itertuples()
        ]
        drawn = axis.bxp(
            stats,
            showfliers=False,
            patch_artist=True,
            medianprops={"color": "black"},
            orientation="horizontal",
            widths=0.6,
        )
        for position, (box, row) in enumerate(zip(drawn["boxes"], at_preset.itertuples(), strict=True), start=1):
            style = styles[row.method]
            box.set_facecolor(style["color"])
            box.set_alpha(0.6)
            # the mean as a marker, so that runs with no spread (static) stay visible
            axis.scatter(
                [row.energy_pj_mean * 1e-6], [position], color=style["color"], marker=style["marker"], zorder=3, s=14
            )
        axis.set_yticks(range(1, len(runs) + 1), runs, fontsize=7)
        axis.set_xlabel("Energy per input (µJ)")
        axis.set_title(preset)
        axis.grid(alpha=0.3, axis="x")
    handles = [plt.Rectangle((0, 0), 1, 1, color=style["color"], alpha=0.6) for style in styles.values()]
    labels = [style["label"] for style in styles.values()]
    figure.legend(handles, labels, loc="outside lower center", ncols=min(len(styles), 6))
    _suptitle(figure, "Per-input energy of each run (box: quartiles, whiskers: 1st–99th percentile, marker: mean)")
    return figure


def energy_parts_figure(per_run: pd.DataFrame) -> plt.Figure:
    """Energy split into compute, SRAM and DRAM for each DFS run, and below it each baseline at the same accuracy
    (interpolated along its front; "out of range" where the front does not reach that accuracy): one panel per preset
    side by side, one row per bar, the DFS runs by accuracy; the figure grows with the runs."""
    presets = list(dict.fromkeys(per_run["preset"]))
    parts = [f"{part}_mean" for part in PART_STYLE]
    first = per_run[per_run["preset"] == presets[0]]
    dfs_runs = first[first["method"] == "dfs"].sort_values("accuracy")["run"].tolist()
    baselines = [method for method in BASELINES if (per_run["method"] == method).any()]
    labels = []
    for run in dfs_runs:
        accuracy = float(first.loc[first["run"] == run, "accuracy"].iloc[0])
        labels.append(run)
        labels += [f"{METHOD_STYLE[m]['label']} at {accuracy * 100:.1f}%" for m in baselines]
    figure, axes = _row_panels(max(1, len(labels)), len(presets))
    positions = np.arange(len(labels))[::-1]  # the first row at the top
    for axis, preset in zip(axes, presets, strict=True):
        at_preset = per_run[per_run["preset"] == preset]
        fronts = {m: front_points(at_preset[at_preset["method"] == m], "energy_pj_mean", parts) for m in baselines}
        stacks = []
        for run in dfs_runs:
            dfs = at_preset[at_preset["run"] == run].iloc[0]
            stacks.append([float(dfs[part]) for part in parts])
            for method in baselines:
                values, _ = interpolate_front(fronts[method], "accuracy", float(dfs["accuracy"]), parts)
                stacks.append([values.get(part, np.nan) for part in parts])
        left = np.zeros(len(stacks))
        for index, (name, color) in enumerate(PART_STYLE.values()):
            widths = np.nan_to_num(np.array([stack[index] for stack in stacks], dtype=float)) * 1e-6
            axis.barh(positions, widths, left=left, color=color, label=name, height=0.7)
            left += widths
        for position, stack in zip(positions, stacks, strict=True):
            if np.isnan(stack[0]):
                axis.text(0, position, " out of range", ha="left", va="center", fontsize=6, color="grey")
        axis.set_yticks(positions, labels, fontsize=7)
        axis.set_xlabel("Mean energy per input (µJ)")
        axis.set_title(preset)
        axis.grid(alpha=0.3, axis="x")
    if not dfs_runs:
        axes[0].text(0.5, 0.5, "no DFS run", ha="center", va="center", transform=axes[0].transAxes)
    handles = [plt.Rectangle((0, 0), 1, 1, color=color) for _, color in PART_STYLE.values()]
    names = [name for name, _ in PART_STYLE.values()]
    figure.legend(handles, names, loc="outside lower center", ncols=len(names))
    _suptitle(figure, "Energy parts: each DFS run above its baselines at the same accuracy")
    return figure


def save_figure(figure: plt.Figure, folder: Path, stem: str) -> list[Path]:
    """Write ``stem.png`` and ``stem.svg`` atomically (no timestamps inside, so reruns are byte-identical)."""
    written = []
    figure.set_dpi(PNG_DPI)  # the layout is solved at the resolution the PNG is written at, so nothing is clipped
    figure.draw_without_rendering()
    figure.set_layout_engine(None)  # solved once; "none" would leave a placeholder engine that makes savefig draw twice
    for suffix, metadata in ((".png", {"Software": None}), (".svg", {"Date": None, "Creator": None})):
        path = folder / f"{stem}{suffix}"
        with atomic_path(path) as temporary:
            figure.savefig(temporary, format=suffix[1:], metadata=metadata, dpi=PNG_DPI)
        written.append(path)
    plt.close(figure)
    return written
